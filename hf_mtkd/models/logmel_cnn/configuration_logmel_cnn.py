"""Configuration of a compact 1-D CNN over log-mel filterbanks for audio classification.

A small student for CPUs and devices (0.1-2 M parameters): the mel bins are the input channels of a
stack of 1-D convolutions over time, pooled by the mean and standard deviation over the frames the
attention mask keeps, then a two-layer head. SpecAugment (torchaudio frequency and time masking)
runs in training only.
"""

from __future__ import annotations

from transformers import PretrainedConfig

from ...auto_classes import LazyAutoModelsMixin

POOLING_MODES = ("mean", "mean_std")


class LogMelCNNConfig(LazyAutoModelsMixin, PretrainedConfig):
    r"""
    num_mel_bins (`int`, *optional*, defaults to 64):
        Mel bands per frame of the input (the feature extractor's `num_mel_bins`).
    conv_channels (`list[int]`, *optional*, defaults to `[64, 64, 128, 128]`):
        Output channels of each convolution block.
    conv_kernels (`list[int]`, *optional*, defaults to `[5, 3, 3, 3]`):
        Kernel size (frames, odd) of each block.
    conv_strides (`list[int]`, *optional*, defaults to `[2, 1, 2, 1]`):
        Time stride of each block. A block keeps a residual connection when its stride is 1 and its
        input and output channels agree.
    conv_dropout (`float`, *optional*, defaults to 0.1):
        Dropout after each block.
    pooling (`str`, *optional*, defaults to `"mean_std"`):
        Temporal pooling over the valid frames: "mean", or "mean_std" (mean and standard deviation, concatenated).
    classifier_hidden_size (`int`, *optional*, defaults to 128):
        Width of the head's hidden layer.
    classifier_dropout (`float`, *optional*, defaults to 0.3):
        Dropout before each layer of the head.
    spec_augment_freq_masks / spec_augment_freq_width (`int`, *optional*, defaults to 2 / 8):
        Number of frequency masks per clip in training, and the largest width of each (mel bins); 0 masks: off.
    spec_augment_time_masks / spec_augment_time_width (`int`, *optional*, defaults to 2 / 20):
        Number of time masks per clip in training, and the largest width of each (frames); 0 masks: off.
    initializer_range (`float`, *optional*, defaults to 0.02):
        Std of the normal init of the head's linear layers (convolutions use Kaiming init).
    """

    model_type = "hf_mtkd_logmel_cnn"

    num_mel_bins: int = 64
    conv_channels: list[int] | tuple[int, ...] = (64, 64, 128, 128)
    conv_kernels: list[int] | tuple[int, ...] = (5, 3, 3, 3)
    conv_strides: list[int] | tuple[int, ...] = (2, 1, 2, 1)
    conv_dropout: float = 0.1
    pooling: str = "mean_std"
    classifier_hidden_size: int = 128
    classifier_dropout: float = 0.3
    spec_augment_freq_masks: int = 2
    spec_augment_freq_width: int = 8
    spec_augment_time_masks: int = 2
    spec_augment_time_width: int = 20
    initializer_range: float = 0.02

    def __post_init__(self, **kwargs):
        super().__post_init__(**kwargs)
        if self.id2label is not None and not self.label2id:
            self.label2id = {label: index for index, label in self.id2label.items()}
        self.conv_channels = [int(c) for c in self.conv_channels]
        self.conv_kernels = [int(k) for k in self.conv_kernels]
        self.conv_strides = [int(s) for s in self.conv_strides]
        n = len(self.conv_channels)
        if n == 0 or len(self.conv_kernels) != n or len(self.conv_strides) != n:
            raise ValueError(
                "conv_channels, conv_kernels and conv_strides must be non-empty and of one length, got "
                f"{self.conv_channels}, {self.conv_kernels}, {self.conv_strides}."
            )
        if any(c < 1 for c in self.conv_channels) or any(s < 1 for s in self.conv_strides):
            raise ValueError(f"conv_channels and conv_strides must be >= 1, got {self.conv_channels}, "
                             f"{self.conv_strides}.")
        if any(k < 1 or k % 2 == 0 for k in self.conv_kernels):
            raise ValueError(f"conv_kernels must be odd and >= 1 (centred windows), got {self.conv_kernels}.")
        if self.num_mel_bins < 1 or self.classifier_hidden_size < 1:
            raise ValueError(
                f"num_mel_bins and classifier_hidden_size must be >= 1, got {self.num_mel_bins}, "
                f"{self.classifier_hidden_size}."
            )
        if self.pooling not in POOLING_MODES:
            raise ValueError(f"Unknown pooling {self.pooling!r}; choose one of {', '.join(POOLING_MODES)}.")
        for name in ("conv_dropout", "classifier_dropout"):
            if not 0.0 <= getattr(self, name) < 1.0:
                raise ValueError(f"{name} must be in [0, 1), got {getattr(self, name)}.")
        for name in ("spec_augment_freq_masks", "spec_augment_freq_width", "spec_augment_time_masks",
                     "spec_augment_time_width"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}.")
        if self.spec_augment_freq_width > self.num_mel_bins:
            raise ValueError(
                f"spec_augment_freq_width ({self.spec_augment_freq_width}) exceeds num_mel_bins ({self.num_mel_bins})."
            )


__all__ = ["LogMelCNNConfig", "POOLING_MODES"]
