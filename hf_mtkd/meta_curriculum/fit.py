"""The phases of meta-curriculum distillation, which `MetaCurriculumMethod.fit` runs on the prepared splits, and
the export of the final student as a waveform model.

Phases (SPEC section 3, MPDistil's schedule):
  0. caches (`caches.prepare_caches`, the method's `prepare_splits`): the teacher's logits and pooled features,
     and the upstream features, once per split; a quiz split is carved from the training clips;
  1. student alone: L_student (eq. 2) for `num_train_epochs`, best epoch by validation;
  2. distillation: per epoch one KD epoch of a student (eq. 4, against the current meta-teacher T'), then one T' pass
     over the quiz split (eq. 9), for `meta_epochs`; the best student and the best T' by validation are kept;
  3. curriculum: S' = a copy of the best distilled student, trained on policy-picked buckets (eq. 10-13);
  4. the stages before S' scored on validation and test (UR/WR/F1 with bootstrap CIs, per language); S' exported
     with its upstream so that it takes waveforms. S' itself is scored by the shared reports, on the export.
"""

from __future__ import annotations

import copy
import dataclasses
import logging
import os
import shutil
from dataclasses import dataclass, field
from typing import Any, Optional, Sequence

import numpy as np
import torch
import transformers
from datasets import DatasetDict

from ..arguments import DataArguments, ModelArguments
from ..data.collator import feature_extractor_inputs
from ..data.preprocessing import WAVEFORM
from ..modeling_utils import hub_kwargs, label_config_kwargs, load_pretrained
from ..training.evaluation import make_compute_metrics, prediction_collapse_warning
from ..training.outputs import STAGING_DIR, publish_staged
from .config import MetaCurriculumConfig
from ..models.inverted_transformer.configuration_inverted_transformer import (
    InvertedTransformerConfig,
    WaveformStudentConfig,
)
from .contrastive import ContrastiveStudentObjective
from .curriculum import Buckets, CurriculumResult, make_buckets, run_curriculum
from .features import TEACHER_FEATURES
from ..models.inverted_transformer.modeling_inverted_transformer import InvertedTransformerForFeatureClassification
from ..models.inverted_transformer.modeling_waveform_student import WaveformStudentForAudioClassification
from .report import (
    ACTIONS_PLOT,
    FINAL_STAGE,
    STAGE_RESULTS_KEY,
    cached_teacher_logits,
    format_stage_table,
    meta_teacher_logits,
    plot_curriculum_actions,
    split_metrics,
    student_logits,
)
from .caches import PreparedCaches
from .teacher import MetaTeacher
from .trainer import DistillationSettings, FeatureCollator, MetaCurriculumStudentTrainer, MetaTeacherCallback

logger = logging.getLogger("hf_mtkd")

EVAL_SPLITS = ("validation", "test")
#: A stage that predicts a class for under this share of a split's clips counts as never predicting it.
STAGE_COLLAPSE_MIN_SHARE = 0.02


@dataclass
class MetaCurriculumResult:
    """What `fit_phases` returns. `model` (the exported waveform model: frozen upstream + S') and
    `feature_extractor` are the run's product; `stage_results[stage][split]` is a `compute_ser_metrics` result
    for every stage before S' (S' is scored by the shared reports, on `model`)."""

    model: WaveformStudentForAudioClassification
    feature_extractor: Any
    student: InvertedTransformerForFeatureClassification  # S', features in
    stage_results: dict[str, dict[str, dict]]
    buckets: Buckets
    curriculum: CurriculumResult
    meta_teacher_history: list[dict]
    models: dict[str, Any] = field(default_factory=dict)  # student, distilled_student, meta_teacher, policy, teacher
    #: The student phases' training warnings (validation UR at chance level), each prefixed with its phase.
    training_warnings: list[str] = field(default_factory=list)

    def summary_extras(self) -> dict:
        """JSON-ready extras of the run summary: the earlier stages' results (`stage_results`, whole
        `compute_ser_metrics` results), the buckets and the curriculum's picks per episode, the meta-teacher's
        history."""
        return {
            STAGE_RESULTS_KEY: self.stage_results,
            "curriculum": {
                # A list, in action order (easy to hard): actions_per_episode counts index into it.
                "buckets": [
                    {"name": name, "size": int(len(idx)), "teacher_confidence": confidence}
                    for name, idx, confidence in zip(
                        self.buckets.names,
                        self.buckets.indices,
                        self.buckets.teacher_confidence or [None] * len(self.buckets.names),
                    )
                ],
                "bucket_source": self.buckets.source,
                "best_episode": self.curriculum.best_episode,
                "actions_per_episode": [
                    np.bincount(e["actions"], minlength=len(self.buckets.names)).tolist()
                    for e in self.curriculum.episodes
                ],
                "mean_reward_per_episode": [e["mean_reward"] for e in self.curriculum.episodes],
                # 0 = the easiest bucket: the mean drawn bucket per episode shows whether the draws move to harder
                # ones.
                "mean_bucket_per_episode": [e["mean_action"] for e in self.curriculum.episodes],
                "action_probabilities_per_episode": [e["action_probabilities"] for e in self.curriculum.episodes],
                "student_updates": int(sum(len(e["actions"]) for e in self.curriculum.episodes)),
            },
            "meta_teacher": self.meta_teacher_history,
        }


def build_feature_student(model_args: ModelArguments, upstream_config: WaveformStudentConfig,
                          label_names: Sequence[str]) -> InvertedTransformerForFeatureClassification:
    """A fresh student for the upstream's feature shape (model_type + config_overrides), or a saved one."""
    shape = {"num_frames": upstream_config.max_frames, "num_channels": upstream_config.feature_width,
             "num_upstream_layers": upstream_config.num_feature_layers}
    labels = label_config_kwargs(list(label_names))
    if model_args.model_name_or_path is not None:
        model = load_pretrained(InvertedTransformerForFeatureClassification, model_args.model_name_or_path,
                                "student", **hub_kwargs(model_args))
        found = {key: getattr(model.config, key) for key in shape}
        if found != shape or [model.config.id2label[i] for i in range(model.config.num_labels)] != list(label_names):
            raise ValueError(
                f"student {model_args.model_name_or_path!r} expects {found} and labels {model.config.id2label}; the "
                f"upstream "
                f"makes {shape} and the labels are {list(label_names)}."
            )
        return model
    if model_args.model_type != InvertedTransformerConfig.model_type:
        raise ValueError(
            f"meta_curriculum trains an inverted-transformer student: set model_type: "
            f"{InvertedTransformerConfig.model_type} "
            f"(with config_overrides for its size) or model_name_or_path of a saved one, got model_type "
            f"{model_args.model_type!r}."
        )
    overrides = dict(model_args.config_overrides or {})
    clash = sorted(set(overrides) & set(shape))
    if clash:
        raise ValueError(f"config_overrides sets {clash}, which the upstream decides ({shape}); remove them.")
    return InvertedTransformerForFeatureClassification(InvertedTransformerConfig(**overrides, **shape, **labels))


def _stage_args(config: MetaCurriculumConfig, stage: str, **changes) -> MetaCurriculumConfig:
    """The Trainer arguments of one student phase: its own folder, never pushed, checkpoints without optimizer
    state."""
    return dataclasses.replace(config, output_dir=os.path.join(config.output_dir, "stages", stage), push_to_hub=False,
                               save_only_model=True, overwrite_output_dir=True, **changes)


def _objective(config: MetaCurriculumConfig) -> ContrastiveStudentObjective:
    return ContrastiveStudentObjective(
        supcon_lambda=config.supcon_lambda, temperature=config.supcon_temperature, queue_size=config.moco_queue_size,
        momentum=config.moco_momentum, freq_mask_param=config.freq_mask_param, time_mask_param=config.time_mask_param,
    )


def _score(logits: np.ndarray, dataset, label_names, metric: str) -> float:
    metrics = split_metrics(logits, dataset, label_names, language_column=None, n_bootstrap=0, seed=0)
    if metric not in metrics["overall"]:
        raise ValueError(f"metric_for_best_model {metric!r} is not one of UR, WR, macro_f1, weighted_f1.")
    return float(metrics["overall"][metric])


def train_student_phase(config: MetaCurriculumConfig, student, splits: DatasetDict, label_names, stage: str,
                        *, epochs: float, distillation: Optional[DistillationSettings] = None,
                        quiz_loader=None, training_warnings: Optional[list[str]] = None,
                        ) -> tuple[Any, Optional[MetaTeacherCallback]]:
    """One Trainer run of a student phase; returns the best student by validation (and the meta-teacher callback).
    The phase's training warnings are appended to `training_warnings` (when given), prefixed with `stage`."""
    args = _stage_args(config, stage, num_train_epochs=epochs)
    trainer = MetaCurriculumStudentTrainer(
        model=student, args=args, train_dataset=splits["train"], eval_dataset=splits["validation"],
        data_collator=FeatureCollator(with_teacher_features=distillation is not None),
        eval_data_collator=FeatureCollator(), compute_metrics=make_compute_metrics(list(label_names)),
        objective=_objective(config), distillation=distillation,
    )
    callback = None
    if distillation is not None:
        meta = distillation.meta_teacher.to(args.device)
        validation = splits["validation"]
        callback = MetaTeacherCallback(
            trainer,
            meta,
            quiz_loader,
            config.meta_learning_rate,
            score=lambda m: _score(
                meta_teacher_logits(m, validation, args.device), validation, label_names, config.selection_metric
            ),
            greater_is_better=config.greater_is_better is not False,
            weight_decay=config.weight_decay,
        )
        trainer.add_callback(callback)
    trainer.train()
    trainer.save_state()
    if training_warnings is not None:
        training_warnings.extend(f"{stage} phase: {warning}" for warning in trainer.training_warnings)
    return trainer.model.eval(), callback


def score_stages(logits_of: dict, prepared, label_names: Sequence[str], *, language_column: Optional[str],
                 n_bootstrap: int, seed: int) -> tuple[dict[str, dict[str, dict]], list[str]]:
    """(stage_results[stage][split] = `split_metrics`, warnings): every stage scored on validation and test, and a
    prediction-collapse warning (the shared one) for each stage and split where it predicts half the classes or fewer,
    logged and prefixed with the stage."""
    results, warnings = {}, []
    for stage, logits_fn in logits_of.items():
        results[stage] = {}
        for split in EVAL_SPLITS:
            logits = np.asarray(logits_fn(prepared[split]))
            results[stage][split] = split_metrics(
                logits,
                prepared[split],
                label_names,
                language_column=language_column,
                n_bootstrap=n_bootstrap,
                seed=seed,
            )
            warning = prediction_collapse_warning(logits.argmax(-1), list(label_names), split,
                                                  min_share=STAGE_COLLAPSE_MIN_SHARE)
            if warning:
                warnings.append(f"{stage} stage: {warning}")
                logger.warning("%s stage: %s", stage, warning)
    return results, warnings


def fit_phases(
    config: MetaCurriculumConfig,
    model_args: ModelArguments,
    data_args: DataArguments,
    caches: PreparedCaches,
    label_names: Sequence[str],
    initial_student: Optional[InvertedTransformerForFeatureClassification] = None,
) -> MetaCurriculumResult:
    """Phases 1-4 (see the module docstring) on `prepare_caches`'s product; nothing is written but the student
    phases' Trainer folders (`output_dir/stages/<stage>`).

    `initial_student`: the student's initial weights (default: `build_feature_student` after seeding with
    `config.seed`);
    the distilled student starts from the same weights unless `distilled_student_init` is "student"."""
    if config.world_size > 1:
        raise ValueError("meta_curriculum runs on one process: launch it without several processes.")
    device = config.device
    prepared, upstream, upstream_config, teacher = (
        caches.splits,
        caches.upstream,
        caches.upstream_config,
        caches.teacher,
    )
    missing = [name for name in ("train", "quiz", "validation", "test") if name not in prepared]
    if missing:
        raise ValueError(f"The prepared splits lack {missing}; prepare_caches makes train, quiz, validation and test.")

    # 1. The student alone (eq. 2). Its initial weights are kept so that the distilled student can start from them.
    if initial_student is None:
        transformers.set_seed(config.seed)
        initial_student = build_feature_student(model_args, upstream_config, label_names)
    initial_state = copy.deepcopy(initial_student.state_dict())
    training_warnings: list[str] = []
    student, _ = train_student_phase(
        config,
        initial_student,
        prepared,
        label_names,
        "student",
        epochs=config.num_train_epochs,
        training_warnings=training_warnings,
    )

    # 2. Distillation with the meta-teacher (eq. 4 and 9).
    transformers.set_seed(config.seed)
    if config.distilled_student_init == "student":
        distilled = copy.deepcopy(student).train()
    else:
        distilled = build_feature_student(model_args, upstream_config, label_names)
        distilled.load_state_dict(initial_state)
    teacher_width = len(prepared["train"][0][TEACHER_FEATURES])
    meta_teacher = MetaTeacher(teacher, teacher_width, distilled.config.d_model)
    quiz_loader = torch.utils.data.DataLoader(
        prepared["quiz"], batch_size=config.per_device_train_batch_size, shuffle=True,
        collate_fn=FeatureCollator(with_teacher_features=True), generator=torch.Generator().manual_seed(config.seed),
    )
    distillation = DistillationSettings(meta_teacher, alpha=config.kd_alpha, beta=config.kd_beta,
                                        temperature=config.kd_temperature, soft_loss=config.soft_loss)
    distilled, callback = train_student_phase(
        config,
        distilled,
        prepared,
        label_names,
        "distilled_student",
        epochs=config.meta_epochs,
        distillation=distillation,
        quiz_loader=quiz_loader,
        training_warnings=training_warnings,
    )
    meta_teacher.load_state_dict(callback.best_state)
    meta_teacher.eval().requires_grad_(False)

    # 3. Curriculum (eq. 10-13).
    buckets = make_buckets(
        prepared["train"], config.difficulty_column, config.difficulty_levels, config.num_difficulty_buckets
    )
    logger.info("Curriculum buckets (%s, easy to hard): %s; mean teacher p(y) %s", buckets.source, buckets.sizes(),
                np.round(buckets.teacher_confidence, 3).tolist())
    steps = config.curriculum_steps_per_episode or int(
        np.ceil(len(prepared["train"]) / config.per_device_train_batch_size)
    )
    logger.info("Curriculum: %d episodes x %d S' updates = %d (%.1f epochs of the training split)",
                config.curriculum_episodes, steps, config.curriculum_episodes * steps,
                config.curriculum_episodes * steps * config.per_device_train_batch_size / len(prepared["train"]))
    validation = prepared["validation"]
    curriculum = run_curriculum(
        distilled, meta_teacher, prepared["train"], prepared["quiz"], buckets, _objective(config),
        episodes=config.curriculum_episodes, batch_size=config.per_device_train_batch_size,
        student_learning_rate=config.curriculum_learning_rate, policy_learning_rate=config.policy_learning_rate,
        gamma=config.curriculum_gamma, steps_per_episode=config.curriculum_steps_per_episode,
        reward=config.curriculum_reward, baseline=config.curriculum_baseline, exploration=config.policy_exploration,
        entropy_weight=config.policy_entropy_weight,
        consistency_gradient=config.consistency_gradient, max_grad_norm=config.max_grad_norm,
        greater_is_better=config.greater_is_better is not False, weight_decay=config.weight_decay, seed=config.seed,
        device=device, progress=not config.disable_tqdm,
        score=lambda m: _score(student_logits(m, validation, config.per_device_eval_batch_size, device), validation,
                               label_names, config.selection_metric),
    )

    # 4. The stages before S' on validation and test (S' is the exported model: the shared reports score it).
    logits_of = {
        "teacher": cached_teacher_logits,
        "student": lambda ds: student_logits(student, ds, config.per_device_eval_batch_size, device),
        "meta_teacher": lambda ds: meta_teacher_logits(meta_teacher, ds, device),
        "distilled_student": lambda ds: student_logits(distilled, ds, config.per_device_eval_batch_size, device),
    }
    stage_results, collapse = score_stages(
        logits_of,
        prepared,
        label_names,
        language_column=data_args.language_column_name,
        n_bootstrap=config.n_bootstrap,
        seed=config.seed,
    )
    training_warnings.extend(collapse)
    for split in EVAL_SPLITS:
        n = len(prepared[split])
        print("\n" + format_stage_table({stage: by_split[split] for stage, by_split in stage_results.items()},
                                        title=f"Stages before the curriculum: {split} ({n} clips); S' follows in the "
                                              "shared report", footer=False))
    model = WaveformStudentForAudioClassification.from_parts(upstream, upstream_config, curriculum.student)
    return MetaCurriculumResult(
        model=model,
        feature_extractor=caches.feature_extractor,
        student=curriculum.student,
        stage_results=stage_results,
        buckets=buckets,
        curriculum=curriculum,
        meta_teacher_history=callback.history,
        models={
            "student": student,
            "distilled_student": distilled,
            "meta_teacher": meta_teacher,
            "policy": curriculum.policy,
            "teacher": teacher.model,
        },
        training_warnings=training_warnings,
    )


def save_export(result: MetaCurriculumResult, output_dir: str) -> list[str]:
    """The exported model and its feature extractor (staged, then moved into place) and the curriculum's action
    plot (with matplotlib) in `output_dir`; returns the paths written."""
    os.makedirs(output_dir, exist_ok=True)
    staging = os.path.join(output_dir, STAGING_DIR)
    shutil.rmtree(staging, ignore_errors=True)  # left by a process that died while saving
    result.model.save_pretrained(staging)
    result.feature_extractor.save_pretrained(staging)
    written = [os.path.join(output_dir, name) for name in publish_staged(staging, output_dir)]
    from ..plots import matplotlib_available

    if result.curriculum.episodes and matplotlib_available():
        written.append(str(plot_curriculum_actions(result.curriculum.episodes, result.buckets.names,
                                                   os.path.join(output_dir, ACTIONS_PLOT))))
    elif result.curriculum.episodes:
        logger.warning('matplotlib is not installed: no %s (pip install "hf_mtkd[plots]").', ACTIONS_PLOT)
    return written


class WaveformModelPredictor:
    """The run's model as saved (frozen upstream + S', waveforms in) for the shared reports: each clip alone, as
    `pipeline()` and the feature cache see it. `training_warnings` reach the run summary (`Predictor`)."""

    def __init__(self, model: WaveformStudentForAudioClassification, feature_extractor, batch_size: int = 64,
                 training_warnings: Sequence[str] = ()):
        self.model = model.eval()
        self.feature_extractor = feature_extractor
        self.batch_size = batch_size
        self.training_warnings = list(training_warnings)

    @torch.no_grad()
    def predict_scores(self, dataset) -> np.ndarray:
        """(rows, labels) logits of S' on the `waveform` column of `dataset` (at the feature extractor's rate)."""
        fe, device = self.feature_extractor, next(self.model.parameters()).device
        scores = []
        for start in range(0, len(dataset), self.batch_size):
            for waveform in dataset[start : start + self.batch_size][WAVEFORM]:
                inputs = feature_extractor_inputs(fe, [np.asarray(waveform, dtype=np.float32)], fe.sampling_rate)
                logits = self.model(**{k: v.to(device) for k, v in inputs.items()}).logits
                scores.append(logits.float().cpu().numpy())
        if not scores:
            return np.zeros((0, self.model.config.num_labels), dtype=np.float32)
        return np.concatenate(scores)


__all__ = [
    "EVAL_SPLITS",
    "FINAL_STAGE",
    "MetaCurriculumResult",
    "WaveformModelPredictor",
    "build_feature_student",
    "fit_phases",
    "save_export",
    "score_stages",
]
