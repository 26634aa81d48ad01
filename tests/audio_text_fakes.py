"""Tiny audio + text models and a small corpus with transcripts, for the audio_text tests."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import soundfile as sf
from transformers import BertConfig, Wav2Vec2Config, Wav2Vec2FeatureExtractor

from testing_utils import LABELS, TINY_W2V2
from hf_mtkd.models.audio_text import AudioTextForSequenceClassification, AudioTextProcessor, train_wordpiece_tokenizer

# Layer-norm feature encoder: the tiny wav2vec2 takes an attention mask (padding-invariant).
TINY_AUDIO = {**TINY_W2V2, "feat_extract_norm": "layer", "mask_time_prob": 0.0}
TINY_TEXT = {"hidden_size": 32, "num_hidden_layers": 6, "num_attention_heads": 2, "intermediate_size": 64,
             "max_position_embeddings": 64}
WORDS = {
    "angry": "stop it right now",
    "happy": "what a lovely day",
    "neutral": "the bus is at nine",
    "sad": "i miss you so",
}
FUSION = {"fusion_num_attention_heads": 4, "fusion_dropout": 0.0, "head_dropout": 0.0}


def tiny_processor(texts=tuple(WORDS.values())) -> AudioTextProcessor:
    tokenizer = train_wordpiece_tokenizer(list(texts) + ["the meeting is on "
                                                         "tuesday"], vocab_size=80, model_max_length=32)
    return AudioTextProcessor(Wav2Vec2FeatureExtractor(return_attention_mask=True), tokenizer)


def tiny_model(
    processor: AudioTextProcessor, text_layers: int = 6, seed: int = 0, **config
) -> AudioTextForSequenceClassification:
    import torch

    torch.manual_seed(seed)
    text = BertConfig(vocab_size=len(processor.tokenizer), **{**TINY_TEXT, "num_hidden_layers": text_layers})
    return AudioTextForSequenceClassification.from_encoders(
        text, Wav2Vec2Config(**TINY_AUDIO), label_names=list(LABELS), **{**FUSION, **config}
    ).eval()


def write_text_corpus(root: Path, speakers: int = 4, clips_per_label: int = 2, rate: int = 16000,
                      missing_text: tuple[str, ...] = (), blank_text: tuple[str, ...] = ()) -> Path:
    """An audiofolder of tones (pitch by emotion) with a `text` column; speaker 0 test, 1 validation, the rest train.

    `missing_text`: file names whose transcript is left empty; `blank_text`: whose transcript is only spaces.
    """
    rng = np.random.default_rng(0)
    root.mkdir(parents=True, exist_ok=True)
    rows = []
    for s in range(speakers):
        speaker = f"en_spk{s}"
        split = "test" if s == 0 else "validation" if s == 1 else "train"
        for k, label in enumerate(LABELS):
            for c in range(clips_per_label):
                t = np.arange(int((0.4 + 0.2 * rng.random()) * rate)) / rate
                wave = 0.3 * np.sin(2 * np.pi * 150.0 * (k + 1) * t) + 0.01 * rng.standard_normal(t.size)
                name = f"{speaker}_{label}_{c}.wav"
                sf.write(root / name, wave.astype(np.float32), rate)
                text = "" if name in missing_text else "   " if name in blank_text else f"{WORDS[label]} {c}"
                rows.append({"file_name": name, "label": label, "language": "en", "speaker": speaker, "split": split,
                             "text": text})
    with open(root / "metadata.csv", "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return root
