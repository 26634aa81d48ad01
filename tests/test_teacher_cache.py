"""The teacher-logit cache: what its fingerprint covers, and what a fill killed half-way leaves behind."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import torch
from datasets import load_from_disk
from transformers import Wav2Vec2FeatureExtractor

from testing_utils import LABELS, clips, save_tiny_classifier
from hf_mtkd.distillation.cache import add_teacher_logits
from hf_mtkd.distillation.teachers import TeacherSpec
from hf_mtkd.distillation.teachers import load_teacher, teacher_fingerprint

FE = Wav2Vec2FeatureExtractor(return_attention_mask=False)


def _teacher(path, dtype="float32"):
    return load_teacher(TeacherSpec(model=str(path), language="en"), LABELS, FE, dtype)


@pytest.fixture
def on_disk(tmp_path):
    """Clips saved to disk, so that `map` writes (and reuses) cache files beside them."""
    clips(4).save_to_disk(tmp_path / "clips")
    return load_from_disk(str(tmp_path / "clips")).with_format("numpy", columns=["waveform", "labels"],
                                                               output_all_columns=True)


def test_fingerprint_covers_the_teacher_config_and_dtype_not_its_path(tmp_path, on_disk):
    save_tiny_classifier(tmp_path / "t", LABELS, seed=1)
    shutil.copytree(tmp_path / "t", tmp_path / "copy")
    reference = teacher_fingerprint(_teacher(tmp_path / "t"))
    assert teacher_fingerprint(_teacher(tmp_path / "copy")) == reference  # same teacher elsewhere: same cache
    assert teacher_fingerprint(_teacher(tmp_path / "t", "bfloat16")) != reference

    first = add_teacher_logits(on_disk, [_teacher(tmp_path / "t")], FE, max_samples=16000)
    # Same weights, another activation: the logits change, so the cache must not be reused.
    config_path = tmp_path / "t" / "config.json"
    config = json.loads(config_path.read_text())
    config_path.write_text(json.dumps({**config, "hidden_act": "relu"}))
    changed = _teacher(tmp_path / "t")
    assert teacher_fingerprint(changed) != reference
    second = add_teacher_logits(on_disk, [changed], FE, max_samples=16000)
    assert second._fingerprint != first._fingerprint
    fresh = np.stack([changed.model(input_values=FE(np.asarray(w), sampling_rate=16000, return_tensors="pt")
                                    .input_values).logits[0, changed.label_index].detach().numpy()
                      for w in on_disk["waveform"]])
    np.testing.assert_allclose(np.asarray(second["teacher_logits"])[:, 0], fresh, rtol=1e-5, atol=1e-6)
    assert not np.allclose(np.asarray(first["teacher_logits"]), np.asarray(second["teacher_logits"]))


def test_a_fill_killed_half_way_leaves_tmp_files_the_next_fill_removes(tmp_path, on_disk, monkeypatch):
    import threading

    from filelock import FileLock

    from hf_mtkd.distillation import cache

    save_tiny_classifier(tmp_path / "t", LABELS, seed=1)
    teacher = _teacher(tmp_path / "t")
    real, calls = cache.teacher_logits_for_batch, [0]

    def killed_after_first_clip(*args, **kwargs):
        calls[0] += 1
        if calls[0] == 2:  # datasets opened its tmp file after the first batch; SystemExit skips its clean-up
            raise SystemExit("killed")
        return real(*args, **kwargs)

    monkeypatch.setattr(cache, "teacher_logits_for_batch", killed_after_first_clip)
    with pytest.raises(SystemExit):
        add_teacher_logits(on_disk, [teacher], FE, max_samples=16000, batch_size=1)
    monkeypatch.setattr(cache, "teacher_logits_for_batch", real)
    folders = [p for p in (tmp_path / "clips").iterdir() if p.name.startswith(cache.FILL_FOLDER_PREFIX)]
    assert len(folders) == 1
    left = [p for p in folders[0].iterdir() if p.name.startswith("tmp")]
    assert len(left) == 1, "the simulated kill should leave datasets' tmp file behind"
    foreign = tmp_path / "clips" / "tmpforeign"  # another writer's file beside the split: not ours
    foreign.write_bytes(b"x")

    # While another process holds the fill lock its tmp file is live: the next fill waits, removing nothing.
    holder = FileLock(str(folders[0] / "fill.lock"))
    holder.acquire()
    results = []
    waiting = threading.Thread(target=lambda: results.append(
        add_teacher_logits(on_disk, [teacher], FE, max_samples=16000, batch_size=1)))
    waiting.start()
    waiting.join(timeout=1.0)
    assert waiting.is_alive() and left[0].exists()
    holder.release()
    waiting.join(timeout=60)
    assert not waiting.is_alive() and results
    assert not left[0].exists() and foreign.exists()
    assert not [p for p in folders[0].iterdir() if p.name.startswith("tmp")]
    clean = add_teacher_logits(clips(4), [teacher], FE, max_samples=16000)  # in memory, from scratch
    np.testing.assert_allclose(
        np.asarray(results[0]["teacher_logits"]), np.asarray(clean["teacher_logits"]), rtol=1e-6
    )


def test_the_cache_is_rebuilt_when_one_teacher_weight_changes_and_reused_otherwise(tmp_path, on_disk, monkeypatch):
    from transformers import AutoModelForAudioClassification

    from hf_mtkd.distillation import cache

    save_tiny_classifier(tmp_path / "t", LABELS, seed=1)
    real, forwards = cache.teacher_logits_for_batch, [0]

    def counted(*args, **kwargs):
        forwards[0] += 1
        return real(*args, **kwargs)

    monkeypatch.setattr(cache, "teacher_logits_for_batch", counted)
    first = np.asarray(
        add_teacher_logits(on_disk, [_teacher(tmp_path / "t")], FE, max_samples=16000)["teacher_logits"]
    )
    built = forwards[0]
    assert built == len(on_disk)  # no attention mask: one teacher forward per clip

    # The same teacher loaded again: the cache is read back, no teacher runs.
    again = add_teacher_logits(on_disk, [_teacher(tmp_path / "t")], FE, max_samples=16000)
    assert forwards[0] == built
    np.testing.assert_array_equal(np.asarray(again["teacher_logits"]), first)

    # Retrained in place: one weight changes (the bias of the teacher's class 0, "angry"), config untouched.
    model = AutoModelForAudioClassification.from_pretrained(tmp_path / "t")
    with torch.no_grad():
        model.classifier.bias[0] += 1.0
    model.save_pretrained(tmp_path / "t")
    rebuilt = np.asarray(
        add_teacher_logits(on_disk, [_teacher(tmp_path / "t")], FE, max_samples=16000)["teacher_logits"]
    )
    assert forwards[0] == 2 * built
    np.testing.assert_allclose(rebuilt[:, 0, 0], first[:, 0, 0] + 1.0, rtol=1e-5)  # only "angry" moves, by 1
    np.testing.assert_allclose(rebuilt[:, 0, 1:], first[:, 0, 1:], rtol=1e-5)
