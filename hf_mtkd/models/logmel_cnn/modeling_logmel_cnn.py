"""A compact 1-D CNN over log-mel filterbanks with masked pooling (see configuration_logmel_cnn.py).

Padding never changes a clip's output: every block zeroes the frames past the clip's length before
the next convolution (so a padded batch convolves the same zeros a clip alone is padded with), the
normalisation's batch statistics are taken over real frames only, and pooling averages real frames.
"""

from __future__ import annotations

from typing import Optional

import torch
from torch import nn
from transformers import PreTrainedModel
from transformers.modeling_outputs import SequenceClassifierOutput

from .configuration_logmel_cnn import LogMelCNNConfig


def conv_output_lengths(lengths: torch.Tensor, kernel: int, stride: int) -> torch.Tensor:
    """Valid output frames of a centred convolution (padding kernel // 2) over `lengths` valid input frames."""
    return torch.div(lengths + 2 * (kernel // 2) - kernel, stride, rounding_mode="floor") + 1


def lengths_to_mask(lengths: torch.Tensor, max_length: int) -> torch.Tensor:
    return torch.arange(max_length, device=lengths.device)[None, :] < lengths[:, None]


class MaskedBatchNorm1d(nn.BatchNorm1d):
    """BatchNorm1d whose batch statistics cover the real frames only (padding would pull them towards zero).

    The real frames are packed into one (frames, channels) batch for torch's own batch norm, so the running
    statistics and the affine parameters are the stock ones."""

    def forward(self, hidden: torch.Tensor, mask: Optional[torch.Tensor] = None) -> torch.Tensor:
        if mask is None or bool(mask.all()):
            return super().forward(hidden)
        frames = hidden.transpose(1, 2)  # (batch, time, channels)
        out = torch.zeros_like(frames)
        out[mask] = super().forward(frames[mask])
        return out.transpose(1, 2)


class LogMelCNNBlock(nn.Module):
    """Conv1d (no bias) -> masked batch norm -> ReLU -> dropout, with a residual when shapes allow."""

    def __init__(self, in_channels: int, out_channels: int, kernel: int, stride: int, dropout: float):
        super().__init__()
        self.kernel, self.stride = kernel, stride
        self.conv = nn.Conv1d(in_channels, out_channels, kernel, stride=stride, padding=kernel // 2, bias=False)
        self.norm = MaskedBatchNorm1d(out_channels)
        self.activation = nn.ReLU()
        self.dropout = nn.Dropout(dropout)
        self.residual = in_channels == out_channels and stride == 1

    def forward(self, hidden: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        out = self.conv(hidden)
        lengths = conv_output_lengths(lengths, self.kernel, self.stride)
        mask = lengths_to_mask(lengths, out.shape[-1])
        out = self.dropout(self.activation(self.norm(out, mask)))
        if self.residual:
            out = out + hidden
        return out * mask[:, None, :].to(out.dtype), lengths


class SpecAugment(nn.Module):
    """Frequency and time masking (torchaudio), drawn independently per clip; identity in eval mode."""

    def __init__(self, config: LogMelCNNConfig):
        super().__init__()
        import torchaudio

        freq = [torchaudio.transforms.FrequencyMasking(config.spec_augment_freq_width, iid_masks=True)
                for _ in range(config.spec_augment_freq_masks if config.spec_augment_freq_width > 0 else 0)]
        time = [torchaudio.transforms.TimeMasking(config.spec_augment_time_width, iid_masks=True)
                for _ in range(config.spec_augment_time_masks if config.spec_augment_time_width > 0 else 0)]
        self.masks = nn.ModuleList(freq + time)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        """features: (batch, mel, time); masked values become 0, the mean of per-utterance normalised bands."""
        if not self.training or len(self.masks) == 0:
            return features
        out = features.unsqueeze(1)  # torchaudio's iid masks want (batch, channel, freq, time)
        for mask in self.masks:
            out = mask(out)
        return out.squeeze(1)


class LogMelCNNPreTrainedModel(PreTrainedModel):
    config_class = LogMelCNNConfig
    base_model_prefix = "logmel_cnn"
    main_input_name = "input_values"
    supports_gradient_checkpointing = False

    def _init_weights(self, module):
        from transformers import initialization as init

        if isinstance(module, nn.Conv1d):
            init.kaiming_normal_(module.weight, nonlinearity="relu")
        elif isinstance(module, nn.Linear):
            init.normal_(module.weight, mean=0.0, std=self.config.initializer_range)
            if module.bias is not None:
                init.zeros_(module.bias)
        elif isinstance(module, nn.BatchNorm1d):
            init.ones_(module.weight)
            init.zeros_(module.bias)
            if getattr(module, "running_mean", None) is not None:
                init.zeros_(module.running_mean)
                init.ones_(module.running_var)
                init.zeros_(module.num_batches_tracked)


class LogMelCNNModel(LogMelCNNPreTrainedModel):
    """The encoder: SpecAugment (training) -> conv blocks -> masked pooling. Returns (pooled, frames, lengths)."""

    def __init__(self, config: LogMelCNNConfig):
        super().__init__(config)
        self.spec_augment = SpecAugment(config)
        channels = [config.num_mel_bins, *config.conv_channels]
        self.blocks = nn.ModuleList(
            LogMelCNNBlock(
                channels[i], channels[i + 1], config.conv_kernels[i], config.conv_strides[i], config.conv_dropout
            )
            for i in range(len(config.conv_channels))
        )
        self.post_init()

    @property
    def pooled_size(self) -> int:
        return self.config.conv_channels[-1] * (2 if self.config.pooling == "mean_std" else 1)

    def forward(self, input_values: torch.Tensor, attention_mask: Optional[torch.Tensor] = None,
                output_hidden_states: bool = False):
        if input_values.ndim != 3 or input_values.shape[-1] != self.config.num_mel_bins:
            raise ValueError(
                f"input_values must be (batch, frames, {self.config.num_mel_bins}) log-mel features from "
                f"LogMelFeatureExtractor, got shape {tuple(input_values.shape)}."
            )
        batch, frames, _ = input_values.shape
        if attention_mask is None:
            lengths = torch.full((batch,), frames, dtype=torch.long, device=input_values.device)
        else:
            lengths = attention_mask.long().sum(dim=-1)
        mask = lengths_to_mask(lengths, frames)
        hidden = (input_values * mask[..., None].to(input_values.dtype)).transpose(1, 2)  # (batch, mel, time)
        hidden = self.spec_augment(hidden)
        states = [hidden] if output_hidden_states else None
        for block in self.blocks:
            hidden, lengths = block(hidden, lengths)
            if states is not None:
                states.append(hidden)
        pooled = masked_statistics_pooling(hidden, lengths, with_std=self.config.pooling == "mean_std")
        return pooled, hidden, lengths, (tuple(states) if states is not None else None)


def masked_statistics_pooling(hidden: torch.Tensor, lengths: torch.Tensor, with_std: bool) -> torch.Tensor:
    """Mean (and standard deviation) over the first `lengths` frames of (batch, channels, time)."""
    mask = lengths_to_mask(lengths, hidden.shape[-1])[:, None, :].to(hidden.dtype)
    count = lengths.clamp(min=1)[:, None].to(hidden.dtype)
    mean = (hidden * mask).sum(dim=-1) / count
    if not with_std:
        return mean
    variance = (((hidden - mean[..., None]) * mask) ** 2).sum(dim=-1) / count
    return torch.cat([mean, torch.sqrt(variance + 1e-5)], dim=-1)


class LogMelCNNForAudioClassification(LogMelCNNPreTrainedModel):
    def __init__(self, config: LogMelCNNConfig):
        super().__init__(config)
        self.logmel_cnn = LogMelCNNModel(config)
        self.head = nn.Sequential(
            nn.Dropout(config.classifier_dropout),
            nn.Linear(self.logmel_cnn.pooled_size, config.classifier_hidden_size),
            nn.ReLU(),
            nn.Dropout(config.classifier_dropout),
            nn.Linear(config.classifier_hidden_size, config.num_labels),
        )
        self.post_init()

    def forward(
        self,
        input_values: torch.Tensor,
        attention_mask: Optional[torch.Tensor] = None,
        labels: Optional[torch.Tensor] = None,
        output_hidden_states: Optional[bool] = None,
        return_dict: Optional[bool] = None,
        **kwargs,
    ):
        return_dict = return_dict if return_dict is not None else self.config.return_dict
        pooled, _, _, states = self.logmel_cnn(
            input_values, attention_mask=attention_mask, output_hidden_states=bool(output_hidden_states)
        )
        return classification_output(self.head(pooled), labels, states, return_dict)


def classification_output(logits: torch.Tensor, labels: Optional[torch.Tensor], hidden_states, return_dict: bool):
    """What an audio classifier's forward returns: the cross-entropy with `labels` (computed in float32, also under
    bf16 autocast) and the logits, as a SequenceClassifierOutput or, without `return_dict`, the transformers tuple
    (loss first when there is one)."""
    loss = None
    if labels is not None:
        loss = nn.functional.cross_entropy(logits.float(), labels.view(-1))
    if not return_dict:
        output = (logits,) + ((hidden_states,) if hidden_states is not None else ())
        return ((loss,) + output) if loss is not None else output
    return SequenceClassifierOutput(loss=loss, logits=logits, hidden_states=hidden_states)


__all__ = [
    "LogMelCNNForAudioClassification",
    "classification_output",
    "LogMelCNNModel",
    "LogMelCNNPreTrainedModel",
    "MaskedBatchNorm1d",
    "conv_output_lengths",
    "masked_statistics_pooling",
]
