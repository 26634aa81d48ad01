"""One processor for both inputs: a tokenizer for the transcript and the audio encoder's feature extractor.

Saved beside the model (`save_pretrained` writes the tokenizer files, preprocessor_config.json and
processor_config.json) and loaded by `AutoProcessor.from_pretrained(model_dir)` once the model is registered
(`hf_mtkd.auto_classes.register_auto_models("hf_mtkd_audio_text")`, or load the model first).

Output names: the tokenizer's `input_ids`, `attention_mask` (text) and `token_type_ids`; the feature
extractor's main input (`input_values` for raw-waveform extractors, `input_features` for spectrogram
ones) and its sample mask renamed `audio_attention_mask`, so the two masks never collide.
"""

from __future__ import annotations

from typing import Optional, Sequence, Union

import numpy as np
from transformers import BatchFeature, ProcessorMixin

from ...data.collator import feature_extractor_inputs

AUDIO_MASK = "audio_attention_mask"


class AudioTextProcessor(ProcessorMixin):
    """Tokenizer + audio feature extractor of an `AudioTextForSequenceClassification`."""

    def __init__(self, feature_extractor, tokenizer):
        super().__init__(feature_extractor, tokenizer)

    @property
    def sampling_rate(self) -> int:
        return int(self.feature_extractor.sampling_rate)

    def __call__(
        self,
        audio: Union[np.ndarray, Sequence[np.ndarray], None] = None,
        text: Union[str, Sequence[str], None] = None,
        sampling_rate: Optional[int] = None,
        max_text_length: Optional[int] = None,
        return_tensors: str = "pt",
        **kwargs,
    ) -> BatchFeature:
        """Model inputs for a clip or a batch: `audio` mono waveform(s) at the extractor's rate, `text` transcript(s).

        Batches are padded to their longest member; the masks mark the padding.
        """
        if kwargs:
            raise TypeError(f"AudioTextProcessor got unexpected arguments {sorted(kwargs)}.")
        if audio is None and text is None:
            raise ValueError("Give audio, text or both.")
        if return_tensors != "pt":
            raise ValueError(f"Only return_tensors='pt' is supported, got {return_tensors!r}.")
        data = {}
        if text is not None:
            single = isinstance(text, str)
            texts = [text] if single else list(text)
            bad = [i for i, t in enumerate(texts) if not isinstance(t, str)]
            if bad:
                raise ValueError(f"text must be strings; item {bad[0]} is {texts[bad[0]]!r}.")
            limit = max_text_length or _model_max_length(self.tokenizer)
            data.update(self.tokenizer(texts, padding=True, truncation=True, max_length=limit, return_tensors="pt"))
        if audio is not None:
            rate = sampling_rate if sampling_rate is not None else self.sampling_rate
            if rate != self.sampling_rate:
                raise ValueError(
                    f"audio at {rate} Hz, but the feature extractor expects {self.sampling_rate} Hz: resample first "
                    "(hf_mtkd.data.audio.resample)."
                )
            waveforms = [audio] if isinstance(audio, np.ndarray) and audio.ndim == 1 else list(audio)
            encoded = feature_extractor_inputs(self.feature_extractor, waveforms, rate)
            if "attention_mask" in encoded:
                encoded[AUDIO_MASK] = encoded.pop("attention_mask")
            data.update(encoded)
        if text is not None and audio is not None and len(data["input_ids"]) != len(waveforms):
            raise ValueError(f"{len(data['input_ids'])} transcripts for {len(waveforms)} clips: give one per clip.")
        return BatchFeature(data)

    @property
    def model_input_names(self) -> list[str]:
        audio = [AUDIO_MASK if name == "attention_mask" else name for name in self.feature_extractor.model_input_names]
        return list(dict.fromkeys([*self.tokenizer.model_input_names, *audio]))


def _model_max_length(tokenizer) -> Optional[int]:
    # Tokenizers without a recorded limit report a huge sentinel (1e30): no truncation then.
    limit = getattr(tokenizer, "model_max_length", None)
    return int(limit) if limit is not None and limit < 1_000_000 else None


__all__ = ["AUDIO_MASK", "AudioTextProcessor"]
