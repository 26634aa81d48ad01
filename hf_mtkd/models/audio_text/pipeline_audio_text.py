"""`pipeline("audio-text-classification", model=dir)`: emotion from a clip and its transcript.

Registered through transformers' `PIPELINE_REGISTRY` with the model (the `pipeline` column of `hf_mtkd.auto_classes`).

    classifier = pipeline("audio-text-classification", model="outputs/demo_audio_text/student_2_kd")
    classifier({"audio": "speech.wav", "text": "I can't believe you did that."})
    # [{'label': 'angry', 'score': ...}, ...]

`audio` is a file path, raw bytes of a file, a mono array at the feature extractor's rate, or
`{"raw" or "array": waveform, "sampling_rate": rate}` (resampled). A text-only model needs only
`text`, an audio-only model only `audio`. A list of such dicts gives a list of results.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from transformers import Pipeline

from ...data.audio import decode_audio


class AudioTextClassificationPipeline(Pipeline):
    """Classifies {"audio": ..., "text": ...} inputs with an `AudioTextForSequenceClassification`."""

    _load_processor = True
    _load_image_processor = False
    _load_feature_extractor = False
    _load_tokenizer = False

    def __call__(self, inputs: dict | list[dict], **kwargs: Any):
        """Top-`top_k` (default: all) emotions with softmax scores, best first."""
        return super().__call__(inputs, **kwargs)

    def _sanitize_parameters(self, top_k=None, **kwargs):
        num_labels = self.model.config.num_labels
        top_k = num_labels if top_k is None else min(int(top_k), num_labels)
        return {}, {}, {"top_k": top_k}

    def preprocess(self, inputs):
        if not isinstance(inputs, dict):
            raise ValueError(
                f"{type(self).__name__} takes a dict {{'audio': ..., 'text': ...}} (or a list of them), got "
                f"{type(inputs).__name__}."
            )
        unknown = set(inputs) - {"audio", "text"}
        if unknown:
            raise ValueError(f"Unknown input key(s) {sorted(unknown)}; give 'audio' and/or 'text'.")
        config = self.model.config
        audio, text = inputs.get("audio"), inputs.get("text")
        if config.uses_text and not (isinstance(text, str) and text.strip()):
            raise ValueError(f"This model ({config.modalities}) needs the transcript: give 'text' (a non-empty "
                             f"string).")
        if config.uses_audio and audio is None:
            raise ValueError(f"This model ({config.modalities}) needs the clip: give 'audio'.")
        waveform = self._waveform(audio) if config.uses_audio else None
        return self.processor(
            audio=waveform, text=text if config.uses_text else None, sampling_rate=self.processor.sampling_rate
        )

    def _waveform(self, audio) -> np.ndarray:
        rate = self.processor.sampling_rate
        if isinstance(audio, np.ndarray) and audio.ndim == 1:
            return audio.astype(np.float32, copy=False)
        if isinstance(audio, dict) and "raw" in audio:
            audio = {"array": audio["raw"], "sampling_rate": audio.get("sampling_rate")}
        return decode_audio(audio, rate)

    def _forward(self, model_inputs):
        return {"logits": self.model(**model_inputs).logits}

    def postprocess(self, model_outputs, top_k=None):
        scores = model_outputs["logits"][0].float().softmax(-1)
        values, ids = scores.topk(top_k or scores.numel())
        id2label = self.model.config.id2label
        return [{"label": id2label[int(i)], "score": float(v)} for v, i in zip(values, ids)]


__all__ = ["AudioTextClassificationPipeline"]
