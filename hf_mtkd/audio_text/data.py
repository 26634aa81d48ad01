"""Transcripts through the data layer, and batches holding both modalities.

`prepare_audio_text_splits` is the shared data flow (load -> labels -> splits -> decode, see
`hf_mtkd.training.run.prepare_data`) with one step added after label selection: every clip must have
a transcript in `text_column_name`. A clip without one (missing column value, None, empty or blank
text) is an error naming the clip, or with `on_missing_text: skip` it is dropped and counted. The text
column then rides through splitting and decoding unchanged (decoding keeps every metadata column).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, Optional

import numpy as np
import torch
from datasets import Audio, DatasetDict

from ..arguments import DataArguments
from ..data import load_raw_dataset, make_splits, prepare_audio_dataset, select_labels
from ..data.audio import describe_source
from ..data.collator import AudioClassificationCollator
from ..data.preprocessing import LABELS, WAVEFORM

logger = logging.getLogger(__name__)

TEACHER_LOGITS = "teacher_logits"
TEACHER_TEXT_HIDDEN = "teacher_text_hidden_states"
_EXAMPLES = 5


class MissingTranscriptError(ValueError):
    """Clips without a transcript while on_missing_text is 'fail'; the message names them."""


def has_text(value: Any) -> bool:
    return isinstance(value, str) and bool(value.strip())


def require_transcripts(dataset: DatasetDict, data_args: DataArguments) -> tuple[DatasetDict, dict[str, int]]:
    """Check (and with on_missing_text=skip, drop) clips without a transcript; returns the data and the counts dropped."""
    column = data_args.text_column_name
    if not column:
        raise ValueError("This method reads transcripts: set text_column_name to the column holding them.")
    dropped = {}
    out = {}
    for split, ds in dataset.items():
        if column not in ds.column_names:
            raise ValueError(
                f"Column {column!r} (--text_column_name) not found in split {split!r}; its columns are {ds.column_names}."
            )
        missing = [i for i, text in enumerate(ds[column]) if not has_text(text)]
        if missing and data_args.on_missing_text == "fail":
            names = _clip_names(ds, data_args.audio_column_name, missing[:_EXAMPLES])
            raise MissingTranscriptError(
                f"{len(missing)} clip(s) of split {split!r} have no transcript in column {column!r}: "
                + ", ".join(names) + (" ..." if len(missing) > _EXAMPLES else "")
                + ". Fill them in, or set on_missing_text: skip to drop them (counted)."
            )
        if missing:
            names = _clip_names(ds, data_args.audio_column_name, missing[:_EXAMPLES])
            logger.warning("%s: dropping %d of %d clips without a transcript (e.g. %s).", split, len(missing), len(ds),
                           ", ".join(names))
            drop = set(missing)
            ds = ds.select([i for i in range(len(ds)) if i not in drop])
            dropped[split] = len(missing)
        out[split] = ds
    return DatasetDict(out), dropped


def _clip_names(ds, audio_column: str, indices: list[int]) -> list[str]:
    rows = ds.select(indices)
    if isinstance(rows.features.get(audio_column), Audio):
        rows = rows.cast_column(audio_column, Audio(decode=False))  # the path, without decoding
    return [describe_source(cell) for cell in rows[audio_column]]


def prepare_audio_text_splits(data_args: DataArguments, sampling_rate: int):
    """(splits, label_names, languages, dropped-without-transcript counts) with a text column in every split."""
    raw = load_raw_dataset(data_args)
    raw, label_names = select_labels(raw, data_args)
    raw, dropped = require_transcripts(raw, data_args)
    splits = make_splits(raw, data_args)
    splits = prepare_audio_dataset(splits, data_args, sampling_rate, label_names)
    column = data_args.language_column_name
    languages = sorted(set(splits["train"][column])) if column and column in splits["train"].column_names else []
    return splits, label_names, languages, dropped


@dataclass
class AudioTextCollator(AudioClassificationCollator):
    """Rows with `waveform`, a transcript and `labels` -> the processor's inputs for both modalities.

    `feature_extractor` is the processor's; cached teacher outputs in the rows become `teacher_logits`
    (B, K) and `teacher_text_hidden_states` padded to the batch's token length (B, L, D).
    """

    processor: Any = None
    text_column: str = "text"
    max_text_length: Optional[int] = None
    uses_text: bool = True
    uses_audio: bool = True

    def __call__(self, rows: list[dict[str, Any]]) -> dict[str, torch.Tensor]:
        texts = [row[self.text_column] for row in rows] if self.uses_text else None
        waveforms = [self.crop(np.asarray(row[WAVEFORM])) for row in rows] if self.uses_audio else None
        batch = dict(self.processor(audio=waveforms, text=texts, sampling_rate=self.sampling_rate,
                                    max_text_length=self.max_text_length))
        batch["labels"] = torch.tensor([int(row[LABELS]) for row in rows], dtype=torch.long)
        if self.language_to_id is not None:
            batch["language_id"] = torch.tensor(
                [self.language_to_id.get(row[self.language_column], -1) for row in rows], dtype=torch.long
            )
        if rows and TEACHER_LOGITS in rows[0]:
            batch[TEACHER_LOGITS] = torch.as_tensor(np.stack([np.asarray(row[TEACHER_LOGITS]) for row in rows]))
        if rows and TEACHER_TEXT_HIDDEN in rows[0]:
            batch[TEACHER_TEXT_HIDDEN] = self._pad_hidden([np.asarray(row[TEACHER_TEXT_HIDDEN]) for row in rows],
                                                          batch["attention_mask"])
        return batch

    @staticmethod
    def _pad_hidden(hidden: list[np.ndarray], attention_mask: torch.Tensor) -> torch.Tensor:
        lengths = attention_mask.sum(1).tolist()
        out = torch.zeros(len(hidden), attention_mask.shape[1], hidden[0].shape[-1], dtype=torch.float32)
        for i, (states, length) in enumerate(zip(hidden, lengths)):
            if states.shape[0] != length:
                raise ValueError(
                    f"Cached teacher text states hold {states.shape[0]} tokens but the transcript now has {int(length)}: "
                    "the cache was made with another tokenizer or max_text_length."
                )
            out[i, : states.shape[0]] = torch.from_numpy(states)
        return out


__all__ = [
    "AudioTextCollator",
    "MissingTranscriptError",
    "TEACHER_LOGITS",
    "TEACHER_TEXT_HIDDEN",
    "prepare_audio_text_splits",
    "require_transcripts",
]
