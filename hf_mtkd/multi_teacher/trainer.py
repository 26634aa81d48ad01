"""Trainer for language-aware multi-teacher distillation (SPEC section 1)."""

from __future__ import annotations

from collections import defaultdict
from typing import Optional

import torch

from ..training.trainer import SERTrainer
from ..utils.distributed import pool_totals
from .config import MultiTeacherDistillationConfig
from .losses import cosine_teacher_weights, language_teacher_weights, multi_teacher_kd_loss
from .teachers import Teacher, teacher_logits_for_batch


class MultiTeacherDistillationTrainer(SERTrainer):
    """Distils N frozen teachers into the student: (1 - lambda) CE + lambda T^2 sum_i w_i KL_i.

    `teachers` may be empty when every batch carries cached `teacher_logits`.
    `languages` lists the language tags in the order of the batches' `language_id`.
    """

    def __init__(
        self,
        *args,
        teachers: list[Teacher],
        teacher_names: Optional[list[str]] = None,
        teacher_languages: Optional[list[Optional[str]]] = None,
        languages: Optional[list[str]] = None,
        **kwargs,
    ):
        super().__init__(*args, **kwargs)
        args_: MultiTeacherDistillationConfig = self.args
        specs = args_.teacher_specs()
        self.teacher_names = teacher_names or [spec.name for spec in specs]
        self.languages = list(languages or [])
        teacher_languages = teacher_languages or [spec.language for spec in specs]
        lang_index = {lang: i for i, lang in enumerate(self.languages)}
        # -2 never matches a sample's language id (unknown languages are -1).
        self.teacher_language_ids = torch.tensor([lang_index.get(lang, -2) for lang in teacher_languages])
        if args_.teacher_weighting == "language":
            if not self.languages:
                raise ValueError(
                    "teacher_weighting=language needs a language column in the data (--language_column_name)."
                )
        self.teachers = teachers
        for teacher in self.teachers:
            # Evaluation mode: never wrapped for gradients, only placed on this process's device.
            # device_placement=True: under FSDP accelerate places nothing itself (FSDP moves what it wraps).
            teacher.model = self.accelerator.prepare_model(teacher.model, device_placement=True, evaluation_mode=True)
            teacher.model.eval()
        self.weight_totals = defaultdict(lambda: torch.zeros(len(self.teacher_names), dtype=torch.float64))
        self.weight_counts = defaultdict(int)

    def teacher_weights(self, student_logits, teacher_logits, language_id) -> torch.Tensor:
        args: MultiTeacherDistillationConfig = self.args
        n_teachers, batch = teacher_logits.shape[0], teacher_logits.shape[1]
        if args.teacher_weighting == "uniform":
            return torch.full((batch, n_teachers), 1.0 / n_teachers, device=student_logits.device)
        if args.teacher_weighting == "fixed":
            weights = torch.tensor(args.fixed_teacher_weights, dtype=torch.float32, device=student_logits.device)
            return (weights / weights.sum()).expand(batch, n_teachers)
        cosine = cosine_teacher_weights(
            student_logits, teacher_logits, args.weighting_temperature, per_sample=args.cosine_per_sample
        )
        if args.teacher_weighting == "cosine":
            return cosine
        # language: samples whose language has a teacher go to it; the rest fall back to cosine.
        return language_teacher_weights(language_id, self.teacher_language_ids.to(language_id.device), cosine)

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        args: MultiTeacherDistillationConfig = self.args
        model_inputs, side = self.split_inputs(inputs)
        labels = model_inputs.pop("labels", None)
        outputs = model(**model_inputs)
        student_logits = outputs.logits
        teacher_logits = side.get("teacher_logits")
        if teacher_logits is not None:
            teacher_logits = teacher_logits.to(student_logits.device).float().transpose(0, 1)  # (N, B, K)
        else:
            if not self.teachers:
                raise ValueError("The batch has no cached teacher_logits and no teachers were loaded.")
            teacher_logits = teacher_logits_for_batch(self.teachers, model_inputs, side.get("teacher_inputs"))
        language_id = side.get("language_id")
        if language_id is None:
            language_id = torch.full((student_logits.shape[0],), -1, dtype=torch.long, device=student_logits.device)
        weights = self.teacher_weights(student_logits, teacher_logits, language_id)
        loss, parts = multi_teacher_kd_loss(
            student_logits,
            teacher_logits,
            labels,
            weights,
            kd_lambda=args.kd_lambda,
            temperature=args.temperature,
            direction=args.kl_direction,
            reduction=args.kl_reduction,
        )
        self._log_step(parts, weights, language_id)
        if return_outputs:
            outputs.loss = loss
            return loss, outputs
        return loss

    def _log_step(self, parts, weights: torch.Tensor, language_id: torch.Tensor) -> None:
        self.record("ce_loss", parts["ce"])
        self.record("kd_loss", parts["kl"])
        weights = weights.detach().double().cpu()
        language_id = language_id.detach().cpu()
        for i, name in enumerate(self.teacher_names):
            self.record(f"teacher_weight/{name}", weights[:, i].mean())
        for lang_id in language_id.unique().tolist():
            rows = weights[language_id == lang_id]
            lang = self.languages[lang_id] if 0 <= lang_id < len(self.languages) else "unknown"
            for i, name in enumerate(self.teacher_names):
                self.record(f"teacher_weight/{lang}/{name}", rows[:, i].mean())
            if self.model.training:
                self.weight_totals[lang] += rows.sum(0)
                self.weight_counts[lang] += rows.shape[0]

    def mean_teacher_weights(self) -> dict[str, dict[str, float]]:
        """Mean weight each teacher received per language over all training steps so far, pooled over
        processes (a collective: every process must call it)."""
        totals = {lang: (total.tolist(), self.weight_counts[lang]) for lang, total in self.weight_totals.items()}
        pooled = pool_totals(totals, self.accelerator.num_processes)
        return {
            lang: {name: float(total[i] / count) for i, name in enumerate(self.teacher_names)}
            for lang, (total, count) in sorted(pooled.items())
            if count
        }
