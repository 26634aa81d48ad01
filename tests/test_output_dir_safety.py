"""Nothing outside output_dir is touched, no run continues another run's checkpoint, a full disk says so, and every
dropped row or unseen language is in the results (issue 19, first part)."""

import csv
import errno
import json
import logging
import shutil

import pytest
import torch
import yaml

from testing_utils import tiny_recipe, write_tone_corpus
from hf_mtkd.config_parser import RecipeError
from hf_mtkd.registry import get_method
from hf_mtkd.multi_stage import run_pipeline
from hf_mtkd.training.run import FINISHED_MARKER, run
from hf_mtkd.training.run_record import RUN_RECORD, RunMismatchError


def test_a_stage_name_that_leaves_the_pipeline_folder_is_refused_before_anything_runs(tone_corpus, tmp_path):
    victim = tmp_path / "out" / "victim"
    victim.mkdir(parents=True)
    (victim / "precious.txt").write_text("mine")
    for bad in ("../../victim", "../victim", "a/b", "/abs", ".hidden", ".."):
        pipeline = {
            "output_dir": str(tmp_path / "out" / "p" / "inner"),
            "common": tiny_recipe(tone_corpus, "unused"),
            "stages": {"ok": {"method": "finetune"}, bad: {"method": "finetune"}},
        }
        config = tmp_path / "pipeline.yaml"
        config.write_text(yaml.safe_dump(pipeline))
        with pytest.raises(RecipeError, match="is not a plain name"):
            run_pipeline(str(config), overwrite=True)
    assert (victim / "precious.txt").read_text() == "mine"
    assert not (tmp_path / "out" / "p").exists()  # not even the first stage ran


def test_overwrite_keeps_files_the_run_did_not_write(tone_corpus, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "precious.txt").write_text("mine")
    run(get_method("finetune"), recipe=tiny_recipe(tone_corpus, out, n_bootstrap=0))
    (out / "sub").mkdir()
    (out / "sub" / "notes.md").write_text("added after the run")
    written = json.loads((out / RUN_RECORD).read_text())["files"]
    assert "model.safetensors" in written and "precious.txt" not in written
    run(get_method("finetune"), recipe=tiny_recipe(tone_corpus, out, n_bootstrap=0, overwrite_output_dir=True))
    assert (out / "precious.txt").read_text() == "mine" and (out / "sub" / "notes.md").exists()
    assert (out / FINISHED_MARKER).exists()


def _save_every_step(corpus, out, **overrides):
    return tiny_recipe(corpus, out, save_strategy="steps", save_steps=2, max_steps=4, n_bootstrap=0, **overrides)


def test_a_checkpoint_is_resumed_only_by_the_run_that_made_it(tone_corpus, tmp_path, caplog):
    first = tmp_path / "first"
    run(get_method("finetune"), recipe=_save_every_step(tone_corpus, first))
    copied = tmp_path / "copied"
    shutil.copytree(first / "checkpoint-2", copied / "checkpoint-2")

    # Another recipe (learning rate) over the copied checkpoint: refused before anything is written or trained.
    with pytest.raises(RunMismatchError, match=r"checkpoint-2 was written by another run.*learning_rate: 0.001 -> "
                                               r"0.005"):
        run(get_method("finetune"), recipe=_save_every_step(tone_corpus, copied, learning_rate=5e-3))
    assert sorted(p.name for p in copied.iterdir()) == ["checkpoint-2"]

    # Other data: refused, naming the data.
    other = write_tone_corpus(tmp_path / "other_corpus", clips_per_label=3)
    with pytest.raises(RunMismatchError, match=r"checkpoint-2 was written by another run.*data \(it ran on .*49 "
                                               r"files; this run reads .*73 files\)"):
        run(get_method("finetune"), recipe=_save_every_step(other, copied))

    # A checkpoint of a plain Trainer (no record): refused too.
    plain = tmp_path / "plain"
    shutil.copytree(first / "checkpoint-2", plain / "checkpoint-2")
    (plain / "checkpoint-2" / RUN_RECORD).unlink()
    with pytest.raises(RunMismatchError, match="records no recipe or data"):
        run(get_method("finetune"), recipe=_save_every_step(tone_corpus, plain))

    # The same recipe and data: resumed, and the log and the run summary say so.
    with caplog.at_level(logging.WARNING, logger="hf_mtkd"):
        summary = run(get_method("finetune"), recipe=_save_every_step(tone_corpus, copied))
    assert "Resuming from" in caplog.text and "checkpoint-2" in caplog.text
    assert summary.resumed_from == "checkpoint-2"
    assert json.loads((copied / FINISHED_MARKER).read_text())["resumed_from"] == "checkpoint-2"
    steps = [entry["step"] for entry in json.loads((copied / "trainer_state.json").read_text())["log_history"]]
    assert steps == sorted(steps) and steps[-1] == 4


def test_a_full_disk_names_the_checkpoint_and_leaves_no_partial_one(tone_corpus, tmp_path, monkeypatch):
    out = tmp_path / "out"
    real_save = torch.save

    def disk_full(obj, f, *args, **kwargs):
        if "checkpoint-2" in str(f):  # what torch's zip writer raises when the file system runs out of space
            raise RuntimeError("[enforce fail at inline_container.cc:672] . unexpected pos 4160 vs 4052")
        return real_save(obj, f, *args, **kwargs)

    monkeypatch.setattr(torch, "save", disk_full)
    with pytest.raises(OSError, match=r"No space left on device while writing the checkpoint .*checkpoint-2") as err:
        run(get_method("finetune"), recipe=_save_every_step(tone_corpus, out))
    assert err.value.errno == errno.ENOSPC
    assert not (out / "checkpoint-2").exists()


def _corpus_with(tmp_path, extra_rows):
    root = write_tone_corpus(tmp_path / "corpus")
    with open(root / "metadata.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    for row in extra_rows:
        template = next(r for r in rows if r["split"] == "test")
        rows.append({**template, **row})
        shutil.copy(root / template["file_name"], root / row["file_name"])
    with open(root / "metadata.csv", "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return root


def test_a_test_clip_dropped_for_its_label_is_in_the_metrics_and_card(tmp_path):
    corpus = _corpus_with(tmp_path, [{"file_name": "surprise.wav", "label": "surprised"}])
    out = tmp_path / "out"
    run(get_method("finetune"), recipe=tiny_recipe(corpus, out, n_bootstrap=0,
                                                   labels=["angry", "happy", "neutral", "sad"]))
    warnings = json.loads((out / "test_metrics.json").read_text())["data_warnings"]
    assert any("Dropped 1 row(s)" in w and "test: surprised 1" in w for w in warnings), warnings
    assert "test: surprised 1" in (out / "README.md").read_text()


def test_a_language_never_seen_in_training_is_a_warning(tmp_path):
    corpus = _corpus_with(tmp_path, [{"file_name": "fr_0.wav", "language": "fr", "speaker": "fr_spk0"},
                                     {"file_name": "fr_1.wav", "language": "fr", "speaker": "fr_spk0"}])
    out = tmp_path / "out"
    run(get_method("finetune"), recipe=tiny_recipe(corpus, out, n_bootstrap=0))
    warnings = json.loads((out / "test_metrics.json").read_text())["data_warnings"]
    assert any("['fr'] in the test split have no training clips (fr 2 clip(s)" in w for w in warnings), warnings
