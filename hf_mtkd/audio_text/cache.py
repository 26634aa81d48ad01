"""Teacher-output cache: the frozen teacher's logits and text hidden states, computed once per split.

The outputs become dataset columns of the shared teacher-output cache (`hf_mtkd.distillation.cache`, its
file lock and clean-up of half-written files included) under a fingerprint of the split, the teacher's weights and
label
order, the processor (vocabulary and feature extractor) and the crop lengths, so a changed teacher
or preprocessing rebuilds the cache and an unchanged one is read back from the datasets cache.
Each clip's outputs are those of the clip alone: batched when both modalities carry padding masks
(the model is then padding-invariant), one clip at a time otherwise.
"""

from __future__ import annotations

import hashlib
import json

import numpy as np
import torch
from datasets import Array2D, Dataset, List, Value

from ..data.preprocessing import LABELS, WAVEFORM
from ..distillation.cache import cache_teacher_outputs
from ..modeling_utils import hash_weights
from .data import TEACHER_LOGITS, TEACHER_TEXT_HIDDEN
from ..models.audio_text.modeling_audio_text import AudioTextForSequenceClassification
from ..models.audio_text.processing_audio_text import AudioTextProcessor


def processor_key(processor: AudioTextProcessor) -> str:
    """What of the processor changes the teacher's inputs: the vocabulary and the feature extractor's settings."""
    fe = processor.feature_extractor.to_dict()
    fe.pop("processor_class", None)
    vocab = sorted(processor.tokenizer.get_vocab().items())
    return json.dumps({"fe": fe, "vocab": vocab}, sort_keys=True, default=str)


def add_audio_text_teacher_outputs(
    dataset: Dataset,
    teacher: AudioTextForSequenceClassification,
    processor: AudioTextProcessor,
    *,
    label_index: torch.Tensor,
    text_column: str,
    max_samples: int,
    max_text_length: int | None,
    with_text_hidden: bool,
    batch_size: int = 32,
) -> Dataset:
    """Return `dataset` with `teacher_logits` (K,) in the student's label order and, with `with_text_hidden`,
    `teacher_text_hidden_states` (tokens, D) per clip."""
    key = hashlib.sha256()
    key.update(dataset._fingerprint.encode())
    hash_weights(teacher, key)
    key.update(str(label_index.tolist()).encode())
    key.update(processor_key(processor).encode())
    key.update(f"max_samples={max_samples} max_text_length={max_text_length} hidden={with_text_hidden}".encode())
    fingerprint = key.hexdigest()[:32]
    config = teacher.config
    device = next(teacher.parameters()).device
    masked = not config.uses_audio or bool(getattr(processor.feature_extractor, "return_attention_mask", False))

    def outputs_of(waveforms, texts):
        inputs = processor(audio=waveforms if config.uses_audio else None, text=texts if config.uses_text else None,
                           max_text_length=max_text_length)
        with torch.no_grad():
            out = teacher(**{k: v.to(device) for k, v in inputs.items()}, output_text_hidden_states=with_text_hidden)
        logits = out.logits.float()[:, label_index.to(device)].cpu().numpy()
        hidden = []
        if with_text_hidden:
            lengths = inputs["attention_mask"].sum(1).tolist()
            states = out.text_hidden_states.float().cpu().numpy()
            hidden = [states[i, : int(n)] for i, n in enumerate(lengths)]
        return logits, hidden

    def batch_outputs(batch):
        waveforms = [np.asarray(w)[:max_samples] for w in batch[WAVEFORM]]
        texts = list(batch[text_column])
        if masked:
            logits, hidden = outputs_of(waveforms, texts)
        else:
            parts = [outputs_of([w], [t]) for w, t in zip(waveforms, texts)]
            logits = np.concatenate([p[0] for p in parts])
            hidden = [h for p in parts for h in p[1]]
        result = {TEACHER_LOGITS: logits}
        if with_text_hidden:
            result[TEACHER_TEXT_HIDDEN] = hidden
        return result

    features = dataset.features.copy()
    features[TEACHER_LOGITS] = List(Value("float32"))
    columns = [WAVEFORM, LABELS, TEACHER_LOGITS]
    if with_text_hidden:
        features[TEACHER_TEXT_HIDDEN] = Array2D(shape=(None, config.text_config.hidden_size), dtype="float32")
        columns.append(TEACHER_TEXT_HIDDEN)
    was_training = teacher.training
    teacher.eval()
    try:
        out = cache_teacher_outputs(dataset, batch_outputs, features=features, fingerprint=fingerprint,
                                    batch_size=batch_size, desc="Teacher-output cache")
    finally:
        teacher.train(was_training)
    return out.with_format("numpy", columns=columns, output_all_columns=True)


__all__ = ["add_audio_text_teacher_outputs", "processor_key"]
