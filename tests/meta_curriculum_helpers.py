"""Tiny models and datasets shared by the meta-curriculum tests."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from datasets import Dataset, Features, List, Value, load_from_disk
from transformers import HubertConfig, HubertModel, Wav2Vec2FeatureExtractor

from hf_mtkd.models.inverted_transformer import InvertedTransformerConfig, InvertedTransformerForFeatureClassification
from hf_mtkd.meta_curriculum.features import numeric_format

LABELS = ["angry", "happy", "neutral", "sad"]
RATE = 16000
TINY_HUBERT = {
    "hidden_size": 16, "num_hidden_layers": 2, "num_attention_heads": 2, "intermediate_size": 32,
    "conv_dim": [16, 16, 16], "conv_stride": [5, 8, 8], "conv_kernel": [10, 8, 8], "num_conv_pos_embeddings": 16,
    "num_conv_pos_embedding_groups": 2, "feat_extract_norm": "layer", "do_stable_layer_norm": True,
}  # fmt: skip
TINY_STUDENT = {"d_model": 8, "num_hidden_layers": 1, "num_attention_heads": 2, "intermediate_size": 16,
                "classifier_hidden_size": 8, "contrastive_dim": 4}


def tones(n: int, seed: int = 0, min_seconds: float = 0.3, max_seconds: float = 0.6) -> list[np.ndarray]:
    """Noisy tones whose pitch follows the label index (i % 4)."""
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        t = np.arange(int(RATE * rng.uniform(min_seconds, max_seconds))) / RATE
        wave = 0.3 * np.sin(2 * np.pi * 150.0 * (i % 4 + 1) * t) + 0.02 * rng.standard_normal(t.size)
        out.append(wave.astype(np.float32))
    return out


def waveform_dataset(path: Path, n: int = 8, seed: int = 0, **columns) -> Dataset:
    """A file-backed split as prepare_audio_dataset leaves it: waveform, labels, language (+ `columns`)."""
    data = {"waveform": tones(n, seed), "labels": [i % 4 for i in range(n)],
            "language": ["en" if i % 2 else "fi" for i in range(n)], **columns}
    features = Features({"waveform": List(Value("float32")), "labels": Value("int64"), "language": Value("string"),
                         **{name: Value("string") for name in columns}})
    Dataset.from_dict(data, features=features).save_to_disk(str(path))
    return numeric_format(load_from_disk(str(path)))


def save_tiny_hubert(path: Path, seed: int = 0) -> HubertModel:
    torch.manual_seed(seed)
    model = HubertModel(HubertConfig(**TINY_HUBERT))
    model.save_pretrained(path)
    Wav2Vec2FeatureExtractor(return_attention_mask=True, do_normalize=True).save_pretrained(path)
    return model


def tiny_student(frames: int, channels: int, layers: int = 1, seed: int = 0, labels=LABELS):
    torch.manual_seed(seed)
    config = InvertedTransformerConfig(
        **TINY_STUDENT,
        num_frames=frames,
        num_channels=channels,
        num_upstream_layers=layers,
        id2label=dict(enumerate(labels)),
        label2id={label: i for i, label in enumerate(labels)},
    )
    return InvertedTransformerForFeatureClassification(config)


def state(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {name: tensor.detach().clone() for name, tensor in module.state_dict().items()}


def changed(before: dict, module: torch.nn.Module) -> set[str]:
    after = module.state_dict()
    return {name for name, tensor in before.items() if not torch.equal(tensor, after[name])}


class FixedMetaTeacher(torch.nn.Module):
    """A stand-in T': logits = the teacher-features column as given; through its head every student scores 0."""

    def __init__(self, num_labels: int):
        super().__init__()
        self.num_labels = num_labels
        self.unused = torch.nn.Linear(1, 1)

    def forward(self, teacher_features):
        return teacher_features

    def classify_student(self, pooled, trainable=False):
        return torch.zeros(pooled.shape[0], self.num_labels, device=pooled.device)


def easy_first_task(n: int = 160, frames: int = 8, channels: int = 6, seed: int = 0):
    """(train, quiz, easy rows, hard rows) of a feature-level task built so that easy-first helps.

    Four classes, one random prototype each. Easy clips ("intense"): 3 x the prototype + little noise, true labels.
    Hard clips ("subtle"): the prototype + 0.8 x another class's prototype (a mixed expression), a quarter of them
    with a wrong label (annotators disagree on subtle clips). The quiz holds both kinds (32 + 32), correctly labelled.
    Early on, hard batches mostly teach the confusions and the label noise, easy ones the prototypes; once the easy
    clips are learnt, only hard batches still move the quiz's mixed clips."""
    rng = np.random.default_rng(seed)
    prototypes = rng.standard_normal((4, frames, channels))

    def make(m, scale, noise, mixed):
        y = np.arange(m) % 4
        x = scale * prototypes[y] + noise * rng.standard_normal((m, frames, channels))
        if mixed:
            x = x + 0.8 * prototypes[(y + rng.integers(1, 4, m)) % 4]
        return x.astype(np.float32), y

    easy_x, easy_y = make(n, 3.0, 0.1, False)
    hard_x, hard_y = make(n, 1.0, 0.3, True)
    wrong = rng.random(n) < 0.25
    hard_y = np.where(wrong, (hard_y + rng.integers(1, 4, n)) % 4, hard_y)
    quiz_hard_x, quiz_hard_y = make(32, 1.0, 0.3, True)
    quiz_easy_x, quiz_easy_y = make(32, 3.0, 0.1, False)
    train = Dataset.from_dict({"input_features": np.concatenate([easy_x, hard_x]).tolist(),
                               "labels": np.concatenate([easy_y, hard_y]).tolist()})
    quiz = Dataset.from_dict({"input_features": np.concatenate([quiz_hard_x, quiz_easy_x]).tolist(),
                              "labels": np.concatenate([quiz_hard_y, quiz_easy_y]).tolist(),
                              "teacher_features": np.zeros((64, 4), dtype=np.float32).tolist()})
    return numeric_format(train), numeric_format(quiz), np.arange(n), np.arange(n, 2 * n)
