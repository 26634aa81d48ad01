"""The student's own objective (eq. 2 / eq. 11): lambda * SupCon + (1 - lambda) * CE, with MoCo.

As the paper describes it (section 4.4): the student (query encoder) reads the clip's features, a momentum
copy of it (key encoder, He et al. 2020) reads a SpecAugment view of them, and the supervised contrastive loss
pulls each query towards the keys of its class, among this batch's keys and a queue of earlier keys with their
labels. The key encoder follows the student by theta_k <- m * theta_k + (1 - m) * theta_q before each batch's
keys are computed (as MoCo's forward does), and runs without dropout so that keys are stable targets.
"""

from __future__ import annotations

import copy
from typing import Optional

import torch
from torch import nn

from .losses import student_loss, supcon_loss


def spec_augment(features: torch.Tensor, freq_mask_param: int, time_mask_param: int) -> torch.Tensor:
    """One frequency mask (width drawn from [0, freq_mask_param)) over the channels and one time mask (width from
    [0, time_mask_param)) over the frames, drawn independently per clip with torchaudio's masking transforms.

    features (B, T, N) or (B, L, T, N); with L upstream layers every layer of a clip gets the same masks. Mask
    widths are capped at the number of channels / frames."""
    import torchaudio  # deferred: the masks are only drawn in training

    channels, frames = features.shape[-1], features.shape[-2]
    # (B, 1, N, T): torchaudio's (..., freq, time)
    keep = torch.ones(features.shape[0], 1, channels, frames, device=features.device)
    if freq_mask_param > 0:
        keep = torchaudio.transforms.FrequencyMasking(min(freq_mask_param, channels), iid_masks=True)(keep)
    if time_mask_param > 0:
        keep = torchaudio.transforms.TimeMasking(min(time_mask_param, frames), iid_masks=True)(keep)
    keep = keep.transpose(-1, -2)  # (B, 1, T, N)
    if features.dim() == 3:
        keep = keep[:, 0]
    return features * keep.to(features.dtype)


class LabelledQueue(nn.Module):
    """A ring buffer of (key, label) pairs: the newest `size` keys; `contents()` returns the filled part."""

    def __init__(self, size: int, dim: int):
        super().__init__()
        if size < 0:
            raise ValueError(f"queue size must be >= 0, got {size}.")
        self.size = size
        self.register_buffer("keys", torch.zeros(size, dim))
        self.register_buffer("labels", torch.full((size,), -1, dtype=torch.long))
        self.pointer = 0
        self.filled = 0

    @torch.no_grad()
    def enqueue(self, keys: torch.Tensor, labels: torch.Tensor) -> None:
        if self.size == 0:
            return
        keys, labels = keys.detach()[-self.size:], labels.detach()[-self.size:]
        positions = (self.pointer + torch.arange(len(keys), device=self.keys.device)) % self.size
        self.keys[positions] = keys.to(self.keys.dtype)
        self.labels[positions] = labels.to(self.labels.device)
        self.pointer = (self.pointer + len(keys)) % self.size
        self.filled = min(self.size, self.filled + len(keys))

    def contents(self) -> tuple[torch.Tensor, torch.Tensor]:
        return self.keys[: self.filled], self.labels[: self.filled]


class MomentumKeyEncoder(nn.Module):
    """A frozen copy of the student whose weights follow it by exponential moving average."""

    def __init__(self, student: nn.Module, momentum: float):
        super().__init__()
        if not 0.0 <= momentum <= 1.0:
            raise ValueError(f"momentum must be in [0, 1], got {momentum}.")
        self.encoder = copy.deepcopy(student).requires_grad_(False).eval()
        self.momentum = momentum

    def train(self, mode: bool = True):
        return super().train(False)  # keys without dropout

    @torch.no_grad()
    def update(self, student: nn.Module) -> None:
        """theta_k <- m * theta_k + (1 - m) * theta_q, parameter by parameter (MoCo's momentum rule)."""
        for key_param, query_param in zip(self.encoder.parameters(), student.parameters()):
            key_param.mul_(self.momentum).add_(query_param.detach(), alpha=1.0 - self.momentum)

    @torch.no_grad()
    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return self.encoder.contrastive_embedding(self.encoder.pooled_features(features))


class ContrastiveStudentObjective(nn.Module):
    """L_student = lambda * SupCon(queries, keys + queue) + (1 - lambda) * CE for one student.

    Holds the student's key encoder (made from the student on first use) and its queue. With lambda = 0 it is
    plain CE and no key encoder is made. Call `loss(...)` in training only: it moves the key encoder and fills the
    queue."""

    def __init__(self, *, supcon_lambda: float, temperature: float, queue_size: int, momentum: float,
                 freq_mask_param: int, time_mask_param: int):
        super().__init__()
        self.supcon_lambda = supcon_lambda
        self.temperature = temperature
        self.queue_size = queue_size
        self.momentum = momentum
        self.freq_mask_param = freq_mask_param
        self.time_mask_param = time_mask_param
        self.key_encoder: Optional[MomentumKeyEncoder] = None
        self.queue: Optional[LabelledQueue] = None

    def start(self, student: nn.Module) -> None:
        """Key encoder = a copy of `student` now; empty queue."""
        self.key_encoder = MomentumKeyEncoder(student, self.momentum)
        self.queue = LabelledQueue(self.queue_size, student.config.contrastive_dim)
        device = next(student.parameters()).device
        self.key_encoder.to(device)
        self.queue.to(device)

    def loss(self, student: nn.Module, features: torch.Tensor, labels: torch.Tensor, logits: torch.Tensor,
             pooled_output: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        if self.supcon_lambda == 0.0:
            loss = student_loss(logits, labels, logits.new_zeros(()), 0.0)
            return loss, {"ce": loss.detach()}
        if self.key_encoder is None:
            self.start(student)
        self.key_encoder.to(features.device)
        self.queue.to(features.device)
        self.key_encoder.update(student)
        keys = self.key_encoder(spec_augment(features, self.freq_mask_param, self.time_mask_param))
        queued_keys, queued_labels = self.queue.contents()
        queries = student.contrastive_embedding(pooled_output)
        supcon = supcon_loss(queries, labels, torch.cat([keys, queued_keys]), torch.cat([labels, queued_labels]),
                             self.temperature)
        self.queue.enqueue(keys, labels)
        loss = student_loss(logits, labels, supcon, self.supcon_lambda)
        return loss, {"supcon": supcon.detach()}


__all__ = ["ContrastiveStudentObjective", "LabelledQueue", "MomentumKeyEncoder", "spec_augment"]
