"""Trainer for language-aware multi-teacher distillation (SPEC section 1)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from typing import Optional, Union

import torch
from transformers import PreTrainedModel

from ..distillation.papers import LANGUAGE_AWARE_MTKD_PAPER
from ..training.trainer import SERTrainer
from ..distillation.teachers import (
    Teacher,
    TeacherSpec,
    freeze,
    load_teacher,
    teacher_label_index,
    teacher_logits_for_batch,
)
from ..utils.distributed import pool_totals
from .collator import MultiTeacherCollator
from .card import teachers_section
from .config import MultiTeacherDistillationConfig
from .losses import cosine_teacher_weights, language_teacher_weights, multi_teacher_kd_loss


class MultiTeacherDistillationTrainer(SERTrainer):
    """Distils N frozen teachers into the student: (1 - lambda) CE + lambda T^2 sum_i w_i KL_i.

    Usable on its own, like any Trainer: `args` is a `MultiTeacherDistillationConfig`; `teachers` defaults to
    the ids/paths in `args.teachers`, loaded here (the student's `processing_class` decides which teachers
    need inputs of their own), and may instead hold, per entry of `args.teachers`, a loaded `Teacher`, a
    model (fed the student's inputs) or an id/path. With `use_teacher_logit_cache` and no `teachers`, every
    batch must carry `teacher_logits` (`hf_mtkd.distillation.cache.add_teacher_logits`). Without a
    `data_collator`, rows holding `waveform`, `labels` (and `language_column`) are batched with each teacher's
    own inputs. `languages` lists the language tags in the order of the batches' `language_id`.
    """

    _name = "language-aware multi-teacher knowledge distillation (MTKD)"
    _description = (
        "Frozen teachers (typically one per language) guide the student: the loss is "
        "(1 - lambda) * CE + lambda * sum_i w_i * KL_i, with softened distributions at temperature T and "
        "teacher weights w_i chosen per batch (by default from the cosine similarity of student and teacher logits)."
    )
    _paper = LANGUAGE_AWARE_MTKD_PAPER
    _tag_names = ("mtkd", "knowledge-distillation")
    side_keys = SERTrainer.side_keys + ("teacher_logits", "teacher_inputs")
    # compute_loss returns a per-batch mean: the Trainer divides it by the gradient-accumulation steps.
    loss_is_scaled_for_ga = False

    def __init__(
        self,
        model=None,
        args: Optional[MultiTeacherDistillationConfig] = None,
        data_collator=None,
        train_dataset=None,
        eval_dataset=None,
        processing_class=None,
        *,
        teachers: Optional[Sequence[Union[Teacher, PreTrainedModel, str]]] = None,
        teacher_names: Optional[list[str]] = None,
        teacher_languages: Optional[list[Optional[str]]] = None,
        languages: Optional[list[str]] = None,
        language_column: str = "language",
        **kwargs,
    ):
        if not isinstance(args, MultiTeacherDistillationConfig):
            raise TypeError(f"args must be a MultiTeacherDistillationConfig (it names the teachers), got "
                            f"{type(args).__name__}.")
        specs = args.teacher_specs()
        self.languages = list(languages or [])
        self.teachers = resolve_teachers(teachers, specs, args, model, processing_class)
        self.teacher_names = teacher_names or [spec.name for spec in specs]
        if self.teachers and len(self.teachers) != len(self.teacher_names):
            raise ValueError(f"Got {len(self.teachers)} teachers for the {len(self.teacher_names)} of args.teachers "
                             f"{self.teacher_names}.")
        self._language_column = language_column
        super().__init__(model=model, args=args, data_collator=data_collator, train_dataset=train_dataset,
                         eval_dataset=eval_dataset, processing_class=processing_class, **kwargs)
        teacher_languages = teacher_languages or [spec.language for spec in specs]
        lang_index = {lang: i for i, lang in enumerate(self.languages)}
        # -2 never matches a sample's language id (unknown languages are -1).
        self.teacher_language_ids = torch.tensor([lang_index.get(lang, -2) for lang in teacher_languages])
        if args.teacher_weighting == "language":
            if not self.languages:
                raise ValueError(
                    "teacher_weighting=language needs a language column in the data (--language_column_name)."
                )
        for teacher in self.teachers:
            # Evaluation mode: never wrapped for gradients, only placed on this process's device.
            # device_placement=True: under FSDP accelerate places nothing itself (FSDP moves what it wraps).
            teacher.model = self.accelerator.prepare_model(teacher.model, device_placement=True, evaluation_mode=True)
            teacher.model.eval()
        self.weight_totals = defaultdict(lambda: torch.zeros(len(self.teacher_names), dtype=torch.float64))
        self.weight_counts = defaultdict(int)

    def default_collator(self, args, feature_extractor):
        """Student inputs, each teacher's own inputs where it needs them, `language_id` when `languages` is set."""
        return MultiTeacherCollator(
            feature_extractor=feature_extractor,
            sampling_rate=feature_extractor.sampling_rate,
            language_column=self._language_column,
            language_to_id={lang: i for i, lang in enumerate(self.languages)} if self.languages else None,
            seed=args.seed,
            teacher_feature_extractors=tuple(
                None if t.shares_student_inputs else t.feature_extractor for t in self.teachers
            ),
        )

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

    def teacher_rows(self, language_id: torch.Tensor) -> Optional[torch.Tensor]:
        """(B, N) bool: the samples each online teacher must see; None: every teacher sees every sample.

        With language routing a sample's weight is 0 for every teacher but its own, so each teacher runs only on
        the samples routed to it; a sample whose language has no teacher falls back to cosine weights and so
        needs every teacher. The authors' batch-level cosine (`cosine_per_sample: false`) averages over the whole
        batch: a batch holding such a sample then runs every teacher on every sample, leaving the loss unchanged."""
        if self.args.teacher_weighting != "language":
            return None
        match = language_id.unsqueeze(1) == self.teacher_language_ids.to(language_id.device).unsqueeze(0)
        fallback = ~match.any(dim=1)
        if bool(fallback.any()) and not self.args.cosine_per_sample:
            return None
        return match | fallback.unsqueeze(1)

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        args: MultiTeacherDistillationConfig = self.args
        model_inputs, side = self.split_inputs(inputs)
        labels = model_inputs.pop("labels", None)
        outputs = model(**model_inputs)
        student_logits = outputs.logits
        teacher_logits = side.get("teacher_logits")
        if teacher_logits is not None:
            teacher_logits = teacher_logits.to(student_logits.device).float().transpose(0, 1)  # (N, B, K)
        elif not self.teachers:
            raise ValueError("The batch has no cached teacher_logits and no teachers were loaded.")
        language_id = side.get("language_id")
        if language_id is None:
            language_id = torch.full((student_logits.shape[0],), -1, dtype=torch.long, device=student_logits.device)
        if teacher_logits is None:
            teacher_logits = teacher_logits_for_batch(self.teachers, model_inputs, side.get("teacher_inputs"),
                                                      rows=self.teacher_rows(language_id))
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
            label_smoothing=args.label_smoothing_factor,
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

    def card_sections(self) -> list:
        """The teachers for the card of a trainer used on its own, with their mean weights when this is the only
        process (pooling them is a collective, and the card is written on the main process alone)."""
        weights = self.mean_teacher_weights() if self.accelerator.num_processes == 1 else None
        return [teachers_section(self.args.teacher_specs(), weights)]

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


def resolve_teachers(teachers, specs: list[TeacherSpec], args: MultiTeacherDistillationConfig, student,
                     student_feature_extractor) -> list[Teacher]:
    """Loaded `Teacher`s for the trainer: `teachers` as given (Teacher, model or id/path per spec), or loaded
    from the specs; none when the batches carry cached logits and no teachers were given."""
    if teachers is None:
        if args.use_teacher_logit_cache:
            return []
        teachers = [spec.model for spec in specs]
    teachers = list(teachers)
    if not teachers:
        return []
    if len(teachers) != len(specs):
        raise ValueError(f"Got {len(teachers)} teachers for the {len(specs)} of args.teachers "
                         f"{[s.name for s in specs]}.")
    if any(not isinstance(t, Teacher) for t in teachers):
        config = getattr(student, "config", None)
        if config is None or not getattr(config, "id2label", None):
            raise ValueError("Aligning teachers to the student needs the student's labels (model.config.id2label).")
        student_labels = [config.id2label[i] for i in range(len(config.id2label))]
    resolved = []
    for spec, teacher in zip(specs, teachers):
        if isinstance(teacher, Teacher):
            resolved.append(teacher)
        elif isinstance(teacher, PreTrainedModel):
            labels = [teacher.config.id2label[i] for i in range(teacher.config.num_labels)]
            index = teacher_label_index(labels, student_labels, spec.name)
            resolved.append(
                Teacher(spec, freeze(teacher), student_feature_extractor, index, shares_student_inputs=True)
            )
        elif isinstance(teacher, str):
            if student_feature_extractor is None:
                raise ValueError(
                    f"Loading teacher {spec.name!r} ({teacher}) needs the student's feature extractor: pass "
                    f"processing_class."
                )
            resolved.append(load_teacher(TeacherSpec(**{**vars(spec), "model": teacher}), student_labels,
                                         student_feature_extractor, args.teacher_dtype))
        else:
            raise TypeError(f"Teacher {spec.name!r} must be a Teacher, a PreTrainedModel or an id/path, got "
                            f"{type(teacher).__name__}.")
    return resolved
