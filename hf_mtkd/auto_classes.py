"""hf_mtkd's own model types in transformers' Auto classes, from one table, at little cost to `import hf_mtkd`.

`import hf_mtkd` registers every row's config class with `AutoConfig` and its feature extractor with
`AutoFeatureExtractor` (`register_auto_configs`; both cheap to import). Model classes import the modelling stack
(seconds), and processors and pipelines transformers' processing and pipeline stacks, so each row's model classes,
processor (`AutoProcessor`) and pipeline task are registered when the first config of its type is made
(`register_auto_models`): `from_pretrained`, `from_config` and `pipeline()` all make the config first. That is
what `LazyAutoModelsMixin` does; every config class in the table puts it first among its bases.
`AutoProcessor.from_pretrained(dir)` reads the processor's files before any config: call
`register_auto_models(model_type)` (or load the model) before it.

Adding a model type:

    # hf_mtkd/models/<name>/configuration_<name>.py
    class MyConfig(LazyAutoModelsMixin, PretrainedConfig):
        model_type = "hf_mtkd_my_model"

    # AUTO_MODELS below
    "hf_mtkd_my_model": AutoModelEntry(
        config="hf_mtkd.models.<name>.configuration_<name>:MyConfig",
        models={"AutoModelForAudioClassification":
        "hf_mtkd.models.<name>.modeling_<name>:MyModelForAudioClassification"},
        feature_extractor="hf_mtkd.models.<name>.feature_extraction_<name>:MyFeatureExtractor",  # or None (a stock
        one)
        processor=None,  # or "hf_mtkd.models.<name>.processing_<name>:MyProcessor"
        pipeline=None,   # or AutoPipelineEntry(task=..., pipeline_class="module:Class", model="module:Class")
    ),

Keep the configuration (and feature extraction) modules free of torch modelling imports, and the folder's
`__init__.py` lazy, so that registering stays cheap.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from typing import Optional

__all__ = [
    "AUTO_MODELS",
    "AutoModelEntry",
    "AutoPipelineEntry",
    "LazyAutoModelsMixin",
    "register_auto_configs",
    "register_auto_models",
]


@dataclass(frozen=True)
class AutoPipelineEntry:
    """A pipeline task of its own (`pipeline(task, model=dir)`), registered with transformers' `PIPELINE_REGISTRY`."""

    task: str
    pipeline_class: str  # "module:Class"
    model: str  # "module:Class", the pipeline's PyTorch model class
    type: str = "multimodal"


@dataclass(frozen=True)
class AutoModelEntry:
    """Where a model type's classes live ("module:Class"), and which Auto class takes each model class."""

    config: str
    models: dict[str, str] = field(default_factory=dict)
    feature_extractor: Optional[str] = None
    processor: Optional[str] = None
    pipeline: Optional[AutoPipelineEntry] = None


#: model_type -> its classes. The one place hf_mtkd's model types are listed.
AUTO_MODELS: dict[str, AutoModelEntry] = {
    "hf_mtkd_early_exit": AutoModelEntry(
        config="hf_mtkd.models.early_exit.configuration_early_exit:EarlyExitAudioConfig",
        models={"AutoModelForAudioClassification":
                "hf_mtkd.models.early_exit.modeling_early_exit:EarlyExitForAudioClassification"},
    ),
    # The inverted-transformer student (features in) and the waveform model (waveforms in: frozen upstream + student).
    # The waveform model saves a stock Wav2Vec2FeatureExtractor, so no feature-extractor class here.
    "hf_mtkd_inverted_transformer": AutoModelEntry(
        config="hf_mtkd.models.inverted_transformer.configuration_inverted_transformer:InvertedTransformerConfig",
        models={"AutoModelForAudioClassification":
                "hf_mtkd.models.inverted_transformer.modeling_inverted_transformer:"
                "InvertedTransformerForFeatureClassification"},
    ),
    # The audio + text classifier: never AutoModelForAudioClassification (the model needs the transcript).
    "hf_mtkd_audio_text": AutoModelEntry(
        config="hf_mtkd.models.audio_text.configuration_audio_text:AudioTextConfig",
        models={"AutoModel": "hf_mtkd.models.audio_text.modeling_audio_text:AudioTextForSequenceClassification",
                "AutoModelForSequenceClassification":
                "hf_mtkd.models.audio_text.modeling_audio_text:AudioTextForSequenceClassification"},
        processor="hf_mtkd.models.audio_text.processing_audio_text:AudioTextProcessor",
        pipeline=AutoPipelineEntry(
            task="audio-text-classification",
            pipeline_class="hf_mtkd.models.audio_text.pipeline_audio_text:AudioTextClassificationPipeline",
            model="hf_mtkd.models.audio_text.modeling_audio_text:AudioTextForSequenceClassification",
        ),
    ),
    # The compact log-mel CNN student (hf_mtkd/models/logmel_cnn): waveforms in through its own feature extractor.
    "hf_mtkd_logmel_cnn": AutoModelEntry(
        config="hf_mtkd.models.logmel_cnn.configuration_logmel_cnn:LogMelCNNConfig",
        models={"AutoModel": "hf_mtkd.models.logmel_cnn.modeling_logmel_cnn:LogMelCNNModel",
                "AutoModelForAudioClassification":
                "hf_mtkd.models.logmel_cnn.modeling_logmel_cnn:LogMelCNNForAudioClassification"},
        feature_extractor="hf_mtkd.models.logmel_cnn.feature_extraction_logmel_cnn:LogMelFeatureExtractor",
    ),
    # The GE2E voice encoder (hf_mtkd/models/ge2e): Resemblyzer's pretrained LSTM, frozen or fine-tuned, + a
    # classifier.
    "hf_mtkd_ge2e": AutoModelEntry(
        config="hf_mtkd.models.ge2e.configuration_ge2e:GE2EConfig",
        models={"AutoModel": "hf_mtkd.models.ge2e.modeling_ge2e:GE2EModel",
                "AutoModelForAudioClassification": "hf_mtkd.models.ge2e.modeling_ge2e:GE2EForAudioClassification"},
        feature_extractor="hf_mtkd.models.ge2e.feature_extraction_ge2e:GE2EFeatureExtractor",
    ),
    "hf_mtkd_waveform_student": AutoModelEntry(
        config="hf_mtkd.models.inverted_transformer.configuration_inverted_transformer:WaveformStudentConfig",
        models={"AutoModelForAudioClassification":
                "hf_mtkd.models.inverted_transformer.modeling_waveform_student:WaveformStudentForAudioClassification"},
    ),
}

_models_registered: set[str] = set()


def _load(path: str):
    module, _, name = path.partition(":")
    return getattr(importlib.import_module(module), name)


def register_auto_configs() -> None:
    """Register every config (AutoConfig) and feature extractor (AutoFeatureExtractor) of AUTO_MODELS."""
    from transformers import AutoConfig, AutoFeatureExtractor

    for model_type, entry in AUTO_MODELS.items():
        config_class = _load(entry.config)
        if config_class.model_type != model_type:
            raise ValueError(f"AUTO_MODELS[{model_type!r}]: {entry.config} has model_type "
                             f"{config_class.model_type!r}.")
        AutoConfig.register(model_type, config_class, exist_ok=True)
        if entry.feature_extractor:
            AutoFeatureExtractor.register(config_class, _load(entry.feature_extractor), exist_ok=True)


def register_auto_models(model_type: str) -> None:
    """Register the model classes of `model_type` with their Auto classes, its processor with `AutoProcessor` and
    its pipeline task (once; a no-op for other types)."""
    entry = AUTO_MODELS.get(model_type)
    if entry is None or model_type in _models_registered:
        return
    _models_registered.add(model_type)  # first: the model modules make configs of this type themselves
    import transformers

    try:
        config_class = _load(entry.config)
        for auto_name, model_path in entry.models.items():
            getattr(transformers, auto_name).register(config_class, _load(model_path), exist_ok=True)
        if entry.processor:
            transformers.AutoProcessor.register(config_class, _load(entry.processor), exist_ok=True)
        if entry.pipeline:
            from transformers.pipelines import PIPELINE_REGISTRY

            PIPELINE_REGISTRY.register_pipeline(
                entry.pipeline.task, pipeline_class=_load(entry.pipeline.pipeline_class),
                pt_model=_load(entry.pipeline.model), type=entry.pipeline.type,
            )
    except BaseException:
        _models_registered.discard(model_type)
        raise


class LazyAutoModelsMixin:
    """For hf_mtkd's config classes: making the first config of a type registers that type's model classes."""

    def __post_init__(self, **kwargs):
        register_auto_models(type(self).model_type)
        super().__post_init__(**kwargs)
