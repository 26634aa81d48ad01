"""The processor and the pipeline task of the audio + text classifier, registered with transformers.

`import hf_mtkd` registers `AudioTextConfig` with `AutoConfig` (the `hf_mtkd.auto_classes` table); making the
first such config registers the model with `AutoModel` / `AutoModelForSequenceClassification` (the table's lazy
step) and calls `register_auto_classes()` below, which adds what the table has no column for: `AutoProcessor`
and the "audio-text-classification" pipeline task. Both import transformers' processing and pipeline stacks
(seconds), which is why they wait for the first audio_text config instead of `import hf_mtkd`.
`pipeline(task, model=dir)` and `AutoModel*.from_pretrained(dir)` make the config first, so they need nothing
more; `AutoProcessor.from_pretrained(dir)` does not, so call this function (or load the model) before it.
`AutoModelForAudioClassification` is deliberately not registered: the audio-classification pipeline would call
the model without its transcript.
"""

from __future__ import annotations

PIPELINE_TASK = "audio-text-classification"

_registered = False


def register_auto_classes() -> None:
    """Register the model, processor and pipeline task with transformers (idempotent)."""
    global _registered
    if _registered:
        return
    _registered = True  # first: importing the modules below makes configs of this type
    try:
        from transformers import AutoProcessor
        from transformers.pipelines import PIPELINE_REGISTRY

        from ..auto_classes import register_auto_classes as register_configs, register_auto_models
        from .configuration_audio_text import AudioTextConfig
        from .modeling_audio_text import AudioTextForSequenceClassification
        from .pipeline import AudioTextClassificationPipeline
        from .processing_audio_text import AudioTextProcessor

        register_configs()
        register_auto_models(AudioTextConfig.model_type)
        AutoProcessor.register(AudioTextConfig, AudioTextProcessor, exist_ok=True)
        PIPELINE_REGISTRY.register_pipeline(
            PIPELINE_TASK, pipeline_class=AudioTextClassificationPipeline, pt_model=AudioTextForSequenceClassification,
            type="multimodal",
        )
    except BaseException:
        _registered = False
        raise


__all__ = ["PIPELINE_TASK", "register_auto_classes"]
