"""The exit heads of the early-exit model and the paper's margin fusion of their logits.

`ClassificationHead` is [block] -> masked mean-pool -> projector -> classifier (the stock wav2vec2 head when
there is no block); `ExitBlock` is the optional block M_a; `fuse_by_margin` picks, per sample, the head whose
top-1 minus top-2 margin is largest. Kept apart from `modeling_early_exit.py`, which runs the backbone layer by
layer and decides where to stop.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn
from torch.nn import functional as F

from .configuration_early_exit import EarlyExitAudioConfig


# ----------------------------------------------------------------------------------------------
class ExitBlock(nn.Module):
    """Block M_a on the unpooled layer output: core (1x1 conv, LSTM or GRU; hidden -> hidden) -> LayerNorm -> SELU.

    LayerNorm + SELU follow the authors' RNN block. Their CNN block is a 1-channel 1x1 Conv2d (a scalar affine
    map of every feature) + BatchNorm + ReLU; SPEC asks for a block whose output size is the hidden size, so the
    CNN core here is a pointwise Conv1d over the hidden dimension. RNNs start from a zero state (the authors drew a
    random one at every call, which makes inference nondeterministic) and are unidirectional, so trailing padding
    cannot change the outputs at real frames.
    """

    def __init__(self, kind: str, hidden_size: int, layer_norm_eps: float):
        super().__init__()
        self.kind = kind
        if kind == "cnn":
            self.core = nn.Conv1d(hidden_size, hidden_size, kernel_size=1)
        elif kind == "lstm":
            self.core = nn.LSTM(hidden_size, hidden_size, batch_first=True)
        elif kind == "gru":
            self.core = nn.GRU(hidden_size, hidden_size, batch_first=True)
        else:  # validated by the config
            raise ValueError(f"Unknown block {kind!r}.")
        self.layer_norm = nn.LayerNorm(hidden_size, eps=layer_norm_eps)

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        if self.kind == "cnn":
            hidden_states = self.core(hidden_states.transpose(1, 2)).transpose(1, 2)
        else:
            hidden_states, _ = self.core(hidden_states)
        return F.selu(self.layer_norm(hidden_states))


def masked_mean(hidden_states: torch.Tensor, frame_mask: torch.Tensor | None) -> torch.Tensor:
    """Mean over time of the frames `frame_mask` keeps (all frames if it is None)."""
    if frame_mask is None:
        return hidden_states.mean(dim=1)
    hidden_states = hidden_states.masked_fill(~frame_mask.unsqueeze(-1), 0.0)
    return hidden_states.sum(dim=1) / frame_mask.sum(dim=1, keepdim=True).to(hidden_states.dtype)


class ClassificationHead(nn.Module):
    """[block] -> mean-pool -> projector (L1) -> classifier (L2); no nonlinearity between L1 and L2.

    With no block this is the stock `Wav2Vec2ForSequenceClassification` head: there the projector runs
    before the masked mean, which is the same function because pooling and an affine map commute.
    """

    def __init__(self, config: EarlyExitAudioConfig, block: str):
        super().__init__()
        backbone = config.backbone_config
        self.block = (
            None if block == "none" else ExitBlock(block, backbone.hidden_size, backbone.layer_norm_eps)
        )
        self.projector = nn.Linear(backbone.hidden_size, config.head_hidden_size)
        self.classifier = nn.Linear(config.head_hidden_size, config.num_labels)

    def forward(self, hidden_states: torch.Tensor, frame_mask: torch.Tensor | None):
        if self.block is not None:
            hidden_states = self.block(hidden_states)
        pooled = masked_mean(hidden_states, frame_mask)
        projected = self.projector(pooled)
        return pooled, projected, self.classifier(projected)


def fuse_by_margin(logits: Sequence[torch.Tensor], space: str = "logits") -> tuple[torch.Tensor, torch.Tensor]:
    """The paper's fusion: per sample, the head whose top-1 minus top-2 margin is largest.

    Args:
        logits: one (batch, num_labels) tensor per head.
        space: "logits" (the authors' code compares raw logits) or "probs" (softmax probabilities).

    Returns:
        The fused (batch, num_labels) logits and, per sample, the index of the chosen head (ties: the first).
    """
    if space not in ("logits", "probs"):
        raise ValueError(f"Unknown fusion space {space!r}; choose 'logits' or 'probs'.")
    stacked = torch.stack(list(logits))  # (heads, batch, K)
    scores = stacked.softmax(-1) if space == "probs" else stacked
    if scores.shape[-1] < 2:
        raise ValueError("Margin fusion needs at least 2 classes.")
    top2 = scores.topk(2, dim=-1).values
    margin = top2[..., 0] - top2[..., 1]  # (heads, batch)
    chosen = margin.argmax(dim=0)  # first maximum on ties
    fused = stacked[chosen, torch.arange(stacked.shape[1], device=stacked.device)]
    return fused, chosen
