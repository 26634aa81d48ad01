"""Multi-stage runs: every stage validated before any trains; a finished stage reused only while its resolved
recipe, its data and the stages it reads from are unchanged (and the reason printed either way)."""

from __future__ import annotations

import os
import shutil

import pytest
import yaml

from conftest import LABELS, tiny_recipe, write_tone_corpus
from hf_mtkd import multi_stage
from hf_mtkd.config_parser import RecipeError
from hf_mtkd.metrics import compute_ser_metrics
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
        assert ("--overwrite_output_dir" in args) == os.path.exists(os.path.join(recipe["output_dir"], FINISHED_MARKER))
        results = {split: compute_ser_metrics([0, 1], [0, 1], LABELS, n_bootstrap=0) for split in ("validation", "test")}
        os.makedirs(recipe["output_dir"], exist_ok=True)
        summary = RunSummary(method=method.name, label_names=LABELS, results=results)
        summary.save(os.path.join(recipe["output_dir"], FINISHED_MARKER))
        return summary

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
