"""The audio + text emotion classifier (see `configuration.py` for the architecture).

`AudioTextForSequenceClassification` holds a stock text encoder and a stock audio encoder
(`AutoModel.from_config` of its sub-configs) and the fusion block of the authors' 3M-SER code.
An encoder whose parameters are all frozen runs without autograd and stays in eval mode when the
model is put in training mode: a frozen encoder is a fixed function (the paper's VGGish), so its
dropout must not fire either.
"""

from __future__ import annotations

import inspect
import os
from dataclasses import dataclass
from typing import Any, Optional

import torch
from torch import nn
from torch.nn import functional as F
from transformers import AutoConfig, AutoModel, PretrainedConfig, PreTrainedModel
from transformers.utils import ModelOutput

from .configuration_audio_text import AudioTextConfig
from ..loading import config_kwargs

# Encoder weights a checkpoint may carry that this model does not use.
_UNUSED_ENCODER_KEYS = ("pooler.", "masked_spec_embed")


@dataclass
class AudioTextClassifierOutput(ModelOutput):
    """Logits, plus (on request) the text encoder's last hidden states and their padding mask for feature KD."""

    loss: Optional[torch.Tensor] = None
    logits: Optional[torch.Tensor] = None
    text_hidden_states: Optional[torch.Tensor] = None
    text_attention_mask: Optional[torch.Tensor] = None
    pooled_output: Optional[torch.Tensor] = None


def is_frozen(module: Optional[nn.Module]) -> bool:
    """True when no parameter of `module` trains."""
    return module is not None and not any(p.requires_grad for p in module.parameters())


def masked_pool(hidden: torch.Tensor, mask: torch.Tensor, mode: str) -> torch.Tensor:
    """Pool (B, L, H) over the positions `mask` (B, L, bool) keeps: first / mean / max."""
    if mode == "first":
        return hidden[:, 0]
    keep = mask.unsqueeze(-1)
    if mode == "mean":
        return (hidden * keep).sum(1) / keep.sum(1).clamp(min=1)
    if mode == "max":
        return hidden.masked_fill(~keep, torch.finfo(hidden.dtype).min).max(1).values
    raise ValueError(f"Unknown pooling {mode!r}.")


class AudioTextPreTrainedModel(PreTrainedModel):
    config_class = AudioTextConfig
    config: AudioTextConfig
    base_model_prefix = "audio_text"
    main_input_name = "input_ids"
    input_modalities = ("audio", "text")
    supports_gradient_checkpointing = True
    _supports_sdpa = True
    # forward returns a per-batch mean loss: the Trainer must scale it for gradient accumulation.
    accepts_loss_kwargs = False


class AudioTextForSequenceClassification(AudioTextPreTrainedModel):
    """Text encoder + audio encoder + 3M-SER fusion + classification head (see `AudioTextConfig`)."""

    def __init__(self, config: AudioTextConfig):
        super().__init__(config)
        width = config.fusion_hidden_size
        heads = config.fusion_num_attention_heads
        self.text_encoder = None
        self.audio_encoder = None
        if config.uses_text:
            self.text_encoder = _drop_pooler(AutoModel.from_config(config.text_config))
            text_width = config.text_config.hidden_size
            self.text_attention = nn.MultiheadAttention(
                text_width, heads, dropout=config.fusion_dropout, batch_first=True
            )
            self.text_projection = nn.Linear(text_width, width)
            self.text_norm = nn.LayerNorm(width, eps=config.layer_norm_eps)
            params = inspect.signature(self.text_encoder.forward).parameters
            self._text_takes_token_types = "token_type_ids" in params
        if config.uses_audio:
            self.audio_encoder = _drop_pooler(AutoModel.from_config(config.audio_config))
            # The authors' fusion width is the audio width, so they had no projection: none when widths agree.
            same = config.audio_hidden_size == width
            self.audio_projection = nn.Identity() if same else nn.Linear(config.audio_hidden_size, width)
            self.audio_norm = nn.LayerNorm(width, eps=config.layer_norm_eps)
            self._audio_input_name = self.audio_encoder.main_input_name
        self.fusion_attention = nn.MultiheadAttention(width, heads, dropout=config.fusion_dropout, batch_first=True)
        self.fusion_linear = nn.Linear(width, width)
        self.fusion_norm = nn.LayerNorm(width, eps=config.layer_norm_eps)
        self.head_dropout = nn.Dropout(config.head_dropout)
        sizes = [width, *config.head_hidden_sizes]
        self.head = nn.ModuleList(nn.Linear(a, b) for a, b in zip(sizes[:-1], sizes[1:]))
        self.classifier = nn.Linear(sizes[-1], config.num_labels)
        self.post_init()
        if config.freeze_audio_encoder and self.audio_encoder is not None:
            self.audio_encoder.requires_grad_(False)

    # ---------------------------------------------------------------- training state
    def set_encoders_trainable(self, *, text: bool, audio: bool) -> None:
        """Freeze or unfreeze each encoder (the two-phase schedule); `freeze_audio_encoder` always wins."""
        if self.text_encoder is not None:
            self.text_encoder.requires_grad_(text)
        if self.audio_encoder is not None:
            self.audio_encoder.requires_grad_(audio and not self.config.freeze_audio_encoder)

    def train(self, mode: bool = True):
        super().train(mode)
        for encoder in (self.text_encoder, self.audio_encoder):
            if mode and is_frozen(encoder):
                encoder.eval()
        return self

    # ---------------------------------------------------------------- branches
    def encode_text(self, input_ids, attention_mask=None, token_type_ids=None) -> tuple[torch.Tensor, torch.Tensor]:
        """The text encoder's last hidden states (B, L, H) and the token mask (B, L, bool)."""
        if attention_mask is None:
            attention_mask = torch.ones_like(input_ids)
        kwargs = {"input_ids": input_ids, "attention_mask": attention_mask}
        if token_type_ids is not None and self._text_takes_token_types:
            kwargs["token_type_ids"] = token_type_ids
        with torch.set_grad_enabled(torch.is_grad_enabled() and not is_frozen(self.text_encoder)):
            hidden = self.text_encoder(**kwargs).last_hidden_state
        return hidden, attention_mask.bool()

    def encode_audio(self, audio_inputs: torch.Tensor, audio_attention_mask=None) -> tuple[torch.Tensor, torch.Tensor]:
        """The audio encoder's frame features (B, T, H) and the frame mask (B, T, bool)."""
        kwargs = {self._audio_input_name: audio_inputs}
        if audio_attention_mask is not None:
            kwargs["attention_mask"] = audio_attention_mask
        with torch.set_grad_enabled(torch.is_grad_enabled() and not is_frozen(self.audio_encoder)):
            frames = self.audio_encoder(**kwargs).last_hidden_state
        if audio_attention_mask is not None and hasattr(self.audio_encoder, "_get_feature_vector_attention_mask"):
            mask = self.audio_encoder._get_feature_vector_attention_mask(frames.shape[1], audio_attention_mask).bool()
        else:
            # No sample mask (fixed-length spectrogram inputs, or wav2vec2-base style extractors): every frame counts.
            mask = torch.ones(frames.shape[:2], dtype=torch.bool, device=frames.device)
        return frames, mask

    def forward(
        self,
        input_ids: Optional[torch.Tensor] = None,
        attention_mask: Optional[torch.Tensor] = None,
        token_type_ids: Optional[torch.Tensor] = None,
        input_values: Optional[torch.Tensor] = None,
        input_features: Optional[torch.Tensor] = None,
        audio_attention_mask: Optional[torch.Tensor] = None,
        labels: Optional[torch.Tensor] = None,
        output_text_hidden_states: bool = False,
        **kwargs: Any,
    ) -> AudioTextClassifierOutput:
        r"""
        input_ids, attention_mask, token_type_ids: the tokenizer's outputs (text).
        input_values or input_features: the audio feature extractor's output; audio_attention_mask its sample mask.
        output_text_hidden_states: also return the text encoder's last hidden states (for feature distillation).
        """
        sequences, masks = [], []
        text_hidden = text_mask = None
        if self.config.uses_text:
            if input_ids is None:
                raise ValueError("This model reads text: pass input_ids (and attention_mask) from its tokenizer.")
            text_hidden, text_mask = self.encode_text(input_ids, attention_mask, token_type_ids)
            attended, _ = self.text_attention(text_hidden, text_hidden, text_hidden, key_padding_mask=~text_mask,
                                              need_weights=False)
            sequences.append(self.text_norm(self.text_projection(attended)))
            masks.append(text_mask)
        if self.config.uses_audio:
            audio_inputs = input_values if input_values is not None else input_features
            if audio_inputs is None:
                raise ValueError(f"This model hears audio: pass {self._audio_input_name} from its feature extractor.")
            frames, frame_mask = self.encode_audio(audio_inputs, audio_attention_mask)
            sequences.append(self.audio_norm(self.audio_projection(frames)))
            masks.append(frame_mask)
        fused_in = torch.cat(sequences, dim=1)
        mask = torch.cat(masks, dim=1)
        attended, _ = self.fusion_attention(fused_in, fused_in, fused_in, key_padding_mask=~mask, need_weights=False)
        fused = self.fusion_norm(self.fusion_linear(attended))
        pooled = masked_pool(fused, mask, self.config.pooling)
        x = self.head_dropout(pooled)
        for linear in self.head:
            x = F.leaky_relu(linear(x), negative_slope=self.config.leaky_relu_slope)
        logits = self.classifier(x)
        loss = F.cross_entropy(logits.float(), labels) if labels is not None else None
        return AudioTextClassifierOutput(
            loss=loss,
            logits=logits,
            text_hidden_states=text_hidden if output_text_hidden_states else None,
            text_attention_mask=text_mask if output_text_hidden_states else None,
        )

    # ---------------------------------------------------------------- construction
    @classmethod
    def from_encoders(
        cls,
        text_encoder: str | os.PathLike | PreTrainedModel | PretrainedConfig | None = None,
        audio_encoder: str | os.PathLike | PreTrainedModel | PretrainedConfig | None = None,
        *,
        label_names: list[str],
        text_config_overrides: Optional[dict] = None,
        audio_config_overrides: Optional[dict] = None,
        from_pretrained_kwargs: Optional[dict] = None,
        **config_kwargs: Any,
    ) -> "AudioTextForSequenceClassification":
        """A new classifier whose encoders come from pretrained models (or configs, for random init).

        Each encoder may be a Hub id or local path (loaded with `AutoModel.from_pretrained`, so a classification
        checkpoint gives its encoder; an hf_mtkd audio_text checkpoint gives its own encoder of that modality),
        a loaded model, a config (random init), or None when the model does not use that modality.
        The fusion block and head start from random weights.
        """
        if "modalities" not in config_kwargs:
            config_kwargs["modalities"] = (
                "audio_text" if text_encoder is not None and audio_encoder is not None
                else "text" if text_encoder is not None else "audio"
            )
        kwargs = dict(from_pretrained_kwargs or {})
        text = _resolve_encoder(cls, text_encoder, "text", text_config_overrides, kwargs)
        audio = _resolve_encoder(cls, audio_encoder, "audio", audio_config_overrides, kwargs)
        id2label = dict(enumerate(label_names))
        config = AudioTextConfig(
            text_config=text[0], audio_config=audio[0], id2label=id2label,
            label2id={name: i for i, name in id2label.items()}, **config_kwargs,
        )
        model = cls(config)
        for module, (_, state, source), what in (
            (model.text_encoder, text, "text"),
            (model.audio_encoder, audio, "audio"),
        ):
            if module is not None and state is not None:
                load_encoder_state(module, state, f"{what} encoder from {source}")
        return model


def _drop_pooler(encoder: PreTrainedModel) -> PreTrainedModel:
    # BERT-style poolers are unused here (the fusion pools itself); an unused parameter would only
    # be counted in the model size and trip DDP's unused-parameter check.
    if getattr(encoder, "pooler", None) is not None:
        encoder.pooler = None
    return encoder


def _config_copy(config: PretrainedConfig, overrides: Optional[dict], what: str) -> PretrainedConfig:
    config = config.__class__.from_dict(config.to_dict())
    for key, value in (overrides or {}).items():
        if not hasattr(config, key):
            raise ValueError(f"{what}_config_overrides: {type(config).__name__} has no attribute {key!r}.")
        setattr(config, key, value)
    return config


def _resolve_encoder(cls, source, what: str, overrides: Optional[dict], kwargs: dict):
    """(config, state_dict or None, description) of one encoder source."""
    if source is None:
        if overrides:
            raise ValueError(f"{what}_config_overrides given without a {what} encoder.")
        return None, None, None
    if isinstance(source, PretrainedConfig):
        return _config_copy(source, overrides, what), None, "a config (random init)"
    if isinstance(source, (str, os.PathLike)):
        name = str(source)
        looks_local = os.path.isabs(name) or name.startswith(".") or name.count("/") > 1
        if looks_local and not os.path.exists(name):
            raise FileNotFoundError(f"{what} encoder: {name!r} does not exist.")
        found = AutoConfig.from_pretrained(name, **config_kwargs(kwargs))
        if isinstance(found, AudioTextConfig):
            source = cls.from_pretrained(name, **kwargs)
        else:
            source = AutoModel.from_pretrained(name, **kwargs)
    if isinstance(source, AudioTextForSequenceClassification):
        encoder = source.text_encoder if what == "text" else source.audio_encoder
        if encoder is None:
            raise ValueError(f"{what} encoder: the audio_text model {source.name_or_path!r} has no {what} encoder "
                             f"(its modalities are {source.config.modalities!r}).")
    elif isinstance(source, PreTrainedModel):
        encoder = source.base_model
    else:
        raise TypeError(f"{what} encoder must be a model id/path, a PreTrainedModel or a config, got {type(source)}.")
    config = _config_copy(encoder.config, overrides, what)
    return config, encoder.state_dict(), getattr(encoder, "name_or_path", None) or type(encoder).__name__


def load_encoder_state(module: nn.Module, state: dict, what: str) -> None:
    """Load an encoder's weights; anything missing or left over (but unused poolers) is an error naming it."""
    state = {k: v for k, v in state.items() if not k.startswith(_UNUSED_ENCODER_KEYS)}
    missing, unexpected = module.load_state_dict(state, strict=False)
    missing = [k for k in missing if not k.startswith(_UNUSED_ENCODER_KEYS)]
    if missing or unexpected:
        raise ValueError(f"{what}: weights do not fit the config: missing {missing[:5]}, unexpected {unexpected[:5]}.")


__all__ = [
    "AudioTextClassifierOutput",
    "AudioTextForSequenceClassification",
    "AudioTextPreTrainedModel",
    "is_frozen",
    "load_encoder_state",
    "masked_pool",
]
