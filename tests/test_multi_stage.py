"""Multi-stage runs: every stage validated before any trains; a finished stage reused only while its resolved
recipe, its data and the stages it reads from are unchanged (and the reason printed either way)."""

from __future__ import annotations

import csv
import json
import os
import re
import shutil

import numpy as np
import pytest
import yaml

from testing_utils import LABELS, tiny_recipe, write_stub_run, write_tone_corpus
from hf_mtkd import multi_stage
from hf_mtkd.config_parser import RecipeError
from hf_mtkd.metrics import compute_ser_metrics, read_comparison_csv
from hf_mtkd.multi_stage import STAGE_RECORD, run_pipeline
from hf_mtkd.run_summary import RunSummary
from hf_mtkd.training.run import FINISHED_MARKER


def _pipeline(path, common: dict, stages: dict) -> str:
    path.write_text(yaml.safe_dump({"common": common, "stages": stages}, sort_keys=False))
    return str(path)


def _common(corpus) -> dict:
    common = tiny_recipe(corpus, "unused", max_steps=1, n_bootstrap=10)
    common.pop("output_dir")
    return common


def test_every_stage_is_validated_before_the_first_trains(tmp_path):
    common = _common(tmp_path / "no_data_needed")
    bad_key = _pipeline(tmp_path / "p1.yaml", common, {"a": {"method": "finetune"},
                                                       "b": {"method": "finetune", "lerning_rate": 0.1}})
    with pytest.raises(RecipeError, match=r"p1\.yaml:b: unknown key\(s\) lerning_rate"):
        run_pipeline(bad_key, str(tmp_path / "out"))
    bad_value = _pipeline(tmp_path / "p2.yaml", common, {"a": {"method": "finetune"},
                                                         "b": {"method": "mtkd", "teachers": [], "kd_lambda": 0.5}})
    with pytest.raises(ValueError, match="teachers is empty"):
        run_pipeline(bad_value, str(tmp_path / "out"))
    bad_method = _pipeline(tmp_path / "p3.yaml", common, {"a": {"method": "finetune"}, "b": {"method": "finetun"}})
    with pytest.raises(RecipeError, match=r"stage 'b': Unknown method 'finetun'"):
        run_pipeline(bad_method, str(tmp_path / "out"))
    assert not (tmp_path / "out" / "a").exists()  # stage a never started


def test_a_path_in_the_pipeline_folder_names_an_earlier_stage_or_exists(tmp_path, fake_training):
    """`{output_dir}/...` in a value is resolved while the pipeline is parsed: a typo, or a stage that comes later,
    is an error naming the stage, the key and the path before the first stage trains."""
    common = _common(tmp_path / "no_data_needed")
    out = tmp_path / "out"
    for student, where in (
        ({"model_type": None, "model_name_or_path": "{output_dir}/nonexistent"}, "model_name_or_path"),
        ({"model_type": None, "model_name_or_path": "{output_dir}/teacher"}, "model_name_or_path"),  # its own folder
        ({"method": "mtkd", "teachers": [{"model": "{output_dir}/teacher_en", "language": "en"}]}, "teachers"),
        ({"model_type": None, "model_name_or_path": "{output_dir}/later"}, "model_name_or_path"),  # a later stage
    ):
        stages = {"teacher_e": {"method": "finetune"},
                  "teacher": {"method": "finetune", **student},
                  "later": {"method": "finetune"}}
        config = _pipeline(tmp_path / "p.yaml", common, stages)
        bad = student.get("model_name_or_path") or student["teachers"][0]["model"]
        path = bad.replace("{output_dir}", str(out))
        with pytest.raises(RecipeError, match=re.escape(f"stage 'teacher': key '{where}' names {path!r}")):
            run_pipeline(config, str(out))
        assert fake_training == [] and not out.exists()

    # An earlier stage's folder, a path inside one, or a path that exists already are fine.
    corpus = write_tone_corpus(tmp_path / "corpus", languages=("en",), speakers_per_language=3, clips_per_label=1)
    (out / "shared").mkdir(parents=True)
    stages = {"teacher": {"method": "finetune"},
              "student": {"method": "finetune", "model_type": None, "model_name_or_path": "{output_dir}/teacher/",
                          "feature_extractor_name": "{output_dir}/teacher/.", "cache_dir": "{output_dir}/shared"}}
    run_pipeline(_pipeline(tmp_path / "p.yaml", _common(corpus), stages), str(out))
    assert fake_training == ["teacher", "student"]


def test_rerun_after_changing_data_dir_and_learning_rate_retrains(tmp_path, capsys):
    corpus = write_tone_corpus(tmp_path / "corpus", languages=("en",))
    config = _pipeline(tmp_path / "p.yaml", _common(corpus), {"ft": {"method": "finetune"}})
    out = tmp_path / "out"
    run_pipeline(config, str(out))
    weights = out / "ft" / "model.safetensors"
    first = os.stat(weights).st_mtime_ns
    assert (out / "ft" / STAGE_RECORD).exists()
    capsys.readouterr()

    run_pipeline(config, str(out))
    assert "Stage ft: reusing the finished run" in capsys.readouterr().out
    assert os.stat(weights).st_mtime_ns == first

    other = write_tone_corpus(tmp_path / "other_corpus", languages=("en",))  # written anew: other files
    run_pipeline(config, str(out), ["--data_dir", str(other), "--learning_rate", "0.002"])
    printed = capsys.readouterr().out
    assert "Stage ft: reusing" not in printed and "retraining: recipe changed" in printed
    assert "learning_rate: 0.001 -> 0.002" in printed and "data_dir" in printed and "data changed" in printed
    assert os.stat(weights).st_mtime_ns != first


@pytest.fixture
def fake_training(monkeypatch):
    """Stand-in for `training.run`: writes a finished run (its summary) and records which stages trained, so the
    reuse rules are tested without training anything."""
    trained = []

    def fake_run(method, config_path, args, recipe, source):
        trained.append(source.rsplit(":", 1)[1])
        assert ("--overwrite_output_dir" in args) == os.path.exists(
            os.path.join(recipe["output_dir"], FINISHED_MARKER)
        )
        return write_stub_run(method, recipe)

    monkeypatch.setattr(multi_stage, "run", fake_run)
    return trained


def test_a_stage_reading_a_retrained_stage_is_retrained_and_data_is_checked_in_place(tmp_path, fake_training, capsys):
    corpus = write_tone_corpus(tmp_path / "corpus", languages=("en",), speakers_per_language=3, clips_per_label=1)
    stages = {"teacher": {"method": "finetune"},
              "student": {"method": "finetune", "model_type": None, "model_name_or_path": "{output_dir}/teacher"},
              "baseline": {"method": "finetune"}}
    config = _pipeline(tmp_path / "p.yaml", _common(corpus), stages)
    out = tmp_path / "out"
    run_pipeline(config, str(out))
    assert fake_training == ["teacher", "student", "baseline"]

    run_pipeline(config, str(out))
    assert fake_training[3:] == []

    # Only the teacher's recipe changes: the student, which starts from it, retrains too; the baseline does not.
    stages["teacher"]["learning_rate"] = 0.002
    config = _pipeline(tmp_path / "p.yaml", _common(corpus), stages)
    capsys.readouterr()
    run_pipeline(config, str(out))
    printed = capsys.readouterr().out
    assert fake_training[3:] == ["teacher", "student"]
    assert "stage(s) ['teacher'] it reads from were retrained" in printed and "Stage baseline: reusing" in printed

    # A clip rewritten in place (same folder, same names) is a data change for every stage.
    clip = next(corpus.glob("*.wav"))
    clip.write_bytes(clip.read_bytes() + b"\0\0")
    run_pipeline(config, str(out))
    assert fake_training[5:] == ["teacher", "student", "baseline"]

    # A stage folder without its record (trained by hand, or by an older hf_mtkd) cannot be trusted.
    os.remove(out / "baseline" / STAGE_RECORD)
    capsys.readouterr()
    run_pipeline(config, str(out))
    assert fake_training[8:] == ["baseline"] and f"no readable {STAGE_RECORD}" in capsys.readouterr().out

    # The pipeline folder moved elsewhere: paths inside it are recorded relative to it, so nothing retrains.
    shutil.move(str(out), str(tmp_path / "moved"))
    run_pipeline(config, str(tmp_path / "moved"))
    assert fake_training[9:] == []


def test_wall_time_per_stage_comparison_files_and_training_warnings_without_breaking_reuse(tmp_path, monkeypatch,
                                                                                           capsys):
    trained = []

    def fake_run(method, config_path, args, recipe, source):
        name = source.rsplit(":", 1)[1]
        trained.append(name)
        clock.append(clock[-1] + {"teacher": 65.0, "student": 3.0}[name])  # the stage's training time
        results = {split: compute_ser_metrics([0, 1, 2, 3], [0, 1, 2, 2], LABELS, n_bootstrap=0)
                   for split in ("validation", "test")}
        warnings = ["Validation UR was at chance level"] if name == "student" else []
        summary = RunSummary(method=method.name, label_names=LABELS, results=results, training_warnings=warnings)
        os.makedirs(recipe["output_dir"], exist_ok=True)
        summary.save(os.path.join(recipe["output_dir"], FINISHED_MARKER))
        return summary

    clock = [1000.0]
    monkeypatch.setattr(multi_stage, "run", fake_run)
    monkeypatch.setattr(multi_stage.time, "monotonic", lambda: clock[-1])
    corpus = write_tone_corpus(tmp_path / "corpus", languages=("en",), speakers_per_language=3, clips_per_label=1)
    config = _pipeline(tmp_path / "p.yaml", _common(corpus),
                       {"teacher": {"method": "finetune"}, "student": {"method": "finetune"}})
    out = tmp_path / "out"
    run_pipeline(config, str(out))
    printed = capsys.readouterr().out
    assert "Stage teacher finished in 1 min 05 s." in printed and "Stage student finished in 3 s." in printed
    assert "Wall time per stage: teacher 1 min 05 s, student 3 s; this run 1 min 08 s in all." in printed
    assert "Training warning, stage student: Validation UR was at chance level" in printed
    report = printed[printed.index("Stage student finished"):printed.index("Definitions")]
    assert [line for line in report.splitlines() if len(line) > 120 and line.strip() != str(out)] == []
    assert (
        f"Also in comparison.md and comparison.csv (with the per-language CIs, WR and F1s), in\n  {out}\n" in printed
    )
    record = json.loads((out / "teacher" / STAGE_RECORD).read_text())
    assert record["wall_time_s"] == 65.0
    markdown = (out / "comparison.md").read_text()
    assert (
        "| teacher |" in markdown
        and "| student |" in markdown
        and "Wall time per stage: teacher 1 min 05 s" in markdown
    )
    assert [row["model"] for row in read_comparison_csv(out / "comparison.csv") if row["language"] == "overall"] == [
        "teacher", "student"]

    # Rerun: the record now also holds the wall time, and that is no reason to retrain; nor are arguments that
    # only change what is reported (the chance-level warning) or depend on the machine (pinned memory).
    run_pipeline(config, str(out), ["--chance_level_patience", "5", "--dataloader_pin_memory", "false"])
    printed = capsys.readouterr().out
    assert (
        trained == ["teacher", "student"]
        and "Stage teacher: reusing" in printed
        and "Stage student: reusing" in printed
    )
    assert ("Wall time per stage: teacher 1 min 05 s (reused, trained earlier), student 3 s (reused, trained "
            "earlier); this run 0 s in all.") in " ".join(printed.split())  # wrapped at 120 columns
    assert "Training warning, stage student" in printed  # from the reused stage's summary

    # A record written before wall times: still reused, its time not known.
    del record["wall_time_s"]
    (out / "teacher" / STAGE_RECORD).write_text(json.dumps(record))
    run_pipeline(config, str(out))
    printed = capsys.readouterr().out
    assert trained == ["teacher", "student"] and "teacher (reused, not timed), student 3 s (reused" in printed


def test_a_seed_flag_that_would_make_every_seed_run_the_same_is_refused(tmp_path):
    corpus = write_tone_corpus(tmp_path / "corpus", languages=("en",))
    path = tmp_path / "p.yaml"
    path.write_text(yaml.safe_dump({"common": _common(corpus), "seeds": [0, 1],
                                    "stages": {"a": {"method": "finetune"}}}))
    with pytest.raises(RecipeError, match=r"seed run 0 would train with seed 3 .*--seeds instead"):
        run_pipeline(str(path), str(tmp_path / "out"), ["--seed", "3"])
    assert not (tmp_path / "out").exists()  # refused before anything trained


def test_seeds_and_a_baseline_give_mean_sd_and_paired_verdicts(tmp_path, capsys):
    from hf_mtkd.metrics.paired import paired_ur_difference
    from hf_mtkd.metrics.axes import SEEDS_CSV, VERDICTS_JSON

    corpus = write_tone_corpus(tmp_path / "corpus", languages=("en",))
    common = {**_common(corpus), "max_steps": 3, "n_bootstrap": 200}
    path = tmp_path / "p.yaml"
    path.write_text(yaml.safe_dump({"common": common, "seeds": [0, 1], "baseline": "slow",
                                    "stages": {"slow": {"method": "finetune", "learning_rate": 1e-6},
                                               "fast": {"method": "finetune", "learning_rate": 3e-3}}},
                                   sort_keys=False))
    out = tmp_path / "out"
    summaries = run_pipeline(str(path), str(out))
    assert sorted(summaries) == ["seed-0/fast", "seed-0/slow", "seed-1/fast", "seed-1/slow"]
    for seed in (0, 1):  # each seed's stages trained with that seed, in its own folder
        args = json.loads((out / f"seed-{seed}" / "fast" / "training_args.json").read_text())
        assert args["seed"] == seed
    rows = [row for row in csv.DictReader(open(out / SEEDS_CSV))]
    assert {(r["model"], r["seed"]) for r in rows if r["language"] == "overall"} == {
        ("slow", "0"), ("slow", "1"), ("fast", "0"), ("fast", "1")}
    # The verdict is the paired bootstrap of the stages' own per-clip predictions.
    preds = {(m, s): json.loads((out / f"seed-{s}" / m / "test_predictions.json").read_text())
             for m in ("slow", "fast") for s in (0, 1)}
    expected = paired_ur_difference(preds["slow", 0]["references"], [preds["slow", s]["predictions"] for s in (0, 1)],
                                    [preds["fast", s]["predictions"] for s in (0, 1)], len(LABELS),
                                    n_bootstrap=200, seed=0)
    verdict = json.loads((out / VERDICTS_JSON).read_text())["verdicts"]["fast"]
    assert verdict == expected.to_dict()
    printed = capsys.readouterr().out
    assert "Test UR over seeds [0, 1]" in printed and expected.verdict in printed
    ur = [float(r["UR"]) for r in rows if r["model"] == "fast" and r["language"] == "overall"]
    assert f"{np.mean(ur) * 100:.1f} ± {np.std(ur, ddof=1) * 100:.1f}" in printed


def test_a_pipeline_run_twice_gives_identical_metrics(tmp_path):
    corpus = write_tone_corpus(tmp_path / "corpus", languages=("en",))
    config = _pipeline(tmp_path / "p.yaml", {**_common(corpus), "max_steps": 2}, {"ft": {"method": "finetune"}})
    run_pipeline(config, str(tmp_path / "a"))
    run_pipeline(config, str(tmp_path / "b"))
    first, second = (json.loads((tmp_path / d / "ft" / "test_metrics.json").read_text()) for d in "ab")
    assert first == second
    assert (tmp_path / "a" / "ft" / "model.safetensors").read_bytes() == (
        tmp_path / "b" / "ft" / "model.safetensors"
    ).read_bytes()
