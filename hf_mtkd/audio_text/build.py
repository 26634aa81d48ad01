"""Building the model and processor of a run, and loading its teacher.

Three ways to get a model (see `AudioTextModelArguments`):
- new (ModelArguments.model_type = hf_mtkd_audio_text): encoders from pretrained models or fresh configs,
  fusion block and head from random init;
- a saved audio_text model (ModelArguments.model_name_or_path), trained further;
- a student of a saved model: the same with its text encoder cut to k layers (`make_student`).
"""

from __future__ import annotations

import logging
from typing import Iterable, Optional

import torch
from transformers import AutoConfig, AutoFeatureExtractor, AutoModel, AutoProcessor, AutoTokenizer

from ..arguments import ModelArguments
from ..auto_classes import register_auto_models
from ..modeling_utils import default_feature_extractor, load_pretrained
from ..distillation.teachers import teacher_label_index
from .cache import processor_key
from .config import AudioTextModelArguments
from ..models.audio_text.configuration_audio_text import AudioTextConfig
from ..models.audio_text.modeling_audio_text import AudioTextForSequenceClassification
from ..models.audio_text.processing_audio_text import AudioTextProcessor
from ..models.audio_text.tokenization_audio_text import train_wordpiece_tokenizer
from .students import make_student

logger = logging.getLogger(__name__)

MODEL_TYPE = AudioTextConfig.model_type


def _hub_kwargs(model_args: ModelArguments) -> dict:
    return {"cache_dir": model_args.cache_dir, "revision": model_args.model_revision,
            "trust_remote_code": model_args.trust_remote_code}


def _check_model_args(model_args: ModelArguments, at_args: AudioTextModelArguments) -> None:
    if model_args.model_type is not None and model_args.model_type != MODEL_TYPE:
        raise ValueError(
            f"The audio_text method builds model_type {MODEL_TYPE!r} (its encoders are text_encoder / audio_encoder); "
            f"got model_type {model_args.model_type!r}."
        )
    if model_args.model_name_or_path is not None and model_args.config_overrides:
        raise ValueError("config_overrides applies to a new audio_text model (model_type), not to a saved one.")
    if model_args.model_name_or_path is not None and at_args.text_encoder and not (
            at_args.makes_student and at_args.student_init == "pretrained"):
        raise ValueError(
            "text_encoder with model_name_or_path is read only by a student with student_init: pretrained."
        )
    if model_args.model_name_or_path is None and at_args.makes_student:
        raise ValueError("num_text_layers / a layer list cuts a student from a saved model: give model_name_or_path "
                         "(the teacher).")


def load_audio_feature_extractor(model_args: ModelArguments, at_args: AudioTextModelArguments):
    """The audio feature extractor of the run (it fixes the sampling rate the data is decoded at)."""
    register_auto_models(AudioTextConfig.model_type)
    _check_model_args(model_args, at_args)
    hub = _hub_kwargs(model_args)
    if model_args.feature_extractor_name:
        return load_pretrained(AutoFeatureExtractor, model_args.feature_extractor_name, "feature extractor", **hub)
    if model_args.model_name_or_path:
        return _load_processor(model_args.model_name_or_path, hub).feature_extractor
    if at_args.audio_encoder:
        return load_pretrained(AutoFeatureExtractor, at_args.audio_encoder, "audio encoder's feature extractor", **hub)
    return default_feature_extractor(_audio_config(at_args) or AutoConfig.for_model("wav2vec2"))


def _audio_config(at_args: AudioTextModelArguments):
    if at_args.audio_encoder_type:
        return AutoConfig.for_model(at_args.audio_encoder_type, **(at_args.audio_encoder_config_overrides or {}))
    return None


def _load_processor(path: str, hub: dict) -> AudioTextProcessor:
    processor = load_pretrained(AutoProcessor, path, "audio_text processor", **hub)
    if not isinstance(processor, AudioTextProcessor):
        raise ValueError(f"{path!r} holds a {type(processor).__name__}, not the processor of an audio_text model.")
    return processor


def build_audio_text_model(
    model_args: ModelArguments,
    at_args: AudioTextModelArguments,
    label_names: list[str],
    train_texts: Optional[Iterable[str]] = None,
) -> tuple[AudioTextForSequenceClassification, AudioTextProcessor]:
    """The model to train and its processor (see the module docstring); `train_texts` feed a learnt vocabulary."""
    register_auto_models(AudioTextConfig.model_type)
    _check_model_args(model_args, at_args)
    hub = _hub_kwargs(model_args)
    feature_extractor = load_audio_feature_extractor(model_args, at_args)
    if model_args.model_name_or_path:
        path = model_args.model_name_or_path
        base = load_pretrained(AudioTextForSequenceClassification, path, "audio_text model", **hub)
        base = align_labels(base, label_names, path)
        processor = _load_processor(path, hub)
        processor = AudioTextProcessor(feature_extractor, processor.tokenizer)
        if at_args.makes_student:
            pretrained = None
            if at_args.student_init == "pretrained":  # text_encoder is set (AudioTextModelArguments checks it)
                pretrained = load_pretrained(AutoModel, at_args.text_encoder, "pretrained text encoder", **hub)
                if isinstance(pretrained, AudioTextForSequenceClassification):
                    # A text (or fused) audio_text model the teacher's encoder came from: its own text encoder, as
                    # `from_encoders` takes it for the teacher.
                    if pretrained.text_encoder is None:
                        raise ValueError(f"text_encoder {at_args.text_encoder!r} is an audio_text model without a "
                                         f"text encoder (modalities {pretrained.config.modalities!r}).")
                    pretrained = pretrained.text_encoder
            model = make_student(base, at_args.num_text_layers, at_args.layer_selection,
                                 copy_fusion=at_args.copy_fusion_from_teacher, init=at_args.student_init,
                                 pretrained_text_encoder=pretrained)
            logger.info("Student of %s: text layers %s of %d", path, model.config.text_layers_kept,
                        base.config.text_config.num_hidden_layers)
        else:
            model = base
        return model, processor

    uses_text = at_args.modalities in ("audio_text", "text")
    uses_audio = at_args.modalities in ("audio_text", "audio")
    tokenizer = _tokenizer(at_args, hub, train_texts) if uses_text else _placeholder_tokenizer(at_args, hub)
    text_source = audio_source = None
    if uses_text:
        if at_args.text_encoder:
            text_source = at_args.text_encoder
        elif at_args.text_encoder_type:
            overrides = {"vocab_size": len(tokenizer), "pad_token_id": tokenizer.pad_token_id,
                         **(at_args.text_encoder_config_overrides or {})}
            text_source = AutoConfig.for_model(at_args.text_encoder_type, **overrides)
        else:
            raise ValueError(f"modalities={at_args.modalities!r} needs text_encoder or text_encoder_type.")
    if uses_audio:
        audio_source = at_args.audio_encoder or _audio_config(at_args)
        if audio_source is None:
            raise ValueError(f"modalities={at_args.modalities!r} needs audio_encoder or audio_encoder_type.")
    model = AudioTextForSequenceClassification.from_encoders(
        text_source, audio_source, label_names=label_names, modalities=at_args.modalities,
        text_config_overrides=at_args.text_encoder_config_overrides if at_args.text_encoder else None,
        audio_config_overrides=at_args.audio_encoder_config_overrides if at_args.audio_encoder else None,
        from_pretrained_kwargs=hub, **(model_args.config_overrides or {}),
    )
    if model.text_encoder is not None and model.text_encoder.get_input_embeddings().num_embeddings < len(tokenizer):
        raise ValueError(
            f"The tokenizer has {len(tokenizer)} tokens but the text encoder only "
            f"{model.text_encoder.get_input_embeddings().num_embeddings} embeddings: they do not belong together."
        )
    if (
        model_args.freeze_feature_encoder
        and not model.config.freeze_audio_encoder
        and model.audio_encoder is not None
        and hasattr(model.audio_encoder, "freeze_feature_encoder")
    ):
        model.audio_encoder.freeze_feature_encoder()
    return model, AudioTextProcessor(feature_extractor, tokenizer)


def _tokenizer(at_args: AudioTextModelArguments, hub: dict, train_texts):
    if at_args.train_tokenizer_vocab_size is not None:
        if train_texts is None:
            raise ValueError("train_tokenizer_vocab_size needs the training transcripts.")
        limit = at_args.max_text_length or 128
        return train_wordpiece_tokenizer(train_texts, vocab_size=at_args.train_tokenizer_vocab_size,
                                         model_max_length=limit)
    source = at_args.tokenizer_name or at_args.text_encoder
    if not source:
        raise ValueError("A new text model needs tokenizer_name, a text_encoder to take it from, or "
                         "train_tokenizer_vocab_size.")
    return load_pretrained(AutoTokenizer, source, "tokenizer", **hub)


def _placeholder_tokenizer(at_args: AudioTextModelArguments, hub: dict):
    # An audio-only model still saves a processor, whose tokenizer it never calls.
    if at_args.tokenizer_name:
        return load_pretrained(AutoTokenizer, at_args.tokenizer_name, "tokenizer", **hub)
    return train_wordpiece_tokenizer(["audio only"], vocab_size=32)


def align_labels(model: AudioTextForSequenceClassification, label_names: list[str], source: str):
    """Reorder the classifier of a saved model into the run's label order (same label set required)."""
    labels = [model.config.id2label[i] for i in range(model.config.num_labels)]
    if labels == list(label_names):
        return model
    index = teacher_label_index(labels, list(label_names), source)
    with torch.no_grad():
        model.classifier.weight.copy_(model.classifier.weight[index])
        model.classifier.bias.copy_(model.classifier.bias[index])
    model.config.id2label = dict(enumerate(label_names))
    model.config.label2id = {name: i for i, name in enumerate(label_names)}
    return model


def load_audio_text_teacher(
    path: str, label_names: list[str], student_processor: AudioTextProcessor, model_args: ModelArguments
) -> tuple[AudioTextForSequenceClassification, torch.Tensor]:
    """The frozen teacher and the index that puts its logits into the student's label order.

    Teacher and student get the same batch, so their processors must agree (same vocabulary and audio features).
    """
    register_auto_models(AudioTextConfig.model_type)
    hub = _hub_kwargs(model_args)
    teacher = load_pretrained(AudioTextForSequenceClassification, path, "teacher", **hub)
    teacher_processor = _load_processor(path, hub)
    if processor_key(teacher_processor) != processor_key(student_processor):
        raise ValueError(
            f"The teacher {path!r} uses another tokenizer vocabulary or audio feature extractor than the student; "
            "students must share the teacher's processor (build them from the teacher)."
        )
    labels = [teacher.config.id2label[i] for i in range(teacher.config.num_labels)]
    index = teacher_label_index(labels, list(label_names), path)
    teacher.requires_grad_(False)
    return teacher.eval(), index


__all__ = [
    "MODEL_TYPE",
    "align_labels",
    "build_audio_text_model",
    "load_audio_feature_extractor",
    "load_audio_text_teacher",
]
