"""Shared fixtures: tiny model configs and small audio corpora the tests write themselves."""

from __future__ import annotations

import csv
import os
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

# Tiny wav2vec2 (transformers' own tests use similar sizes); total conv stride 320 like wav2vec2-base.
TINY_W2V2 = {
    "hidden_size": 32,
    "num_hidden_layers": 2,
    "num_attention_heads": 2,
    "intermediate_size": 64,
    "conv_dim": [32, 32, 32],
    "conv_stride": [5, 8, 8],
    "conv_kernel": [10, 8, 8],
    "num_conv_pos_embeddings": 16,
    "num_conv_pos_embedding_groups": 2,
    "classifier_proj_size": 32,
}

LABELS = ["angry", "happy", "neutral", "sad"]
SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


def write_tone_corpus(root: Path, languages=("en", "fi"), speakers_per_language=3, clips_per_label=2, rate=16000) -> Path:
    """An audiofolder of short tones whose pitch depends on the emotion, with language/speaker/split columns.

    Speakers: the first of each language is the test speaker, the second validation, the rest train.
    """
    rng = np.random.default_rng(0)
    root.mkdir(parents=True, exist_ok=True)
    rows = []
    for language in languages:
        for s in range(speakers_per_language):
            speaker = f"{language}_spk{s}"
            split = "test" if s == 0 else "validation" if s == 1 else "train"
            for k, label in enumerate(LABELS):
                for c in range(clips_per_label):
                    duration = 0.4 + 0.2 * rng.random()
                    t = np.arange(int(duration * rate)) / rate
                    freq = 150.0 * (k + 1) + 10 * s
                    wave = 0.3 * np.sin(2 * np.pi * freq * t) + 0.01 * rng.standard_normal(t.size)
                    name = f"{speaker}_{label}_{c}.wav"
                    sf.write(root / name, wave.astype(np.float32), rate)
                    rows.append({"file_name": name, "label": label, "language": language, "speaker": speaker, "split": split})
    with open(root / "metadata.csv", "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return root


@pytest.fixture(scope="session")
def tone_corpus(tmp_path_factory) -> Path:
    return write_tone_corpus(tmp_path_factory.mktemp("tone_corpus"))


@pytest.fixture(autouse=True, scope="session")
def _one_torch_thread():
    """Tiny models run faster on one thread, and a busy 2-core machine makes two threads spin."""
    import torch

    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


@pytest.fixture(autouse=True)
def _offline(monkeypatch):
    """No test may reach the Hub."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")


def tiny_recipe(data_dir: str | os.PathLike, output_dir: str | os.PathLike, **overrides) -> dict:
    """A flat recipe for a two-step run of a tiny model on an audiofolder."""
    recipe = {
        "method": "finetune",
        "model_type": "wav2vec2",
        "config_overrides": TINY_W2V2,
        "freeze_feature_encoder": False,
        "data_dir": str(data_dir),
        "max_duration_seconds": 1.0,
        "output_dir": str(output_dir),
        "max_steps": 2,
        "per_device_train_batch_size": 4,
        "per_device_eval_batch_size": 8,
        "learning_rate": 1e-3,
        "eval_strategy": "no",
        "save_strategy": "no",
        "load_best_model_at_end": False,
        "n_bootstrap": 50,
        "report_to": "none",
        "seed": 0,
    }
    recipe.update(overrides)
    return recipe
