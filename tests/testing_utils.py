"""What many test files share: tiny-model factories, tiny corpora and recipes, and the checks every run owes its
user. Fixtures stay in conftest.py; everything a test imports comes from here."""

from __future__ import annotations

import csv
import json
import os
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
from datasets import Dataset
from transformers import AutoConfig, AutoModelForAudioClassification, Wav2Vec2FeatureExtractor, pipeline

RATE = 16000
RECIPES = Path(__file__).resolve().parents[1] / "recipes"

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


def write_tone_corpus(
    root: Path, languages=("en", "fi"), speakers_per_language=3, clips_per_label=2, rate=16000
) -> Path:
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
                    rows.append(
                        {"file_name": name, "label": label, "language": language, "speaker": speaker, "split": split}
                    )
    with open(root / "metadata.csv", "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return root


def tiny_audio_classifier(labels=LABELS, seed=0, model_type: str = "wav2vec2", **config):
    """A freshly initialised (seeded) tiny audio classifier over `labels`: wav2vec2 in TINY_W2V2's sizes unless
    `model_type` and `config` say otherwise."""
    torch.manual_seed(seed)
    sizes = {**(TINY_W2V2 if model_type == "wav2vec2" else {}), **config}
    config = AutoConfig.for_model(model_type, **sizes, num_labels=len(labels), id2label=dict(enumerate(labels)),
                                  label2id={label: i for i, label in enumerate(labels)})
    return AutoModelForAudioClassification.from_config(config)


def save_tiny_classifier(path, labels=LABELS, seed=0, feature_extractor=None, model_type: str = "wav2vec2", **config):
    """`tiny_audio_classifier` saved to `path` with its feature extractor (a wav2vec2 one without attention mask
    unless given); returns the model."""
    model = tiny_audio_classifier(labels, seed, model_type, **config)
    model.save_pretrained(path)
    (feature_extractor or Wav2Vec2FeatureExtractor(return_attention_mask=False)).save_pretrained(path)
    return model


def clips(n=8, seconds=0.3, seed=0) -> Dataset:
    """Rows as the data layer leaves them: a waveform, a class id and a language (no padding: equal lengths)."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * RATE)) / RATE
    rows = {"waveform": [], "labels": [], "language": []}
    for i in range(n):
        label = i % len(LABELS)
        rows["waveform"].append(
            (0.3 * np.sin(2 * np.pi * 150 * (label + 1) * t) + 0.01 * rng.standard_normal(t.size)).astype(np.float32)
        )
        rows["labels"].append(label)
        rows["language"].append("en" if i % 2 == 0 else "fi")
    return Dataset.from_dict(rows).with_format("numpy", columns=["waveform", "labels"], output_all_columns=True)


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


#: Overrides that make any recipe a one-step smoke run.
SMOKE = {
    "max_steps": 1, "eval_strategy": "no", "save_strategy": "no", "load_best_model_at_end": False,
    "per_device_train_batch_size": 4, "per_device_eval_batch_size": 8, "n_bootstrap": 10, "max_duration_seconds": 0.5,
    "report_to": "none",
}


def assert_promised_outputs(out: Path, languages, method: str) -> None:
    """What the READMEs promise a finished run leaves in its output dir (README "Publishing and inference"): the
    model and its feature extractor, validation and test metrics JSON (UR/WR/F1 with CIs, per language), the same
    numbers in run_summary.json and in the model card's model-index, training_args.json, confusion-matrix PNGs per
    language (and the teacher-weight chart for MTKD) when matplotlib is installed."""
    from huggingface_hub import ModelCard

    from hf_mtkd.mtkd.plots import TEACHER_WEIGHTS_FILE
    from hf_mtkd.plots import confusion_matrix_filename, matplotlib_available

    for name in ("config.json", "model.safetensors", "preprocessor_config.json", "run_summary.json",
                 "training_args.json", "README.md"):
        assert (out / name).is_file(), f"{out.name}: no {name}"
    summary = json.loads((out / "run_summary.json").read_text())
    assert summary["method"] == method
    for split in ("validation", "test"):
        metrics = json.loads((out / f"{split}_metrics.json").read_text())
        assert metrics == summary["results"][split], split
        overall = metrics["overall"]
        assert {"UR", "WR", "UR_ci", "WR_ci", "macro_f1", "weighted_f1", "confusion_matrix", "n"} <= set(overall)
        matrix = np.array(overall["confusion_matrix"])
        assert overall["n"] == summary["sizes"][split] == matrix.sum() > 0, split
        assert overall["WR"] == pytest.approx(np.trace(matrix) / matrix.sum()), split
        assert set(metrics["per_language"]) <= set(languages), split
        assert sum(block["n"] for block in metrics["per_language"].values()) == overall["n"], split
    test = summary["results"]["test"]
    card = ModelCard.load(out / "README.md")
    overall_results = {r.metric_type: r.metric_value for r in card.data.eval_results if r.dataset_config is None}
    assert overall_results == {"recall": round(100 * test["overall"]["UR"], 2),
                               "accuracy": round(100 * test["overall"]["WR"], 2)}
    if matplotlib_available():
        for block in ("overall", *test["per_language"]):
            assert (out / confusion_matrix_filename(block)).is_file(), f"{out.name}: no confusion matrix for {block}"
        assert (out / TEACHER_WEIGHTS_FILE).is_file() == (method == "mtkd"), out.name


def assert_pipeline_scores_are_the_softmax(model_dir, wave: np.ndarray, logits: torch.Tensor, labels=LABELS,
                                            rate: int = RATE) -> None:
    """`pipeline("audio-classification")` on the saved model scores `wave` (written to a WAV file) as the softmax of
    `logits`, the model's own output for that clip."""
    classifier = pipeline("audio-classification", model=str(model_dir))
    wav = Path(model_dir) / "clip.wav"
    sf.write(wav, wave, rate)
    result = classifier(str(wav), top_k=None)
    expected = torch.softmax(logits, dim=-1)
    assert {row["label"]: row["score"] for row in result} == pytest.approx(
        {label: float(p) for label, p in zip(labels, expected)}, abs=1e-5)


def write_stub_run(method, recipe: dict):
    """What a stand-in for `training.run` leaves (pipeline tests that train nothing): a finished run in the recipe's
    output_dir, its summary holding perfect validation and test results on two clips."""
    from hf_mtkd.metrics import compute_ser_metrics
    from hf_mtkd.run_summary import RunSummary
    from hf_mtkd.training.run import FINISHED_MARKER

    results = {split: compute_ser_metrics([0, 1], [0, 1], LABELS, n_bootstrap=0) for split in ("validation", "test")}
    os.makedirs(recipe["output_dir"], exist_ok=True)
    summary = RunSummary(method=method.name, label_names=LABELS, results=results)
    summary.save(os.path.join(recipe["output_dir"], FINISHED_MARKER))
    return summary
