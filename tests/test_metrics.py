"""Tests for hf_mtkd.metrics: hand-computed values, sklearn cross-checks, bootstrap, tables, evaluate."""

import json
import os
import socket

import numpy as np
import pytest

from hf_mtkd.metrics import (
    SER_METRIC_PATH,
    comparison_rows,
    compute_ser_metrics,
    format_comparison_table,
    format_metrics_table,
    load_ser_metric,
    read_comparison_csv,
    save_comparison,
    save_metrics_json,
)


LABELS3 = ["angry", "happy", "sad"]
LABELS4 = ["angry", "happy", "neutral", "sad"]

# 10 samples: angry x6 (all right), happy x2 (one -> angry), sad x2 (one -> happy).
REF3 = [0, 0, 0, 0, 0, 0, 1, 1, 2, 2]
PRED3 = [0, 0, 0, 0, 0, 0, 1, 0, 2, 1]


def _random_data(n, k=4, acc=0.6, seed=0, langs=("de", "en", "fr")):
    rng = np.random.default_rng(seed)
    ref = rng.integers(0, k, n)
    pred = np.where(rng.random(n) < acc, ref, rng.integers(0, k, n))
    lang = rng.choice(list(langs), n)
    return pred, ref, lang


# --------------------------------------------------------------------------- hand-computed


def test_three_class_hand_computed():
    out = compute_ser_metrics(PRED3, REF3, LABELS3, n_bootstrap=0)["overall"]
    # recalls: angry 6/6 = 1, happy 1/2, sad 1/2  ->  UR = (1 + .5 + .5) / 3 = 2/3
    # WR = correct / n = (6 + 1 + 1) / 10 = 0.8: UR and WR differ because angry dominates.
    assert out["n"] == 10
    assert out["UR"] == pytest.approx(2 / 3)
    assert out["WR"] == pytest.approx(0.8)
    assert out["per_class_recall"] == pytest.approx({"angry": 1.0, "happy": 0.5, "sad": 0.5})
    # rows = true, cols = predicted
    assert out["confusion_matrix"] == [[6, 0, 0], [1, 1, 0], [0, 1, 1]]
    # F1 = 2TP / (support + predicted): angry 12/(6+7) = 12/13, happy 2/(2+2) = 1/2, sad 2/(2+1) = 2/3
    f1 = np.array([12 / 13, 1 / 2, 2 / 3])
    assert out["macro_f1"] == pytest.approx(f1.mean())  # 0.69658...
    assert out["weighted_f1"] == pytest.approx((6 * f1[0] + 2 * f1[1] + 2 * f1[2]) / 10)  # 0.78718...
    assert out["UR_ci"] is None and out["WR_ci"] is None


def test_class_absent_from_references():
    # neutral (id 2) never occurs in the references but is predicted once.
    ref = [0, 0, 1, 1, 3, 3]
    pred = [0, 2, 1, 1, 3, 0]
    out = compute_ser_metrics(pred, ref, LABELS4, n_bootstrap=0)["overall"]
    # recalls: angry 1/2, happy 2/2, neutral undefined, sad 1/2 -> UR = (.5 + 1 + .5) / 3, not / 4
    assert out["per_class_recall"] == {"angry": 0.5, "happy": 1.0, "neutral": None, "sad": 0.5}
    assert out["UR"] == pytest.approx(2 / 3)
    assert out["WR"] == pytest.approx(4 / 6)
    # F1: angry 2*1/(2+2) = .5, happy 2*2/(2+2) = 1, neutral 0 (predicted, never true), sad 2*1/(2+1) = 2/3
    # macro over classes in references or predictions (all four): (.5 + 1 + 0 + 2/3) / 4
    assert out["macro_f1"] == pytest.approx((0.5 + 1 + 0 + 2 / 3) / 4)
    # weighted by reference counts (neutral has weight 0): (2*.5 + 2*1 + 2*2/3) / 6
    assert out["weighted_f1"] == pytest.approx((1 + 2 + 4 / 3) / 6)
    assert out["confusion_matrix"][2] == [0, 0, 0, 0]
    assert [row[2] for row in out["confusion_matrix"]] == [1, 0, 0, 0]


def test_class_absent_everywhere_is_left_out_of_macro_f1():
    # sad (id 3) is neither true nor predicted: it must not drag macro-F1 down with a 0.
    out = compute_ser_metrics([0, 1, 1], [0, 1, 2], LABELS4, n_bootstrap=0)["overall"]
    # F1: angry 1, happy 2*1/(1+2) = 2/3, neutral 0  ->  (1 + 2/3 + 0) / 3
    assert out["macro_f1"] == pytest.approx((1 + 2 / 3) / 3)
    assert out["per_class_recall"]["sad"] is None


def test_label_names_and_id2label_give_the_same_result():
    names_pred = [LABELS3[i] for i in PRED3]
    names_ref = [LABELS3[i] for i in REF3]
    by_ids = compute_ser_metrics(PRED3, REF3, LABELS3, seed=3)
    assert compute_ser_metrics(names_pred, names_ref, LABELS3, seed=3) == by_ids
    assert compute_ser_metrics(np.array(PRED3), names_ref, {0: "angry", 1: "happy", 2: "sad"}, seed=3) == by_ids
    # id2label read back from JSON has string keys
    assert compute_ser_metrics(PRED3, REF3, {"1": "happy", "0": "angry", "2": "sad"}, seed=3) == by_ids


def test_accepts_dataset_columns():
    datasets = pytest.importorskip("datasets")
    ds = datasets.Dataset.from_dict({"label": REF3, "pred": PRED3, "language": ["en"] * 5 + ["fr"] * 5})
    out = compute_ser_metrics(ds["pred"], ds["label"], LABELS3, ds["language"], seed=1)
    assert out == compute_ser_metrics(PRED3, REF3, LABELS3, ["en"] * 5 + ["fr"] * 5, seed=1)


# --------------------------------------------------------------------------- sklearn cross-check


@pytest.mark.filterwarnings("ignore:y_pred contains classes not in y_true")
@pytest.mark.parametrize("seed", range(5))
def test_matches_sklearn(seed):
    sklearn_metrics = pytest.importorskip("sklearn.metrics")
    pred, ref, _ = _random_data(300, k=5, acc=0.4, seed=seed)
    if seed % 2:  # drop a class from the references, keep it among predictions
        ref = np.where(ref == 4, 0, ref)
    out = compute_ser_metrics(pred, ref, list("abcde"), n_bootstrap=0)["overall"]
    assert out["UR"] == pytest.approx(sklearn_metrics.balanced_accuracy_score(ref, pred))
    assert out["WR"] == pytest.approx(sklearn_metrics.accuracy_score(ref, pred))
    assert out["macro_f1"] == pytest.approx(sklearn_metrics.f1_score(ref, pred, average="macro"))
    assert out["weighted_f1"] == pytest.approx(sklearn_metrics.f1_score(ref, pred, average="weighted"))
    assert out["confusion_matrix"] == sklearn_metrics.confusion_matrix(ref, pred, labels=range(5)).tolist()
    recalls = sklearn_metrics.recall_score(ref, pred, labels=range(5), average=None, zero_division=0)
    for i, name in enumerate("abcde"):
        if out["per_class_recall"][name] is not None:
            assert out["per_class_recall"][name] == pytest.approx(recalls[i])


# --------------------------------------------------------------------------- bootstrap


def test_ci_contains_estimate_and_is_deterministic():
    pred, ref, _ = _random_data(500)
    a = compute_ser_metrics(pred, ref, LABELS4, seed=7)["overall"]
    b = compute_ser_metrics(pred, ref, LABELS4, seed=7)["overall"]
    c = compute_ser_metrics(pred, ref, LABELS4, seed=8)["overall"]
    for key in ("UR", "WR"):
        low, high = a[f"{key}_ci"]
        assert low < a[key] < high
        assert a[f"{key}_ci"] == b[f"{key}_ci"]
    assert a["UR_ci"] != c["UR_ci"]


def test_ci_narrows_with_more_samples():
    small = compute_ser_metrics(*_random_data(200)[:2], LABELS4)["overall"]
    large = compute_ser_metrics(*_random_data(5000)[:2], LABELS4)["overall"]
    for key in ("UR_ci", "WR_ci"):
        assert np.diff(large[key])[0] < np.diff(small[key])[0] / 3  # width ~ 1/sqrt(n): sqrt(25) = 5


def test_ci_widens_with_confidence():
    pred, ref, _ = _random_data(400)
    narrow = compute_ser_metrics(pred, ref, LABELS4, confidence=0.8)["overall"]["WR_ci"]
    wide = compute_ser_metrics(pred, ref, LABELS4, confidence=0.99)["overall"]["WR_ci"]
    assert wide[0] < narrow[0] and narrow[1] < wide[1]


def test_bootstrap_agrees_with_resampling_indices():
    # The implementation draws confusion-matrix counts from a multinomial; that must match the
    # textbook bootstrap (resample sample indices with replacement, recompute) in distribution.
    pred, ref, _ = _random_data(300, acc=0.5, seed=1)
    idx = np.random.default_rng(123).integers(0, len(ref), (4000, len(ref)))
    t, p = ref[idx], pred[idx]
    recalls = [((t == c) & (p == c)).sum(1) / (t == c).sum(1) for c in range(4)]  # all classes in every resample
    ur = np.mean(recalls, axis=0)
    wr = (t == p).mean(1)
    out = compute_ser_metrics(pred, ref, LABELS4, n_bootstrap=4000)["overall"]
    assert out["UR_ci"] == pytest.approx(np.quantile(ur, [0.025, 0.975]), abs=0.012)
    assert out["WR_ci"] == pytest.approx(np.quantile(wr, [0.025, 0.975]), abs=0.012)


def test_bootstrap_intervals_are_the_95_percent_ones_of_ur_and_of_wr():
    # Imbalanced classes with unequal recalls, so UR (0.475) and WR (0.69) and their spreads differ: an interval
    # of one metric given for the other, or a 90% interval for the 95% one, is far outside the tolerance.
    # class sizes 60/20/10/10, correct 54/10/3/2 (recalls 0.9/0.5/0.3/0.2), the errors predicted as another class
    ref = np.repeat([0, 1, 2, 3], [60, 20, 10, 10])
    pred = np.concatenate([[0] * 54 + [1] * 6, [1] * 10 + [0] * 10, [2] * 3 + [0] * 7, [3] * 2 + [0] * 8])
    out = compute_ser_metrics(pred, ref, LABELS4, n_bootstrap=20000)["overall"]
    assert out["UR"] == pytest.approx(0.475) and out["WR"] == pytest.approx(0.69)
    # The textbook bootstrap: resample sample indices, recompute UR over the classes present in the resample.
    idx = np.random.default_rng(7).integers(0, len(ref), (20000, len(ref)))
    t, p = ref[idx], pred[idx]
    support = np.stack([(t == c).sum(1) for c in range(4)], axis=1)
    hits = np.stack([((t == c) & (p == c)).sum(1) for c in range(4)], axis=1)
    recall = np.where(support > 0, hits / np.maximum(support, 1), np.nan)
    textbook = {"UR": np.nanmean(recall, axis=1), "WR": (t == p).mean(1)}
    for key, values in textbook.items():
        expected, ninety = np.quantile(values, [0.025, 0.975]), np.quantile(values, [0.05, 0.95])
        assert np.abs(expected - ninety).min() > 0.008, key  # the tolerance below cannot absorb a 90% interval
        assert out[f"{key}_ci"] == pytest.approx(expected, abs=0.004), key


def test_bootstrap_ur_averages_over_the_classes_present_in_each_resample():
    # One clip of class 3 (predicted right) among 20: about a third of the resamples lack it, and their UR is the
    # mean recall of the three classes they hold (not a 0 for class 3 averaged in over four).
    ref = np.array([0] * 7 + [1] * 6 + [2] * 6 + [3])
    pred = np.array([0] * 5 + [1] * 2 + [1] * 4 + [2] * 2 + [2] * 3 + [0] * 3 + [3])
    out = compute_ser_metrics(pred, ref, LABELS4, n_bootstrap=20000)["overall"]
    idx = np.random.default_rng(11).integers(0, len(ref), (20000, len(ref)))
    t, p = ref[idx], pred[idx]
    support = np.stack([(t == c).sum(1) for c in range(4)], axis=1)
    hits = np.stack([((t == c) & (p == c)).sum(1) for c in range(4)], axis=1)
    ur = np.nanmean(np.where(support > 0, hits / np.maximum(support, 1), np.nan), axis=1)
    assert (support[:, 3] == 0).mean() == pytest.approx((19 / 20) ** 20, abs=0.01)
    assert out["UR_ci"] == pytest.approx(np.quantile(ur, [0.025, 0.975]), abs=0.01)


# --------------------------------------------------------------------------- per language


def test_per_language_blocks():
    pred, ref, lang = _random_data(600, seed=4)
    out = compute_ser_metrics(pred, ref, LABELS4, lang, seed=5)
    assert sorted(out["per_language"]) == ["de", "en", "fr"]
    assert sum(b["n"] for b in out["per_language"].values()) == out["overall"]["n"] == 600
    for name, block in out["per_language"].items():
        mask = lang == name
        # the same numbers, CI included, as scoring that language alone
        alone = compute_ser_metrics(pred[mask], ref[mask], LABELS4, [name] * int(mask.sum()), seed=5)
        assert alone["per_language"][name] == block
        assert block["WR"] == pytest.approx(np.mean(pred[mask] == ref[mask]))
    # the overall block does not depend on whether languages were given
    assert compute_ser_metrics(pred, ref, LABELS4, seed=5)["overall"] == out["overall"]
    assert "per_language" not in compute_ser_metrics(pred, ref, LABELS4)


def test_per_language_with_a_class_missing_in_one_language():
    # fr has no sad samples: its UR averages over angry and happy only.
    pred = [0, 1, 3, 0, 1, 1]
    ref = [0, 1, 3, 0, 1, 0]
    lang = ["en", "en", "en", "fr", "fr", "fr"]
    out = compute_ser_metrics(pred, ref, LABELS4, lang, n_bootstrap=0)
    fr = out["per_language"]["fr"]
    # fr recalls: angry 1/2, happy 1/1 -> UR = .75; WR = 2/3
    assert fr["UR"] == pytest.approx(0.75)
    assert fr["WR"] == pytest.approx(2 / 3)
    assert fr["per_class_recall"]["sad"] is None
    assert out["per_language"]["en"]["UR"] == 1.0


# --------------------------------------------------------------------------- errors


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(predictions=[0, 1], references=[0]), r"predictions \(2\) and references \(1\)"),
        (dict(predictions=[], references=[]), "empty"),
        (dict(predictions=[0, 4], references=[0, 1]), r"class id 4 \(at index 1\), outside 0..3"),
        (dict(predictions=[0, 1], references=[-100, 1]), "class id -100"),
        (dict(predictions=["angry", "bored"], references=[0, 1]), "unknown label name 'bored'"),
        (dict(predictions=[0.0, 1.0], references=[0, 1]), "dtype float64"),
        (dict(predictions=[[0.1, 0.9]], references=[1]), "argmax"),
        (dict(predictions=[0, 1], references=[0, 1], languages=["en"]), r"languages \(1\)"),
        (dict(predictions=[0, 1], references=[0, 1], languages=["en", None]), "None at index 1"),
        (dict(predictions=[0, 1], references=[0, 1], label_names=["a", "a"]), "duplicates"),
        (dict(predictions=[0, 1], references=[0, 1], label_names=[]), "label_names is empty"),
        (dict(predictions=[0, 1], references=[0, 1], label_names={0: "a", 2: "b"}), "0..1"),
        (dict(predictions=[0, 1], references=[0, 1], n_bootstrap=-1), "n_bootstrap"),
        (dict(predictions=[0, 1], references=[0, 1], confidence=95), "confidence"),
    ],
)
def test_errors(kwargs, message):
    kwargs.setdefault("label_names", LABELS4)
    with pytest.raises(ValueError, match=message):
        compute_ser_metrics(**kwargs)


# --------------------------------------------------------------------------- output


def test_definitions_and_json_roundtrip(tmp_path):
    pred, ref, lang = _random_data(100)
    out = compute_ser_metrics(pred, ref, LABELS4, lang, confidence=0.9, n_bootstrap=200)
    for key in ("UR", "WR", "macro_f1", "weighted_f1", "CI"):
        assert out["definitions"][key]
    assert "balanced accuracy" in out["definitions"]["UR"] and "present" in out["definitions"]["UR"]
    assert "accuracy" in out["definitions"]["WR"]
    assert "90% percentile bootstrap" in out["definitions"]["CI"]
    assert "200 times" in out["definitions"]["CI"]

    path = tmp_path / "sub" / "metrics.json"
    save_metrics_json(out, path)
    assert json.loads(path.read_text()) == out
    save_metrics_json({**out, "extra": np.float32(0.5)}, path)  # overwrite; numpy scalars are fine
    text = path.read_text()
    assert json.loads(text)["extra"] == 0.5
    assert text.index('"confidence"') < text.index('"definitions"') < text.index('"overall"')  # sorted keys
    with pytest.raises(ValueError):
        save_metrics_json({"bad": float("nan")}, path)
    assert json.loads(path.read_text())["extra"] == 0.5  # a failed write leaves the old file
    assert os.listdir(path.parent) == ["metrics.json"]  # no temporary files left behind


def test_metrics_table():
    out = compute_ser_metrics(PRED3, REF3, LABELS3, ["en"] * 6 + ["fr"] * 4, n_bootstrap=100)
    table = format_metrics_table(out, title="FT-Multi on test")
    lines = table.splitlines()
    assert lines[0] == "FT-Multi on test"
    assert "UR [95% CI]" in lines[1] and "macro-F1" in lines[1] and "weighted-F1" in lines[1]
    rows = {line.split()[0]: line for line in lines if line.split() and line.split()[0] in ("en", "fr", "overall")}
    assert list(rows) == ["en", "fr", "overall"]
    # overall: UR 2/3 -> 66.7, WR 0.8 -> 80.0; fr (1 of 2 happy, 1 of 2 sad): UR = WR = 50.0
    lo, hi = out["overall"]["UR_ci"]
    assert f"66.7 [{lo * 100:.1f}, {hi * 100:.1f}]" in rows["overall"]
    assert " 80.0 [" in rows["overall"]
    assert rows["fr"].split()[1:3] == ["4", "50.0"]
    assert "Definitions" in table and "UA" in table and "WA" in table

    no_ci = format_metrics_table(compute_ser_metrics(PRED3, REF3, LABELS3, n_bootstrap=0))
    assert "66.7" in no_ci and "[" not in no_ci.split("Definitions")[0].splitlines()[-1]


def test_comparison_table():
    pred, ref, lang = _random_data(300, seed=2)
    ft = compute_ser_metrics(pred, ref, LABELS4, lang)
    mtkd = compute_ser_metrics(ref, ref, LABELS4, lang)  # a perfect model
    partial = compute_ser_metrics(pred[lang == "en"], ref[lang == "en"], LABELS4, lang[lang == "en"])
    table = format_comparison_table({"FT-Multi": ft, "MTKD-Multi": mtkd, "FT-en": partial})
    lines = table.splitlines()
    assert lines[0].split() == ["model", "n", "de", "UR", "en", "UR", "fr", "UR", "overall", "UR", "[95%", "CI]",
                                "overall", "WR", "[95%", "CI]"]
    rows = {line.split()[0]: line.split() for line in lines[2:5]}
    assert list(rows) == ["FT-Multi", "MTKD-Multi", "FT-en"]  # models as rows, in the order given
    per_language = ft["per_language"]
    assert rows["FT-Multi"][1:5] == ["300", *(f"{100 * per_language[lang]['UR']:.1f}" for lang in ("de", "en", "fr"))]
    lo, hi = ft["overall"]["UR_ci"]
    assert " ".join(rows["FT-Multi"][5:8]) == f"{100 * ft['overall']['UR']:.1f} [{100 * lo:.1f}, {100 * hi:.1f}]"
    assert " ".join(rows["MTKD-Multi"][5:8]) == "100.0 [100.0, 100.0]"
    assert rows["FT-en"][1:5] == [str(partial["overall"]["n"]), "-", f"{100 * partial['overall']['UR']:.1f}", "-"]
    counts = {lang: per_language[lang]["n"] for lang in ("de", "en", "fr")}
    assert f"Clips per language: de {counts['de']}, en {counts['en']}, fr {counts['fr']}." in table
    assert "Definitions" in table
    assert "Definitions" not in format_comparison_table({"FT-Multi": ft}, definitions=False)
    with pytest.raises(ValueError):
        format_comparison_table({})


def _six_models_three_languages():
    models = ["teacher_de_wav2vec2", "teacher_en_wav2vec2", "teacher_fr_wav2vec2", "ft_multi_student",
              "mtkd_student_lang_aware", "self_distillation_exit_3"]
    _, ref, lang = _random_data(240, seed=0)  # one test split, as in a pipeline
    results = {}
    for seed, model in enumerate(models):
        rng = np.random.default_rng(seed)
        pred = np.where(rng.random(ref.size) < 0.3 + 0.1 * seed, ref, rng.integers(0, 4, ref.size))
        results[model] = compute_ser_metrics(pred, ref, LABELS4, lang, n_bootstrap=100, seed=seed)
    return results


def test_comparison_table_of_six_models_and_three_languages_fits_120_columns():
    results = _six_models_three_languages()
    table = format_comparison_table(results)
    assert max(len(line) for line in table.splitlines()) <= 120
    rows = [line for line in table.splitlines() if line.split() and line.split()[0] in results]
    assert [row.split()[0] for row in rows] == list(results)  # one row per model, every number on it
    # A narrow terminal: the language columns wrap into blocks that repeat model and n.
    counts = {lang: results["ft_multi_student"]["per_language"][lang]["n"] for lang in ("de", "en", "fr")}
    assert f"Clips per language: de {counts['de']}, en {counts['en']}, fr {counts['fr']}." in table
    narrow = format_comparison_table(results, width=80, definitions=False)
    assert max(len(line) for line in narrow.splitlines()) <= 80
    headers = [line for line in narrow.splitlines() if line.startswith("model")]
    assert len(headers) >= 2 and all(h.split()[:2] == ["model", "n"] for h in headers)
    assert sum(h.count(" UR") for h in headers) == 3 + 1  # every language once, then overall


def test_comparison_markdown_and_csv_are_written_and_read_back(tmp_path):
    results = _six_models_three_languages()
    markdown_path, csv_path = save_comparison(results, tmp_path, split="test", notes=["Wall time per stage: a 3 s."])
    assert (markdown_path.name, csv_path.name) == ("comparison.md", "comparison.csv")
    markdown = markdown_path.read_text()
    table = [line for line in markdown.splitlines() if line.startswith("|")]
    assert table[0] == "| model (test) | de UR | en UR | fr UR | overall UR [95% CI] | overall WR [95% CI] |"
    assert set(table[1]) <= {"|", "-"} and len(table) == 2 + len(results)
    for line, (model, result) in zip(table[2:], results.items()):
        cells = [cell.strip() for cell in line.strip("|").split("|")]
        assert cells[0] == model and cells[1] == f"{100 * result['per_language']['de']['UR']:.1f}"
        lo, hi = result["overall"]["WR_ci"]
        assert cells[5] == f"{100 * result['overall']['WR']:.1f} [{100 * lo:.1f}, {100 * hi:.1f}]"
    assert "Wall time per stage: a 3 s." in markdown

    rows = read_comparison_csv(csv_path)
    assert rows == comparison_rows(results)  # every number exactly, floats included
    assert len(rows) == len(results) * 4  # de, en, fr, overall per model
    by_key = {(row["model"], row["language"]): row for row in rows}
    for model, result in results.items():
        for language, block in [*result["per_language"].items(), ("overall", result["overall"])]:
            row = by_key[(model, language)]
            assert row["n"] == block["n"] and row["UR"] == block["UR"] and row["WR"] == block["WR"]
            assert (row["UR_low"], row["UR_high"]) == tuple(block["UR_ci"])
            assert row["macro_f1"] == block["macro_f1"] and row["weighted_f1"] == block["weighted_f1"]
    no_ci = {"plain": compute_ser_metrics(PRED3, REF3, LABELS3, n_bootstrap=0)}
    _, plain_csv = save_comparison(no_ci, tmp_path / "no_ci")
    (row,) = read_comparison_csv(plain_csv)
    assert row["UR_low"] is None and row["UR"] == no_ci["plain"]["overall"]["UR"]
    (tmp_path / "bad.csv").write_text("model,UR\nx,0.5\n")
    with pytest.raises(ValueError, match="bad.csv has columns"):
        read_comparison_csv(tmp_path / "bad.csv")


# --------------------------------------------------------------------------- evaluate module


@pytest.fixture
def offline(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")

    def no_network(*args, **kwargs):
        raise AssertionError("network access attempted")

    monkeypatch.setattr(socket.socket, "connect", no_network)


def test_evaluate_module_matches_function(offline, tmp_path):
    assert SER_METRIC_PATH.is_file()
    pred, ref, lang = _random_data(200, seed=9)
    metric = load_ser_metric(label_names=LABELS4, cache_dir=str(tmp_path))
    out = metric.compute(predictions=pred.tolist(), references=ref.tolist(), languages=lang.tolist(), seed=3)
    assert out == compute_ser_metrics(pred, ref, LABELS4, lang, seed=3)

    # label_names given at compute time; batches accumulated with add_batch
    metric = load_ser_metric(keep_in_memory=True)
    for i in range(0, 200, 64):
        metric.add_batch(predictions=pred[i : i + 64], references=ref[i : i + 64])
    out = metric.compute(label_names=LABELS4, n_bootstrap=50, confidence=0.9)
    assert out == compute_ser_metrics(pred, ref, LABELS4, n_bootstrap=50, confidence=0.9)

    with pytest.raises(ValueError, match="label_names"):
        load_ser_metric(keep_in_memory=True).compute(predictions=[0], references=[0])


def test_evaluate_module_per_language_config(offline):
    pred, ref, lang = _random_data(120, seed=10)
    metric = load_ser_metric(config_name="per_language", label_names=LABELS4, keep_in_memory=True)
    for i in range(0, 120, 50):
        metric.add_batch(predictions=pred[i : i + 50], references=ref[i : i + 50], languages=lang[i : i + 50])
    assert metric.compute() == compute_ser_metrics(pred, ref, LABELS4, lang)
    with pytest.raises(ValueError, match="config_name"):
        load_ser_metric(config_name="nope")
