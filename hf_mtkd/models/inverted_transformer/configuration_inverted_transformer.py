"""Model configurations: the inverted-transformer student and the exported waveform model.

`InvertedTransformerConfig` describes the student of Zhao et al. (SPEC section 3): iTransformer-style
(Liu et al., 2023), it reads frozen upstream features (B, T, N), treats each of the N feature channels
as one token whose embedding is `Linear(T -> d_model)` of its T time points, runs post-norm encoder
layers (attention across channels, layer norm, feed-forward), mean-pools the tokens and classifies
with an MLP.

`WaveformStudentConfig` describes the upstream that makes those features from a waveform (a filterbank,
or a transformers audio encoder and the layer taken from it) and, once a student is trained, that
student: the exported model runs both, so `pipeline("audio-classification")` takes waveforms.

Both model types are rows of `hf_mtkd.auto_classes.AUTO_MODELS` (`import hf_mtkd` registers them). This module
imports no modelling code: registering the configs stays cheap.
"""

from __future__ import annotations

from typing import ClassVar

from transformers import AutoConfig, PretrainedConfig
from transformers.configuration_utils import SubConfigSpec

from ...auto_classes import LazyAutoModelsMixin

FILTERBANKS = ("log_mel", "mfcc")
ACTIVATIONS = ("gelu", "relu")


class InvertedTransformerConfig(LazyAutoModelsMixin, PretrainedConfig):
    r"""
    num_frames (`int`, *optional*, defaults to 326):
        T, the fixed number of feature frames per clip (the paper: 326 for IEMOCAP, 224 for MELD).
        Each channel token is embedded by `Linear(num_frames -> d_model)`.
    num_channels (`int`, *optional*, defaults to 1024):
        N, the feature width: the number of tokens (HuBERT-large: 1024; a filterbank: its bands).
    num_upstream_layers (`int`, *optional*, defaults to 1):
        1: inputs are (B, T, N). L > 1: inputs are (B, L, T, N), the hidden states of every upstream layer,
        mixed by a learnable softmax-weighted sum (SUPERB's featurizer) before the student.
    d_model (`int`, *optional*, defaults to 512):
        Token width.
    num_hidden_layers (`int`, *optional*, defaults to 4):
        Encoder layers (the paper: 4).
    num_attention_heads (`int`, *optional*, defaults to 8):
        Attention heads; must divide d_model.
    intermediate_size (`int`, *optional*, defaults to 2048):
        Width of each layer's feed-forward block.
    hidden_dropout (`float`, *optional*, defaults to 0.1):
        Dropout on the token embeddings, inside every layer and in the classifier.
    hidden_act (`str`, *optional*, defaults to `"gelu"`):
        Feed-forward activation, "gelu" (iTransformer's default) or "relu".
    normalize_series (`bool`, *optional*, defaults to `True`):
        Standardise each channel over time before embedding it (iTransformer's `use_norm`, from the
        Non-stationary Transformer).
    token_axis (`str`, *optional*, defaults to `"channels"`):
        "channels": each feature channel (its whole time series) is one token, the inverted transformer;
        "time": each time step (all channels) is one token, the same transformer not inverted (the paper's Table 4
        ablation).
    classifier_hidden_size (`int`, *optional*, defaults to 256):
        Hidden width of the MLP classifier (Linear -> activation -> dropout -> Linear). Its first layer's
        weight is the state the curriculum policy reads.
    contrastive_dim (`int`, *optional*, defaults to 128):
        Output width of the projection head whose L2-normalised output the supervised contrastive loss uses.
    layer_norm_eps (`float`, *optional*, defaults to 1e-5):
        Epsilon of the layer norms.
    initializer_range (`float`, *optional*, defaults to 0.02):
        Std of the normal init of the linear layers.
    """

    model_type = "hf_mtkd_inverted_transformer"
    # Outputs the Trainer must not gather as predictions.
    keys_to_ignore_at_inference: ClassVar[list[str]] = ["pooled_output", "hidden_states", "attentions"]

    num_frames: int = 326
    num_channels: int = 1024
    num_upstream_layers: int = 1
    d_model: int = 512
    num_hidden_layers: int = 4
    num_attention_heads: int = 8
    intermediate_size: int = 2048
    hidden_dropout: float = 0.1
    hidden_act: str = "gelu"
    normalize_series: bool = True
    token_axis: str = "channels"
    classifier_hidden_size: int = 256
    contrastive_dim: int = 128
    layer_norm_eps: float = 1e-5
    initializer_range: float = 0.02

    def __post_init__(self, **kwargs):
        super().__post_init__(**kwargs)
        if self.id2label is not None and not self.label2id:
            self.label2id = {label: index for index, label in self.id2label.items()}
        for name in ("num_frames", "num_channels", "num_upstream_layers", "d_model", "num_hidden_layers",
                     "num_attention_heads", "intermediate_size", "classifier_hidden_size", "contrastive_dim"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}.")
        if self.d_model % self.num_attention_heads:
            raise ValueError(f"num_attention_heads ({self.num_attention_heads}) must divide d_model ({self.d_model}).")
        if not 0.0 <= self.hidden_dropout < 1.0:
            raise ValueError(f"hidden_dropout must be in [0, 1), got {self.hidden_dropout}.")
        if self.token_axis not in ("channels", "time"):
            raise ValueError(f"token_axis must be 'channels' (inverted) or 'time', got {self.token_axis!r}.")
        if self.hidden_act not in ACTIVATIONS:
            raise ValueError(f"hidden_act must be one of {ACTIVATIONS}, got {self.hidden_act!r}.")


class WaveformStudentConfig(LazyAutoModelsMixin, PretrainedConfig):
    r"""
    upstream_config (`dict` or `PretrainedConfig`, *optional*):
        Config of the frozen transformers audio encoder whose hidden states are the features (e.g. a HuBERT-large
        config). None: the filterbank upstream below.
    upstream_layer (`int`, *optional*, defaults to -1):
        Which entry of the encoder's `hidden_states` is the feature (0 = the input of the first transformer layer,
        -1 = the last). None: all of them, mixed by the student's learnable weighted sum.
    filterbank (`str`, *optional*, defaults to `"log_mel"`):
        Without `upstream_config`: "log_mel" (torchaudio MelSpectrogram in dB) or "mfcc" (torchaudio MFCC).
    sampling_rate (`int`, *optional*, defaults to 16000):
        Rate of the waveforms the model takes.
    n_fft, hop_length (`int`, *optional*, defaults to 400 and 160):
        STFT size and hop of the filterbank (25 ms / 10 ms at 16 kHz).
    n_mels (`int`, *optional*, defaults to 80):
        Mel bands (the feature width of "log_mel"; the bands MFCC starts from).
    n_mfcc (`int`, *optional*, defaults to 40):
        Coefficients of "mfcc" (its feature width).
    normalize_features (`bool`, *optional*, defaults to `True`):
        Filterbank only: standardise each band over the clip's frames, so that zero padding is the clip's mean.
    max_frames (`int`, *optional*, defaults to 326):
        Features are cropped (the first `max_frames` frames) or zero-padded to this many frames.
    max_input_samples (`int`, *optional*):
        Input waveforms are cropped to their first `max_input_samples` samples before the upstream, as the
        training clips were (the data's `max_duration_seconds`).
    student_config (`dict` or `InvertedTransformerConfig`, *optional*):
        The trained student; None while the config only describes the upstream (the feature cache's key).
    """

    model_type = "hf_mtkd_waveform_student"
    sub_configs_defaults = {
        "upstream_config": SubConfigSpec(config_class=AutoConfig, model_type="hubert", optional=True),
        "student_config": SubConfigSpec(config_class=InvertedTransformerConfig, optional=True),
    }

    upstream_config: dict | PretrainedConfig | None = None
    upstream_layer: int | None = -1
    filterbank: str = "log_mel"
    sampling_rate: int = 16000
    n_fft: int = 400
    hop_length: int = 160
    n_mels: int = 80
    n_mfcc: int = 40
    normalize_features: bool = True
    max_frames: int = 326
    max_input_samples: int | None = None
    student_config: dict | PretrainedConfig | None = None

    def __post_init__(self, **kwargs):
        super().__post_init__(**kwargs)
        if self.upstream_config is None and self.filterbank not in FILTERBANKS:
            raise ValueError(f"filterbank must be one of {FILTERBANKS}, got {self.filterbank!r}.")
        for name in ("sampling_rate", "n_fft", "hop_length", "n_mels", "n_mfcc", "max_frames"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}.")
        if self.max_input_samples is not None and self.max_input_samples < 1:
            raise ValueError(f"max_input_samples must be >= 1 (or None), got {self.max_input_samples}.")
        if self.upstream_config is not None and self.upstream_layer is not None:
            n_states = self.upstream_config.num_hidden_layers + 1
            if not -n_states <= self.upstream_layer < n_states:
                raise ValueError(
                    f"upstream_layer {self.upstream_layer} is outside the {n_states} hidden states of the upstream "
                    f"({self.upstream_config.model_type}, {n_states - 1} layers): use -{n_states}..{n_states - 1}."
                )
        if self.student_config is not None:
            # The student's labels are the model's (pipeline() answers with these names).
            self.id2label = dict(self.student_config.id2label)
            self.label2id = dict(self.student_config.label2id)
            expected = (self.num_feature_layers, self.max_frames, self.feature_width)
            found = (self.student_config.num_upstream_layers, self.student_config.num_frames,
                     self.student_config.num_channels)
            if found != expected:
                raise ValueError(
                    f"student_config expects (layers, frames, channels) = {found}, but the upstream makes {expected}."
                )

    @property
    def is_filterbank(self) -> bool:
        return self.upstream_config is None

    @property
    def feature_width(self) -> int:
        """N, the number of feature channels (student tokens) the upstream makes."""
        if self.is_filterbank:
            return self.n_mels if self.filterbank == "log_mel" else self.n_mfcc
        return self.upstream_config.hidden_size

    @property
    def num_feature_layers(self) -> int:
        """1, or every hidden state of the encoder when upstream_layer is None (the weighted sum)."""
        if self.is_filterbank or self.upstream_layer is not None:
            return 1
        return self.upstream_config.num_hidden_layers + 1

    def upstream_description(self) -> dict:
        """Everything about the upstream and the frame fixing that changes a clip's features (no student, no
        labels)."""
        keys = ("upstream_layer", "filterbank", "sampling_rate", "n_fft", "hop_length", "n_mels", "n_mfcc",
                "normalize_features", "max_frames", "max_input_samples")
        description = {key: getattr(self, key) for key in keys}
        description["upstream_config"] = None if self.is_filterbank else self.upstream_config.to_dict()
        if description["upstream_config"] is not None:
            for volatile in ("transformers_version", "_name_or_path", "architectures", "id2label", "label2id"):
                description["upstream_config"].pop(volatile, None)
        return description


__all__ = ["ACTIVATIONS", "FILTERBANKS", "InvertedTransformerConfig", "WaveformStudentConfig"]
