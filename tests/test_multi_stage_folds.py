"""Multi-stage runs over the folds of a leave-one-group-out corpus (`folds:` / `--folds`): every stage once per
fold, tested on that fold alone, the table over folds and the paired verdict pooled over every fold's test clips;
every mistake in the fold settings an error before anything trains."""

from __future__ import annotations

import csv
import json
import os
import re

import numpy as np
import pytest
import yaml

from testing_utils import LABELS, tiny_recipe, write_stub_run, write_tone_corpus
from hf_mtkd import multi_stage
from hf_mtkd.cli.main import main as cli_main
from hf_mtkd.config_parser import RecipeError
from hf_mtkd.metrics.axes import FOLDS_CSV, FOLDS_MARKDOWN, VERDICTS_JSON
from hf_mtkd.metrics.paired import stratified_paired_ur_difference
from hf_mtkd.metrics.results_doc import collect_results, render_readme, stale_blocks
from hf_mtkd.multi_stage import run_pipeline
from hf_mtkd.run_summary import RunSummary
from hf_mtkd.training.run import FINISHED_MARKER

FOLD_NAMES = ("S1", "S2", "S3")


@pytest.fixture(scope="module")
def fold_corpus(tmp_path_factory):
    """The tone corpus (6 English speakers, 2 clips per label each) with a `fold` column: two speakers per fold.
    A few clips are removed so that every fold has its own size and label counts (16, 14, 12 clips).
    Returns (corpus folder, fold -> its rows)."""
    root = write_tone_corpus(tmp_path_factory.mktemp("folds") / "corpus", languages=("en",),
                             speakers_per_language=6, clips_per_label=2)
    with open(root / "metadata.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    dropped = {"en_spk2": ("angry", "happy"), "en_spk4": tuple(LABELS)}  # their second clip of these labels
    kept = []
    for row in rows:
        row["fold"] = FOLD_NAMES[int(row["speaker"][-1]) // 2]
        if row["file_name"].endswith("_1.wav") and row["label"] in dropped.get(row["speaker"], ()):
            os.remove(root / row["file_name"])
        else:
            kept.append(row)
    with open(root / "metadata.csv", "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(kept[0]))
        writer.writeheader()
        writer.writerows(kept)
    by_fold = {fold: [row for row in kept if row["fold"] == fold] for fold in FOLD_NAMES}
    assert [len(by_fold[fold]) for fold in FOLD_NAMES] == [16, 14, 12]
    return root, by_fold


def _write(path, common: dict, stages: dict, **keys) -> str:
    path.write_text(yaml.safe_dump({"common": common, **keys, "stages": stages}, sort_keys=False))
    return str(path)


def _common(corpus, **overrides) -> dict:
    common = tiny_recipe(corpus, "unused", max_steps=2, n_bootstrap=200, fold_column_name="fold", **overrides)
    common.pop("output_dir")
    return common


def test_every_fold_runs_every_stage_on_its_own_test_clips_and_the_mean_and_verdict_pool_the_folds(
        fold_corpus, tmp_path, capsys):
    corpus, by_fold = fold_corpus
    config = _write(tmp_path / "p.yaml", _common(corpus),
                    {"floor": {"method": "classic_baseline"}, "ft": {"method": "finetune"}},
                    folds=list(FOLD_NAMES), baseline="floor")
    out = tmp_path / "out"
    summaries = run_pipeline(config, str(out))
    assert sorted(summaries) == sorted(f"fold-{fold}/{stage}" for fold in FOLD_NAMES for stage in ("floor", "ft"))

    metrics, predictions = {}, {}
    for fold in FOLD_NAMES:
        speakers = {row["speaker"] for row in by_fold[fold]}
        expected = sorted(LABELS.index(row["label"]) for row in by_fold[fold])
        for stage in ("floor", "ft"):
            folder = out / f"fold-{fold}" / stage
            metrics[stage, fold] = json.loads((folder / "test_metrics.json").read_text())
            predictions[stage, fold] = json.loads((folder / "test_predictions.json").read_text())
            # The test set is exactly the fold's clips: its size and its labels, clip by clip.
            assert metrics[stage, fold]["overall"]["n"] == len(by_fold[fold]), (stage, fold)
            assert sorted(predictions[stage, fold]["references"]) == expected, (stage, fold)
            # Validation speakers were drawn from the other folds, never from the test fold.
            summary = RunSummary.load(folder / FINISHED_MARKER)
            drawn = set(summary.data_report.drawn_speakers["validation"])
            assert drawn and not drawn & speakers, (stage, fold)
            assert summary.sizes["test"] + summary.sizes["validation"] + summary.sizes["train"] == 42

    # The CSV holds every fold's row, with the numbers of that fold's test_metrics.json.
    with open(out / FOLDS_CSV, newline="") as handle:
        rows = [row for row in csv.DictReader(handle) if row["language"] == "overall"]
    assert [(row["model"], row["fold"]) for row in rows] == [(s, f) for s in ("floor", "ft") for f in FOLD_NAMES]
    for row in rows:
        assert float(row["UR"]) == metrics[row["model"], row["fold"]]["overall"]["UR"]
        assert int(row["n"]) == len(by_fold[row["fold"]])

    # Mean ± sd over folds, computed here from the per-fold test URs.
    markdown, printed = (out / FOLDS_MARKDOWN).read_text(), capsys.readouterr().out
    means = {}
    for stage in ("floor", "ft"):
        urs = [metrics[stage, fold]["overall"]["UR"] for fold in FOLD_NAMES]
        means[stage] = float(np.mean(urs))
        cell = f"{means[stage] * 100:.1f} ± {np.std(urs, ddof=1) * 100:.1f}"
        assert f"| {stage} | 3 | {cell} |" in markdown and cell in printed
    assert "| model | folds |" in markdown and "Test UR over folds ['S1', 'S2', 'S3']" in printed

    # The verdict pools the 42 test clips of the three folds; its difference is that of the means over folds.
    verdicts = json.loads((out / VERDICTS_JSON).read_text())
    verdict = verdicts["verdicts"]["ft"]
    assert verdicts["baseline"] == "floor" and verdict["n_clips"] == 42 and verdict["n_folds"] == 3
    assert verdict["difference"] == pytest.approx(means["ft"] - means["floor"])
    strata = [(predictions["floor", f]["references"], [predictions["floor", f]["predictions"]],
               [predictions["ft", f]["predictions"]]) for f in FOLD_NAMES]
    assert verdict == stratified_paired_ur_difference(strata, len(LABELS), n_bootstrap=200, seed=0).to_dict()
    assert verdict["verdict"] in printed and f"{verdict['difference'] * 100:+.1f}" in markdown
    provenance = json.loads((out / "provenance.json").read_text())
    assert provenance["folds"] == list(FOLD_NAMES) and provenance["baseline"] == "floor"
    # README renders the table over folds from the committed copies of these files, and notices a changed number.
    root = tmp_path / "repo"
    collect_results(out, root / "results" / "folds")
    rendered = render_readme("<!-- results:folds -->\n<!-- /results:folds -->\n", root)
    assert "folds S1, S2, S3" in rendered and verdict["verdict"] in rendered and stale_blocks(rendered, root) == []
    committed = root / "results" / "folds" / FOLDS_CSV
    with open(committed, newline="") as handle:
        table = list(csv.DictReader(handle))
    next(row for row in table if row["language"] == "overall")["UR"] = "0.25"  # a number typed over
    with open(committed, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(table[0]))
        writer.writeheader()
        writer.writerows(table)
    assert stale_blocks(rendered, root) == ["folds"]


@pytest.fixture
def fake_training(monkeypatch):
    """Stand-in for `training.run`: records (stage, recipe, command-line args) and writes a finished run."""
    trained = []

    def fake_run(method, config_path, args, recipe, source):
        trained.append((source.rsplit(":", 1)[1], recipe, list(args)))
        return write_stub_run(method, recipe)

    monkeypatch.setattr(multi_stage, "run", fake_run)
    return trained


def test_folds_from_the_command_line_resolve_each_folds_teacher_and_pass_training_flags_on(fold_corpus, tmp_path,
                                                                                           fake_training):
    corpus, _ = fold_corpus
    stages = {"teacher": {"method": "finetune"},
              "student": {"method": "finetune", "model_type": None, "model_name_or_path": "{output_dir}/teacher"}}
    config = _write(tmp_path / "p.yaml", _common(corpus), stages)
    out = tmp_path / "out"
    # `--seed 3` is every stage's training seed (not `--seeds 3`, which with folds would be refused).
    cli_main(["pipeline", "--config", config, "--output_dir", str(out), "--folds", "S3", "S1", "--seed", "3"])
    assert [name for name, _, _ in fake_training] == ["teacher", "student", "teacher", "student"]
    for (name, recipe, args), fold in zip(fake_training, ("S3", "S3", "S1", "S1")):
        assert recipe["output_dir"] == str(out / f"fold-{fold}" / name) and recipe["test_fold"] == [fold]
        assert args[:2] == ["--seed", "3"]
        if name == "student":  # distilled from (here: started from) its own fold's teacher
            assert recipe["model_name_or_path"] == str(out / f"fold-{fold}" / "teacher")
    record = json.loads((out / "fold-S1" / "student" / multi_stage.STAGE_RECORD).read_text())
    assert record["recipe"]["test_fold"] == ["S1"] and record["recipe"]["seed"] == 3
    with open(out / FOLDS_CSV, newline="") as handle:
        assert {row["fold"] for row in csv.DictReader(handle)} == {"S1", "S3"}
    assert not (out / VERDICTS_JSON).exists() or not json.loads((out / VERDICTS_JSON).read_text())["verdicts"]


@pytest.mark.parametrize("case", [
    "no_fold_column", "unknown_fold", "validation_fold_is_a_fold", "validation_fold_flag", "test_fold_in_common",
    "test_fold_flag",
    "seeds_and_folds", "fold_not_a_folder_name", "fold_column_missing",
])
def test_fold_mistakes_are_errors_naming_them_before_anything_trains(case, fold_corpus, tmp_path, fake_training):
    corpus, _ = fold_corpus
    common, keys, flags = _common(corpus), {"folds": ["S1", "S2"]}, []
    if case == "no_fold_column":
        common.pop("fold_column_name")
        message = "stage 'ft': folds need fold_column_name"
    elif case == "unknown_fold":
        keys["folds"] = ["S1", "S9"]
        message = "stage 'ft': fold 'S9' is not a value of column 'fold' (fold_column_name) in its data; the values " \
                  "are ['S1', 'S2', 'S3']"
    elif case == "validation_fold_is_a_fold":
        common["validation_fold"] = ["S3", "S2"]
        message = "validation_fold ['S3', 'S2'] holds 'S2', the test fold of fold 'S2'"
    elif case == "validation_fold_flag":
        flags = ["--validation_fold", "S1"]
        message = "validation_fold ['S1'] holds 'S1', the test fold of fold 'S1'"
    elif case == "test_fold_in_common":
        common["test_fold"] = ["S1"]
        message = "Stage 'ft' sets test_fold ['S1'], but the pipeline runs folds"
    elif case == "test_fold_flag":
        flags = ["--test_fold", "S3"]
        message = "--test_fold S3 on the command line would replace every fold's test fold"
    elif case == "seeds_and_folds":
        keys["seeds"] = [0, 1]
        message = "seeds [0, 1] and folds ['S1', 'S2'] together are not supported"
    elif case == "fold_not_a_folder_name":
        keys["folds"] = ["S1", "../S2"]
        message = "fold(s) ['../S2'] cannot name a folder"
    else:
        common["fold_column_name"] = "session"
        message = "Column 'session' (--fold_column_name) not found"
    config = _write(tmp_path / "p.yaml", common, {"ft": {"method": "finetune"}}, **keys)
    with pytest.raises(RecipeError, match=re.escape(message)):
        run_pipeline(config, str(tmp_path / "out"), flags)
    assert fake_training == [] and not (tmp_path / "out").exists()


def test_a_validation_fold_outside_the_folds_is_every_folds_validation(fold_corpus, tmp_path, fake_training):
    corpus, _ = fold_corpus
    config = _write(tmp_path / "p.yaml", _common(corpus, validation_fold=["S3"]), {"ft": {"method": "finetune"}},
                    folds=["S1", "S2"])
    run_pipeline(config, str(tmp_path / "out"))
    assert [(recipe["test_fold"], recipe["validation_fold"]) for _, recipe, _ in fake_training] == [
        (["S1"], ["S3"]), (["S2"], ["S3"])]
