"""Batches holding both modalities, and the method's requirement on the data.

Transcripts come through the shared data layer: the method's `data_checks` hook hands `transcript_checks` to
`hf_mtkd.data.prepare_data`, which runs them before decoding (`hf_mtkd.data.checks.check_transcripts`: an error
naming the clips, or with `on_missing_text: skip` the clips are dropped and listed in the data report), and the
text column rides through splitting and decoding unchanged.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Optional

import numpy as np
import torch

from ..arguments import DataArguments
from ..data.checks import check_transcripts
from ..data.collator import AudioClassificationCollator
from ..data.preprocessing import LABELS, WAVEFORM

TEACHER_LOGITS = "teacher_logits"
TEACHER_TEXT_HIDDEN = "teacher_text_hidden_states"


def require_text_column(data_args: DataArguments) -> str:
    """The transcript column an audio_text run reads; its absence is an error naming the flag."""
    if not data_args.text_column_name:
        raise ValueError(
            "method audio_text reads a transcript per clip: set text_column_name to the column holding them "
            "(the IEMOCAP and MELD readers and the multimodal demo corpus call it 'text')."
        )
    return data_args.text_column_name


def transcript_checks(data_args: DataArguments) -> list:
    """The checks an audio_text run adds to the shared data checks: every clip has a transcript in the text column
    (`on_missing_text` decides between an error and skipping), and the transcripts are not all the same."""
    require_text_column(data_args)
    return [lambda splits, report: check_transcripts(splits, data_args, report)]


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
                    f"Cached teacher text states hold {states.shape[0]} tokens but the transcript now has "
                    f"{int(length)}: "
                    "the cache was made with another tokenizer or max_text_length."
                )
            out[i, : states.shape[0]] = torch.from_numpy(states)
        return out


__all__ = ["AudioTextCollator", "TEACHER_LOGITS", "TEACHER_TEXT_HIDDEN", "require_text_column", "transcript_checks"]
