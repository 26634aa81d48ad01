"""Build or load audio-classification models and their feature extractors."""

from __future__ import annotations

import logging
import os

import torch
from transformers import (
    AutoConfig,
    AutoFeatureExtractor,
    AutoModelForAudioClassification,
    PretrainedConfig,
    PreTrainedModel,
    Wav2Vec2FeatureExtractor,
)

from .arguments import ModelArguments

logger = logging.getLogger(__name__)

# Model types whose raw-waveform front end is a wav2vec2-style feature extractor.
WAV2VEC2_FAMILY = (
    "wav2vec2",
    "hubert",
    "wavlm",
    "data2vec-audio",
    "wav2vec2-conformer",
    "sew",
    "sew-d",
    "unispeech",
    "unispeech-sat",
)


def label_config_kwargs(label_names: list[str]) -> dict:
    """num_labels / id2label / label2id, so that pipeline() answers with emotion names."""
    return {
        "num_labels": len(label_names),
        "id2label": {i: name for i, name in enumerate(label_names)},
        "label2id": {name: i for i, name in enumerate(label_names)},
    }


def default_feature_extractor(config: PretrainedConfig):
    """The extractor a freshly configured model needs (no checkpoint to load one from)."""
    if config.model_type in WAV2VEC2_FAMILY:
        # wav2vec2 convention: group-norm encoders (base) get no attention mask, layer-norm ones (large) do.
        return Wav2Vec2FeatureExtractor(
            feature_size=1,
            sampling_rate=16000,
            padding_value=0.0,
            do_normalize=True,
            return_attention_mask=getattr(config, "feat_extract_norm", "group") == "layer",
        )
    # The Auto mapping holds transformers' own extractors and those registered with AutoFeatureExtractor
    # (hf_mtkd's model types: hf_mtkd.auto_classes), so any registered model type gets its default extractor.
    from transformers.models.auto.feature_extraction_auto import FEATURE_EXTRACTOR_MAPPING

    if type(config) not in FEATURE_EXTRACTOR_MAPPING:
        raise ValueError(f"No default feature extractor for model_type {config.model_type!r}; set "
                         f"feature_extractor_name.")
    extractor_class = FEATURE_EXTRACTOR_MAPPING[type(config)]
    if isinstance(extractor_class, (tuple, list)):
        extractor_class = extractor_class[0]
    # `for_config` (hf_mtkd.models) sizes the extractor to the config, e.g. its number of mel bands.
    return extractor_class.for_config(config) if hasattr(extractor_class, "for_config") else extractor_class()


def hub_kwargs(model_args: ModelArguments) -> dict:
    """The `from_pretrained` options a recipe's model arguments set (cache, revision, remote code)."""
    return {
        "cache_dir": model_args.cache_dir,
        "revision": model_args.model_revision,
        "trust_remote_code": model_args.trust_remote_code,
    }


def load_pretrained(cls, name_or_path: str, what: str, **kwargs):
    """from_pretrained with an error that says which model was asked for.

    A missing local checkpoint must never turn into a freshly initialised model.
    """
    looks_local = os.path.isabs(name_or_path) or name_or_path.startswith(".") or name_or_path.count("/") > 1
    if looks_local and not os.path.exists(name_or_path):
        raise FileNotFoundError(f"{what}: {name_or_path!r} does not exist.")
    try:
        return cls.from_pretrained(name_or_path, **kwargs)
    except OSError as err:
        raise OSError(f"{what}: could not load {name_or_path!r} ({err})") from err


def load_feature_extractor(model_args: ModelArguments, config: PretrainedConfig | None = None):
    name = model_args.feature_extractor_name or model_args.model_name_or_path
    if name is not None:
        return load_pretrained(AutoFeatureExtractor, name, "feature extractor", **hub_kwargs(model_args))
    return default_feature_extractor(config)


def probe_feature_extractor(model_args: ModelArguments):
    """The student's feature extractor before the student exists (it fixes the sampling rate the data is decoded
    at)."""
    if model_args.model_name_or_path or model_args.feature_extractor_name:
        return load_feature_extractor(model_args)
    return default_feature_extractor(
        AutoConfig.for_model(model_args.model_type, **(model_args.config_overrides or {}))
    )


def build_audio_classifier(model_args: ModelArguments, label_names: list[str]) -> tuple[PreTrainedModel, object]:
    """The audio classifier of `model_args` (the student: from a checkpoint, or a fresh config) and its feature
    extractor."""
    labels = label_config_kwargs(label_names)
    if model_args.model_name_or_path is not None:
        config = load_pretrained(AutoConfig, model_args.model_name_or_path, "student config", **hub_kwargs(model_args))
        for key, value in (model_args.config_overrides or {}).items():
            setattr(config, key, value)
        config.update(labels)
        model = load_pretrained(
            AutoModelForAudioClassification,
            model_args.model_name_or_path,
            "student",
            config=config,
            # A checkpoint fine-tuned on another label set keeps its encoder; the head is re-initialised.
            ignore_mismatched_sizes=True,
            **hub_kwargs(model_args),
        )
    else:
        config = AutoConfig.for_model(model_args.model_type, **(model_args.config_overrides or {}), **labels)
        model = AutoModelForAudioClassification.from_config(config)
    feature_extractor = load_feature_extractor(model_args, model.config)
    if model_args.freeze_feature_encoder:
        freeze_feature_encoder(model)
    return model, feature_extractor


def hash_weights(module: torch.nn.Module, digest) -> None:
    """Feed every tensor of `module`'s state dict (name, dtype, raw bytes, in name order) into `digest` (a hashlib
    object): the weights' part of a cache fingerprint."""
    for name, tensor in sorted(module.state_dict().items()):
        digest.update(name.encode())
        digest.update(str(tensor.dtype).encode())
        # reshape(-1): a 0-dim tensor (BatchNorm's num_batches_tracked) cannot be viewed as bytes as it is.
        digest.update(tensor.detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy().tobytes())


def freeze_feature_encoder(model: PreTrainedModel) -> None:
    if hasattr(model, "freeze_feature_encoder"):
        model.freeze_feature_encoder()
    else:
        logger.warning("%s has no convolutional feature encoder to freeze; freeze_feature_encoder "
                       "ignored.", type(model).__name__)
