"""Trainer of the audio + text models: CE alone, or logit + feature KD from a frozen teacher (SPEC section 4)."""

from __future__ import annotations

import math
from typing import Optional

import torch
from torch.optim.lr_scheduler import LambdaLR

from ..training.trainer import SERTrainer
from .card import DESCRIPTION, DISPLAY_NAME, PAPER
from .config import AudioTextDistillationConfig
from .data import TEACHER_LOGITS, TEACHER_TEXT_HIDDEN
from .losses import audio_text_kd_loss
from ..models.audio_text.modeling_audio_text import AudioTextForSequenceClassification


class AudioTextDistillationTrainer(SERTrainer):
    """alpha T^2 KL(P_T || P_S) + (1 - alpha) CE + gamma MSE(text hidden states) while training.

    The teacher (optional) is frozen, in eval mode and run without autograd; its logits are reordered
    into the student's label order by `teacher_label_index`. Batches carrying cached teacher outputs
    need no teacher. Without a teacher and without cached outputs the loss is plain CE. Evaluation
    reports CE alone, so validation losses of KD and non-KD runs compare directly.
    """

    _name = DISPLAY_NAME
    _description = DESCRIPTION
    _paper = PAPER
    _tag_names = ("audio_text", "knowledge-distillation", "multimodal")
    side_keys = SERTrainer.side_keys + (TEACHER_LOGITS, TEACHER_TEXT_HIDDEN)

    def __init__(
        self,
        *args,
        teacher: Optional[AudioTextForSequenceClassification] = None,
        teacher_label_index: Optional[torch.Tensor] = None,
        **kwargs,
    ):
        super().__init__(*args, **kwargs)
        self.teacher = teacher
        self.teacher_label_index = teacher_label_index
        if teacher is not None:
            teacher.requires_grad_(False)
            # Evaluation mode: never wrapped for gradients, only placed on this process's device.
            self.teacher = self.accelerator.prepare_model(teacher, device_placement=True, evaluation_mode=True)
            self.teacher.eval()

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        args: AudioTextDistillationConfig = self.args
        model_inputs, _ = self.split_inputs(inputs)
        labels = model_inputs.pop("labels")
        cached_logits = inputs.get(TEACHER_LOGITS)
        distil = model.training and (self.teacher is not None or cached_logits is not None)
        alpha, gamma = (args.alpha, args.gamma) if distil else (0.0, 0.0)
        outputs = model(**model_inputs, output_text_hidden_states=gamma > 0)
        teacher_logits = teacher_hidden = None
        if distil:
            teacher_logits, teacher_hidden = self._teacher_outputs(model_inputs, inputs, need_hidden=gamma > 0)
        loss, parts = audio_text_kd_loss(
            outputs.logits, labels, teacher_logits, outputs.text_hidden_states, teacher_hidden,
            outputs.text_attention_mask, temperature=args.temperature, alpha=alpha, gamma=gamma,
        )
        self.record("ce_loss", parts["ce"])
        if "kl" in parts:
            self.record("kd_kl", parts["kl"])
        if "mse" in parts:
            self.record("kd_text_mse", parts["mse"])
        outputs.loss = loss
        outputs.text_hidden_states = outputs.text_attention_mask = None  # never gathered as predictions
        return (loss, outputs) if return_outputs else loss

    def _teacher_outputs(self, model_inputs, inputs, need_hidden: bool):
        cached_logits = inputs.get(TEACHER_LOGITS)
        if cached_logits is not None:
            hidden = inputs.get(TEACHER_TEXT_HIDDEN)
            if need_hidden and hidden is None:
                raise ValueError("gamma > 0 but the teacher-output cache holds no text hidden states: rebuild it.")
            return cached_logits.float(), hidden
        with torch.no_grad():
            out = self.teacher(**model_inputs, output_text_hidden_states=need_hidden)
        logits = out.logits.float()
        if self.teacher_label_index is not None:
            logits = logits[:, self.teacher_label_index.to(logits.device)]
        return logits, out.text_hidden_states

    def create_scheduler(self, num_training_steps: int, optimizer=None):
        """Step decay (x lr_decay_factor every lr_decay_every_epochs epochs, the paper's StepLR) when configured."""
        args: AudioTextDistillationConfig = self.args
        if args.lr_decay_every_epochs is None:
            return super().create_scheduler(num_training_steps, optimizer)
        if self.lr_scheduler is None:
            steps_per_epoch = num_training_steps / max(args.num_train_epochs, 1e-12)
            every = max(steps_per_epoch * args.lr_decay_every_epochs, 1.0)
            factor = args.lr_decay_factor
            self.lr_scheduler = LambdaLR(optimizer or self.optimizer, lambda step: factor ** math.floor(step / every))
            self._created_lr_scheduler = True
        return self.lr_scheduler


__all__ = ["AudioTextDistillationTrainer"]
