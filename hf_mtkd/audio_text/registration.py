"""Auto-class and pipeline registrations of the audio + text classifier, in one idempotent call.

After `register_auto_classes()`:
- `AutoConfig`, `AutoModel`, `AutoModelForSequenceClassification` and `AutoModelForAudioTextClassification`
  load saved models (`AutoModelForAudioClassification` deliberately does not: the audio-classification
  pipeline would call the model without its transcript);
- `AutoProcessor` loads the saved tokenizer + feature extractor;
- `pipeline("audio-text-classification", model=dir)` classifies {"audio": ..., "text": ...} inputs.
"""

from __future__ import annotations

from collections import OrderedDict

from transformers import AutoConfig, AutoModel, AutoModelForSequenceClassification, AutoProcessor
from transformers.models.auto.auto_factory import _BaseAutoModelClass, _LazyAutoMapping

PIPELINE_TASK = "audio-text-classification"


class AutoModelForAudioTextClassification(_BaseAutoModelClass):
    """Auto class of emotion classifiers that take a clip and its transcript together."""

    _model_mapping = _LazyAutoMapping(OrderedDict(), OrderedDict())


_registered = False


def register_auto_classes() -> None:
    """Register config, model, processor and the pipeline task with transformers (safe to call repeatedly)."""
    global _registered
    if _registered:
        return
    from transformers.pipelines import PIPELINE_REGISTRY

    from .configuration import AudioTextConfig
    from .modeling import AudioTextForSequenceClassification
    from .pipeline import AudioTextClassificationPipeline
    from .processing import AudioTextProcessor

    AutoConfig.register(AudioTextConfig.model_type, AudioTextConfig, exist_ok=True)
    for auto_class in (AutoModel, AutoModelForSequenceClassification, AutoModelForAudioTextClassification):
        auto_class.register(AudioTextConfig, AudioTextForSequenceClassification, exist_ok=True)
    AutoProcessor.register(AudioTextConfig, AudioTextProcessor, exist_ok=True)
    PIPELINE_REGISTRY.register_pipeline(
        PIPELINE_TASK,
        pipeline_class=AudioTextClassificationPipeline,
        pt_model=AutoModelForAudioTextClassification,
        type="multimodal",
    )
    _registered = True


__all__ = ["AutoModelForAudioTextClassification", "PIPELINE_TASK", "register_auto_classes"]
