"""Model configuration of the audio + text emotion classifier (3M-SER fusion, SPEC section 4).

The architecture follows the authors' code (tpnam0901/3m-ser, nmihtrug/DistilSER):

- text branch: a BERT-family encoder -> multi-head self-attention over its hidden states ->
  Linear (text width -> fusion width) -> LayerNorm;
- audio branch: an audio encoder (frozen by default: the paper's VGGish never trains) ->
  its frame features, projected to the fusion width when the widths differ -> LayerNorm;
- fusion: the two sequences concatenated [text tokens; audio frames] -> multi-head
  self-attention -> Linear -> LayerNorm -> pooling (the first position, i.e. the text [CLS];
  or mean / max over the positions the masks keep);
- head: dropout -> Linear -> LeakyReLU (one pair per entry of ``head_hidden_sizes``) -> Linear.

Unlike the authors' code (batch size 1, no masks), every attention and pooling step honours the
padding masks of both modalities, so a clip alone and the same clip in a padded batch give the
same logits.
"""

from __future__ import annotations

from typing import ClassVar

from transformers import AutoConfig, PretrainedConfig
from transformers.configuration_utils import SubConfigSpec

from ...auto_classes import LazyAutoModelsMixin

MODALITIES = ("audio_text", "text", "audio")
POOLING_MODES = ("first", "mean", "max")


class AudioTextConfig(LazyAutoModelsMixin, PretrainedConfig):
    r"""
    text_config (`dict` or `PretrainedConfig`, *optional*):
        Config of the text encoder (any model `AutoModel` builds as a BERT-family encoder: bert, roberta,
        distilbert, electra, ...). Default: bert-base shapes, unless `modalities="audio"`.
    audio_config (`dict` or `PretrainedConfig`, *optional*):
        Config of the audio encoder (any encoder-only audio model of transformers: wav2vec2, hubert, wavlm,
        data2vec-audio, audio-spectrogram-transformer, ...). Default: wav2vec2-base shapes, unless `modalities="text"`.
    modalities (`str`, *optional*, defaults to `"audio_text"`):
        "audio_text" (the fused model), "text" or "audio" (single-modality baselines with the same fusion block).
    fusion_hidden_size (`int`, *optional*):
        Width of the fused sequence. Default: the audio encoder's hidden size (the authors' fusion width is
        VGGish's 128), or the text encoder's for a text-only model.
    fusion_num_attention_heads (`int`, *optional*, defaults to 8):
        Heads of the text and of the fusion self-attention (authors: 8). Must divide both widths.
    fusion_dropout (`float`, *optional*, defaults to 0.5):
        Attention-weight dropout of both self-attentions (authors: 0.5).
    head_dropout (`float`, *optional*, defaults to 0.5):
        Dropout on the pooled vector before the head (authors: 0.5).
    head_hidden_sizes (`list[int]`, *optional*, defaults to `[64]`):
        Widths of the Linear + LeakyReLU layers before the output Linear (authors: [64]).
    leaky_relu_slope (`float`, *optional*, defaults to 0.01):
        Negative slope of the head's LeakyReLU (torch's default, as in the authors' code).
    pooling (`str`, *optional*, defaults to `"first"`):
        "first" (the text [CLS] position, the authors' choice), "mean" or "max" over unmasked positions.
    freeze_audio_encoder (`bool`, *optional*, defaults to `True`):
        Keep the audio encoder frozen and in eval mode in every training phase (the paper).
    layer_norm_eps (`float`, *optional*, defaults to 1e-5):
        Epsilon of the fusion block's LayerNorms.
    initializer_range (`float`, *optional*, defaults to 0.02):
        Std of the normal init of the fusion block's and head's Linear layers.
    text_layers_kept (`list[int]`, *optional*):
        For a student made by truncating a teacher's text encoder: the teacher's 1-based layers it kept
        (provenance only; set by `make_student`).
    """

    model_type = "hf_mtkd_audio_text"
    sub_configs_defaults = {
        "text_config": SubConfigSpec(config_class=AutoConfig, model_type="bert", optional=True),
        "audio_config": SubConfigSpec(config_class=AutoConfig, model_type="wav2vec2", optional=True),
    }
    # Outputs the Trainer must not gather as predictions.
    keys_to_ignore_at_inference: ClassVar[list[str]] = ["text_hidden_states", "text_attention_mask", "pooled_output"]

    text_config: dict | PretrainedConfig | None = None
    audio_config: dict | PretrainedConfig | None = None
    modalities: str = "audio_text"
    fusion_hidden_size: int | None = None
    fusion_num_attention_heads: int = 8
    fusion_dropout: float = 0.5
    head_dropout: float = 0.5
    head_hidden_sizes: list[int] | tuple[int, ...] = (64,)
    leaky_relu_slope: float = 0.01
    pooling: str = "first"
    freeze_audio_encoder: bool = True
    layer_norm_eps: float = 1e-5
    initializer_range: float = 0.02
    text_layers_kept: list[int] | None = None

    def __post_init__(self, **kwargs):
        super().__post_init__(**kwargs)  # LazyAutoModelsMixin: the model, processor and pipeline join transformers
        if self.id2label is not None and not self.label2id:
            self.label2id = {label: index for index, label in self.id2label.items()}
        if self.modalities not in MODALITIES:
            raise ValueError(f"modalities must be one of {MODALITIES}, got {self.modalities!r}.")
        # A modality without a sub-config gets the default one (bert-base, wav2vec2-base shapes), as transformers'
        # composite configs do; a modality the model does not use may stay None.
        if self.uses_text and self.text_config is None:
            self.text_config = AutoConfig.for_model(self.sub_configs_defaults["text_config"].model_type)
        if self.uses_audio and self.audio_config is None:
            self.audio_config = AutoConfig.for_model(self.sub_configs_defaults["audio_config"].model_type)
        if self.pooling not in POOLING_MODES:
            raise ValueError(f"pooling must be one of {POOLING_MODES}, got {self.pooling!r}.")
        if self.pooling == "first" and not self.uses_text:
            raise ValueError(
                "pooling='first' pools the text [CLS] position; an audio-only model needs pooling 'mean' or 'max'."
            )
        if self.fusion_hidden_size is None:
            source = self.audio_config if self.uses_audio else self.text_config
            self.fusion_hidden_size = int(source.hidden_size)
        heads = self.fusion_num_attention_heads
        widths = {"fusion_hidden_size": self.fusion_hidden_size}
        if self.uses_text:
            widths["text_config.hidden_size"] = int(self.text_config.hidden_size)
        for name, width in widths.items():
            if heads < 1 or width % heads:
                raise ValueError(f"fusion_num_attention_heads={heads} must be >= 1 and divide {name}={width}.")
        for name in ("fusion_dropout", "head_dropout"):
            value = getattr(self, name)
            if not 0.0 <= value < 1.0:
                raise ValueError(f"{name} must be in [0, 1), got {value}.")
        self.head_hidden_sizes = [int(size) for size in self.head_hidden_sizes]
        if any(size < 1 for size in self.head_hidden_sizes):
            raise ValueError(f"head_hidden_sizes must hold positive widths, got {self.head_hidden_sizes}.")

    @property
    def uses_text(self) -> bool:
        return self.modalities in ("audio_text", "text")

    @property
    def uses_audio(self) -> bool:
        return self.modalities in ("audio_text", "audio")

    @property
    def audio_hidden_size(self) -> int:
        """Width of the audio encoder's frame features (wav2vec2-family: hidden_size)."""
        return int(self.audio_config.hidden_size)


__all__ = ["AudioTextConfig", "MODALITIES", "POOLING_MODES"]
