"""The student phases as Trainer loops: the student alone (eq. 2) and the distilled student (eq. 4), whose every
epoch ends with one meta-teacher pass over the quiz split (eq. 9), as MPDistil schedules it.

The student epochs are ordinary Trainer epochs (one optimizer, one dataset, evaluation and best-checkpoint
selection on validation), so they are `SERTrainer` subclasses. The meta-teacher pass is a plain loop in a
callback: it trains another module (T''s head and projection) with its own optimizer on another split once
per epoch, which the Trainer's loop has no place for.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Callable, Optional

import numpy as np
import torch
from torch.utils.data import DataLoader
from transformers import TrainerCallback

from ..training import SERTrainer
from .contrastive import ContrastiveStudentObjective
from .features import INPUT_FEATURES, TEACHER_FEATURES
from .losses import kd_loss, meta_teacher_loss
from .teacher import MetaTeacher

logger = logging.getLogger(__name__)


@dataclass
class FeatureCollator:
    """Rows with `input_features` and `labels` (and `teacher_features` when asked) into float32 / long tensors."""

    with_teacher_features: bool = False

    def __call__(self, rows: list[dict]) -> dict[str, torch.Tensor]:
        batch = {
            INPUT_FEATURES: torch.from_numpy(np.stack([np.asarray(row[INPUT_FEATURES]) for row in rows])).float(),
            "labels": torch.tensor([int(row["labels"]) for row in rows], dtype=torch.long),
        }
        if self.with_teacher_features:
            batch[TEACHER_FEATURES] = torch.from_numpy(
                np.stack([np.asarray(row[TEACHER_FEATURES]) for row in rows])
            ).float()
        return batch


@dataclass
class DistillationSettings:
    """What the distilled student's loss needs beyond its own objective (eq. 4)."""

    meta_teacher: MetaTeacher
    alpha: float
    beta: float
    temperature: float
    soft_loss: str


class MetaCurriculumStudentTrainer(SERTrainer):
    """Trains an `InvertedTransformerForFeatureClassification` on cached features with L_student (eq. 2), and with
    `distillation` the KD loss of eq. 4 against the current meta-teacher.

    In evaluation the loss is plain CE (the contrastive objective moves the key encoder and the queue, which only
    training may do); the logits are the student's."""

    def __init__(
        self,
        *args,
        objective: ContrastiveStudentObjective,
        distillation: Optional[DistillationSettings] = None,
        **kwargs,
    ):
        super().__init__(*args, **kwargs)
        if self.args.world_size > 1:
            raise ValueError("meta_curriculum runs on one process (its meta-teacher and curriculum loops are not "
                             "distributed).")
        self.objective = objective
        self.distillation = distillation

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        features, labels = inputs[INPUT_FEATURES], inputs["labels"]
        outputs = model(features)
        student = self.accelerator.unwrap_model(model)
        if not student.training:
            loss = torch.nn.functional.cross_entropy(outputs.logits.float(), labels)
            return (loss, outputs) if return_outputs else loss
        loss, parts = self.objective.loss(student, features, labels, outputs.logits, outputs.pooled_output)
        if self.distillation is not None:
            meta = self.distillation.meta_teacher
            teacher_features = inputs[TEACHER_FEATURES]
            with torch.no_grad():
                meta_logits = meta(teacher_features)
            loss, kd_parts = kd_loss(
                loss,
                outputs.logits,
                meta_logits,
                meta.project(outputs.pooled_output, trainable=False),
                teacher_features,
                alpha=self.distillation.alpha,
                beta=self.distillation.beta,
                temperature=self.distillation.temperature,
                soft=self.distillation.soft_loss,
            )
            parts.update(kd_parts)
        for name, value in parts.items():
            self.record(name, value)
        return (loss, outputs) if return_outputs else loss


def meta_teacher_pass(meta_teacher: MetaTeacher, student, loader: DataLoader, optimizer: torch.optim.Optimizer,
                      device, max_grad_norm: Optional[float] = None) -> float:
    """One pass over the quiz split: T''s head and projection descend eq. 9 on the teacher's pooled features and on
    the current student's (computed without gradient, the student in eval mode). Returns the mean loss."""
    was_training = student.training
    student.eval()
    meta_teacher.train()
    total, count = 0.0, 0
    try:
        for batch in loader:
            features = batch[INPUT_FEATURES].to(device)
            labels = batch["labels"].to(device)
            teacher_features = batch[TEACHER_FEATURES].to(device)
            with torch.no_grad():
                student_features = student.pooled_features(features)
            loss = meta_teacher_loss(
                meta_teacher(teacher_features), meta_teacher.classify_student(student_features), labels
            )
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if max_grad_norm:
                torch.nn.utils.clip_grad_norm_(
                    [p for group in optimizer.param_groups for p in group["params"]], max_grad_norm
                )
            optimizer.step()
            total += loss.item() * len(labels)
            count += len(labels)
    finally:
        student.train(was_training)
        meta_teacher.eval()
    return total / max(count, 1)


class MetaTeacherCallback(TrainerCallback):
    """After each student epoch: one meta-teacher pass over the quiz split, then T''s validation score; the best
    T' state by that score is kept (`best_state`, `best_score`, `history`)."""

    def __init__(self, trainer: MetaCurriculumStudentTrainer, meta_teacher: MetaTeacher, quiz_loader: DataLoader,
                 learning_rate: float, score: Callable[[MetaTeacher], float], greater_is_better: bool = True,
                 weight_decay: float = 0.0):
        self.trainer = trainer
        self.meta_teacher = meta_teacher
        self.quiz_loader = quiz_loader
        self.optimizer = torch.optim.AdamW([p for p in meta_teacher.parameters() if p.requires_grad], lr=learning_rate,
                                           weight_decay=weight_decay)
        self.score = score
        self.greater_is_better = greater_is_better
        self.best_state: Optional[dict] = None
        self.best_score: Optional[float] = None
        self.history: list[dict] = []

    def on_epoch_end(self, args, state, control, **kwargs):
        student = self.trainer.accelerator.unwrap_model(self.trainer.model)
        device = next(student.parameters()).device
        self.meta_teacher.to(device)
        loss = meta_teacher_pass(
            self.meta_teacher, student, self.quiz_loader, self.optimizer, device, args.max_grad_norm
        )
        score = float(self.score(self.meta_teacher))
        better = self.best_score is None or (
            score > self.best_score if self.greater_is_better else score < self.best_score
        )
        if better:
            self.best_score, self.best_state = score, self.meta_teacher.trainable_state()
        self.history.append({"epoch": state.epoch, "meta_teacher_loss": loss, "meta_teacher_validation": score})
        self.trainer.record("meta_teacher_loss", loss)
        logger.info("Epoch %.0f: meta-teacher quiz loss %.4f, validation score %.4f%s", state.epoch or 0, loss, score,
                    " (best)" if better else "")
        return control


__all__ = [
    "DistillationSettings",
    "FeatureCollator",
    "MetaCurriculumStudentTrainer",
    "MetaTeacherCallback",
    "meta_teacher_pass",
]
