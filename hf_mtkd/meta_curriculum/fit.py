"""The method's one entry: `fit_meta_curriculum` runs every phase on prepared splits and returns the final student
(exported as a waveform model) with the per-stage results.

Phases (SPEC section 3, MPDistil's schedule):
  0. caches: the teacher's logits and pooled features, and the upstream features, once per split; a quiz split is
     carved from the training clips;
  1. student alone: L_student (eq. 2) for `num_train_epochs`, best epoch by validation;
  2. distillation: per epoch one KD epoch of a student (eq. 4, against the current meta-teacher T'), then one T' pass
     over the quiz split (eq. 9), for `meta_epochs`; the best student and the best T' by validation are kept;
  3. curriculum: S' = a copy of the best distilled student, trained on policy-picked buckets (eq. 10-13);
  4. every stage scored on validation and test (UR/WR/F1 with bootstrap CIs, per language), the final S' exported
     with its upstream so that it takes waveforms.
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
from ..metrics import format_metrics_table, save_metrics_json
from ..modeling_utils import label_config_kwargs, load_pretrained
from ..training.evaluation import make_compute_metrics
from ..training.outputs import STAGING_DIR, publish_staged, write_json_atomic, write_text_atomic
from .config import MetaCurriculumConfig
from .contrastive import ContrastiveStudentObjective
from .curriculum import Buckets, CurriculumResult, make_buckets, run_curriculum
from .features import TEACHER_FEATURES, add_upstream_features
from .report import (
    ACTIONS_PLOT,
    STAGE_TITLES,
    cached_teacher_logits,
    format_stage_table,
    meta_teacher_logits,
    plot_curriculum_actions,
    split_metrics,
    student_logits,
)
from .student import InvertedTransformerForFeatureClassification
from .student_config import InvertedTransformerConfig, WaveformStudentConfig
from .teacher import MetaTeacher, add_teacher_outputs, load_frozen_teacher
from .trainer import DistillationSettings, FeatureCollator, MetaCurriculumStudentTrainer, MetaTeacherCallback
from .upstream import load_upstream
from .waveform_model import WaveformStudentForAudioClassification

logger = logging.getLogger("hf_mtkd")

EVAL_SPLITS = ("validation", "test")
STAGE_RESULTS_JSON = "stage_results.json"
STAGE_RESULTS_TEXT = "stage_results.txt"


@dataclass
class MetaCurriculumResult:
    """What `fit_meta_curriculum` returns. `model` (the exported waveform model) and `feature_extractor` are the
    run's product; `stage_results[stage][split]` is a `compute_ser_metrics` result for every stage."""

    model: WaveformStudentForAudioClassification
    feature_extractor: Any
    student: InvertedTransformerForFeatureClassification  # S', features in
    stage_results: dict[str, dict[str, dict]]
    buckets: Buckets
    curriculum: CurriculumResult
    meta_teacher_history: list[dict]
    splits: DatasetDict  # train / quiz / validation / test with the cached columns
    models: dict[str, Any] = field(default_factory=dict)  # student, distilled_student, meta_teacher, policy
    files: list[str] = field(default_factory=list)

    def summary_extras(self) -> dict:
        """JSON-ready numbers for the run summary: per stage and split UR/WR/F1 with CIs, the buckets and the
        curriculum's picks per episode."""
        compact = {}
        for stage, by_split in self.stage_results.items():
            compact[stage] = {}
            for split, metrics in by_split.items():
                overall = metrics["overall"]
                compact[stage][split] = {key: overall.get(key) for key in ("n", "UR", "UR_ci", "WR", "WR_ci", "macro_f1", "weighted_f1")}
                compact[stage][split]["per_language_UR"] = {
                    lang: block["UR"] for lang, block in (metrics.get("per_language") or {}).items()
                }
        return {
            "stage_results": compact,
            "curriculum": {
                # A list, in action order (easy to hard): actions_per_episode counts index into it.
                "buckets": [{"name": name, "size": int(len(idx))} for name, idx in zip(self.buckets.names, self.buckets.indices)],
                "bucket_source": self.buckets.source,
                "best_episode": self.curriculum.best_episode,
                "actions_per_episode": [np.bincount(e["actions"], minlength=len(self.buckets.names)).tolist()
                                        for e in self.curriculum.episodes],
                "mean_reward_per_episode": [e["mean_reward"] for e in self.curriculum.episodes],
            },
            "meta_teacher": self.meta_teacher_history,
            "sizes": {name: len(ds) for name, ds in self.splits.items()},
        }


def upstream_feature_extractor(config: MetaCurriculumConfig, model_args: Optional[ModelArguments] = None):
    """The feature extractor of the upstream: its `sampling_rate` is the rate the splits must be decoded at
    (the core's `probe_feature_extractor`)."""
    from .upstream import default_feature_extractor

    if config.upstream_model_name_or_path is None:
        return default_feature_extractor(WaveformStudentConfig(**config.filterbank_kwargs()))
    from transformers import AutoFeatureExtractor

    return load_pretrained(AutoFeatureExtractor, config.upstream_model_name_or_path, "feature extractor of the upstream encoder",
                           **_hub_kwargs(model_args))


def _hub_kwargs(model_args: Optional[ModelArguments]) -> dict:
    if model_args is None:
        return {}
    return {"cache_dir": model_args.cache_dir, "revision": model_args.model_revision,
            "trust_remote_code": model_args.trust_remote_code}


def carve_quiz_split(train, fraction: float, seed: int, strata_columns: Sequence[str] = ("labels",)):
    """(train without the quiz clips, quiz): `fraction` of the clips of every stratum (label x language), at least
    one per stratum with two clips or more, drawn with `seed`."""
    plain = train.with_format(None)
    columns = [c for c in strata_columns if c and c in train.column_names]
    keys = list(zip(*(plain[c] for c in columns))) if columns else [()] * len(train)
    rng = np.random.default_rng(seed)
    strata: dict[tuple, list[int]] = {}
    for row, key in enumerate(keys):
        strata.setdefault(key, []).append(row)
    quiz_rows = []
    for key in sorted(strata, key=str):
        rows = np.asarray(strata[key])
        if len(rows) < 2:
            continue
        take = min(len(rows) - 1, max(1, int(round(fraction * len(rows)))))
        quiz_rows += rng.choice(rows, size=take, replace=False).tolist()
    if not quiz_rows:
        raise ValueError(f"No quiz split can be carved from {len(train)} training clips (quiz_fraction={fraction}).")
    in_quiz = np.zeros(len(train), dtype=bool)
    in_quiz[quiz_rows] = True
    return train.select(np.flatnonzero(~in_quiz)), train.select(np.flatnonzero(in_quiz))


@dataclass
class PreparedCaches:
    """Phase 0's product: train / quiz / validation / test with the cached columns, and the frozen models."""

    splits: DatasetDict
    upstream: torch.nn.Module
    upstream_config: WaveformStudentConfig
    feature_extractor: Any
    teacher: Any  # multi_teacher.teachers.Teacher


def prepare_caches(config: MetaCurriculumConfig, model_args: ModelArguments, data_args: DataArguments,
                   splits: DatasetDict, label_names: Sequence[str]) -> PreparedCaches:
    """Load the upstream and the teacher, carve the quiz split from train, and cache on every split the teacher's
    logits and pooled features and the upstream features."""
    device = config.device
    rate = int(upstream_feature_extractor(config, model_args).sampling_rate)
    upstream, upstream_config, feature_extractor = load_upstream(
        config.upstream_model_name_or_path, config.upstream_layer_index(), filterbank_kwargs=config.filterbank_kwargs(),
        max_frames=config.max_frames, max_input_samples=int(round(data_args.max_duration_seconds * rate)),
        hub_kwargs=_hub_kwargs(model_args),
    )
    teacher = load_frozen_teacher(config.teacher_model_name_or_path, list(label_names), feature_extractor,
                                  trust_remote_code=model_args.trust_remote_code)
    train, quiz = carve_quiz_split(splits["train"], config.quiz_fraction, config.seed,
                                   strata_columns=("labels", data_args.language_column_name))
    prepared = {}
    for name, dataset in (("train", train), ("quiz", quiz), ("validation", splits["validation"]), ("test", splits["test"])):
        dataset = add_teacher_outputs(dataset, teacher, sampling_rate=rate, device=device, batch_size=config.feature_batch_size)
        prepared[name] = add_upstream_features(dataset, upstream, upstream_config, feature_extractor,
                                               feature_dtype=config.feature_dtype, device=device,
                                               batch_size=config.feature_batch_size)
    logger.info("meta_curriculum splits: %s", {k: len(v) for k, v in prepared.items()})
    return PreparedCaches(DatasetDict(prepared), upstream, upstream_config, feature_extractor, teacher)


def build_student(model_args: ModelArguments, upstream_config: WaveformStudentConfig,
                  label_names: Sequence[str]) -> InvertedTransformerForFeatureClassification:
    """A fresh student for the upstream's feature shape (model_type + config_overrides), or a saved one."""
    shape = {"num_frames": upstream_config.max_frames, "num_channels": upstream_config.feature_width,
             "num_upstream_layers": upstream_config.num_feature_layers}
    labels = label_config_kwargs(list(label_names))
    if model_args.model_name_or_path is not None:
        model = load_pretrained(InvertedTransformerForFeatureClassification, model_args.model_name_or_path,
                                "student", **_hub_kwargs(model_args))
        found = {key: getattr(model.config, key) for key in shape}
        if found != shape or [model.config.id2label[i] for i in range(model.config.num_labels)] != list(label_names):
            raise ValueError(
                f"student {model_args.model_name_or_path!r} expects {found} and labels {model.config.id2label}; the upstream "
                f"makes {shape} and the labels are {list(label_names)}."
            )
        return model
    if model_args.model_type != InvertedTransformerConfig.model_type:
        raise ValueError(
            f"meta_curriculum trains an inverted-transformer student: set model_type: {InvertedTransformerConfig.model_type} "
            f"(with config_overrides for its size) or model_name_or_path of a saved one, got model_type {model_args.model_type!r}."
        )
    overrides = dict(model_args.config_overrides or {})
    clash = sorted(set(overrides) & set(shape))
    if clash:
        raise ValueError(f"config_overrides sets {clash}, which the upstream decides ({shape}); remove them.")
    return InvertedTransformerForFeatureClassification(InvertedTransformerConfig(**overrides, **shape, **labels))


def _stage_args(config: MetaCurriculumConfig, stage: str, **changes) -> MetaCurriculumConfig:
    """The Trainer arguments of one student phase: its own folder, never pushed, checkpoints without optimizer state."""
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
                        quiz_loader=None) -> tuple[Any, Optional[MetaTeacherCallback]]:
    """One Trainer run of a student phase; returns the best student by validation (and the meta-teacher callback)."""
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
            trainer, meta, quiz_loader, config.meta_learning_rate,
            score=lambda m: _score(meta_teacher_logits(m, validation, args.device), validation, label_names, config.selection_metric),
            greater_is_better=config.greater_is_better is not False, weight_decay=config.weight_decay,
        )
        trainer.add_callback(callback)
    trainer.train()
    trainer.save_state()
    return trainer.model.eval(), callback


def fit_meta_curriculum(
    config: MetaCurriculumConfig,
    model_args: ModelArguments,
    data_args: DataArguments,
    splits: DatasetDict,
    label_names: Sequence[str],
) -> MetaCurriculumResult:
    """Run every phase and write the run's files into `config.output_dir`; see the module docstring.

    `splits`: train / validation / test as `hf_mtkd.training.run.prepare_data` returns them (a `waveform` column at
    the rate of `upstream_feature_extractor(config)`, `labels`, metadata columns). `model_args`: the student
    (model_type hf_mtkd_inverted_transformer + config_overrides, or model_name_or_path of a saved student) and the
    hub options used to load the teacher and the upstream. `data_args`: language column and clip length."""
    if config.world_size > 1:
        raise ValueError("meta_curriculum runs on one process: launch it without several processes.")
    missing = [name for name in ("train", "validation", "test") if name not in splits]
    if missing:
        raise ValueError(f"splits lacks {missing}; give train, validation and test.")
    device = config.device
    transformers.set_seed(config.seed)

    # 0. The frozen models and the caches.
    caches = prepare_caches(config, model_args, data_args, splits, label_names)
    prepared, upstream, upstream_config, teacher = caches.splits, caches.upstream, caches.upstream_config, caches.teacher
    feature_extractor = caches.feature_extractor

    # 1. The student alone (eq. 2). Its initial weights are kept so that the distilled student can start from them.
    transformers.set_seed(config.seed)
    initial = build_student(model_args, upstream_config, label_names)
    initial_state = copy.deepcopy(initial.state_dict())
    student, _ = train_student_phase(config, initial, prepared, label_names, "student", epochs=config.num_train_epochs)

    # 2. Distillation with the meta-teacher (eq. 4 and 9).
    transformers.set_seed(config.seed)
    if config.distilled_student_init == "student":
        distilled = copy.deepcopy(student).train()
    else:
        distilled = build_student(model_args, upstream_config, label_names)
        distilled.load_state_dict(initial_state)
    teacher_width = len(prepared["train"][0][TEACHER_FEATURES])
    meta_teacher = MetaTeacher(teacher, teacher_width, distilled.config.d_model)
    quiz_loader = torch.utils.data.DataLoader(
        prepared["quiz"], batch_size=config.per_device_train_batch_size, shuffle=True,
        collate_fn=FeatureCollator(with_teacher_features=True), generator=torch.Generator().manual_seed(config.seed),
    )
    distillation = DistillationSettings(meta_teacher, alpha=config.kd_alpha, beta=config.kd_beta,
                                        temperature=config.kd_temperature, soft_loss=config.soft_loss)
    distilled, callback = train_student_phase(config, distilled, prepared, label_names, "distilled_student",
                                              epochs=config.meta_epochs, distillation=distillation, quiz_loader=quiz_loader)
    meta_teacher.load_state_dict(callback.best_state)
    meta_teacher.eval().requires_grad_(False)

    # 3. Curriculum (eq. 10-13).
    buckets = make_buckets(prepared["train"], config.difficulty_column, config.difficulty_levels, config.num_difficulty_buckets)
    logger.info("Curriculum buckets (%s, easy to hard): %s", buckets.source, buckets.sizes())
    validation = prepared["validation"]
    curriculum = run_curriculum(
        distilled, meta_teacher, prepared["train"], prepared["quiz"], buckets, _objective(config),
        episodes=config.curriculum_episodes, batch_size=config.per_device_train_batch_size,
        student_learning_rate=config.curriculum_learning_rate, policy_learning_rate=config.policy_learning_rate,
        gamma=config.curriculum_gamma, steps_per_episode=config.curriculum_steps_per_episode,
        consistency_gradient=config.consistency_gradient, max_grad_norm=config.max_grad_norm,
        greater_is_better=config.greater_is_better is not False, weight_decay=config.weight_decay, seed=config.seed,
        device=device, progress=not config.disable_tqdm,
        score=lambda m: _score(student_logits(m, validation, config.per_device_eval_batch_size, device), validation,
                               label_names, config.selection_metric),
    )

    # 4. Every stage on validation and test; the export.
    logits_of = {
        "teacher": cached_teacher_logits,
        "student": lambda ds: student_logits(student, ds, config.per_device_eval_batch_size, device),
        "meta_teacher": lambda ds: meta_teacher_logits(meta_teacher, ds, device),
        "distilled_student": lambda ds: student_logits(distilled, ds, config.per_device_eval_batch_size, device),
        "updated_student": lambda ds: student_logits(curriculum.student, ds, config.per_device_eval_batch_size, device),
    }
    stage_results = {
        stage: {split: split_metrics(logits(prepared[split]), prepared[split], label_names,
                                     language_column=data_args.language_column_name,
                                     n_bootstrap=config.n_bootstrap, seed=config.seed) for split in EVAL_SPLITS}
        for stage, logits in logits_of.items()
    }
    model = WaveformStudentForAudioClassification.from_parts(upstream, upstream_config, curriculum.student)
    result = MetaCurriculumResult(
        model=model, feature_extractor=feature_extractor, student=curriculum.student, stage_results=stage_results,
        buckets=buckets, curriculum=curriculum, meta_teacher_history=callback.history, splits=prepared,
        models={"student": student, "distilled_student": distilled, "meta_teacher": meta_teacher,
                "policy": curriculum.policy, "teacher": teacher.model},
    )
    result.files = write_outputs(result, config.output_dir, list(label_names))
    return result


def write_outputs(result: MetaCurriculumResult, output_dir: str, label_names: list[str]) -> list[str]:
    """The exported model and feature extractor (staged, then moved into place), the final student's
    `{validation,test}_metrics.json`, the per-stage tables (`stage_results.{json,txt}`) and the action plot."""
    os.makedirs(output_dir, exist_ok=True)
    staging = os.path.join(output_dir, STAGING_DIR)
    shutil.rmtree(staging, ignore_errors=True)  # left by a process that died while saving
    result.model.save_pretrained(staging)
    result.feature_extractor.save_pretrained(staging)
    written = [os.path.join(output_dir, name) for name in publish_staged(staging, output_dir)]
    texts = []
    for split in EVAL_SPLITS:
        final = result.stage_results["updated_student"][split]
        path = os.path.join(output_dir, f"{split}_metrics.json")
        save_metrics_json(final, path)
        written.append(path)
        n = final["overall"]["n"]
        print(format_metrics_table(final, title=f"Meta-curriculum, final student ({STAGE_TITLES['updated_student']}): {split} ({n} clips)"))
        texts.append(format_stage_table({stage: by_split[split] for stage, by_split in result.stage_results.items()},
                                        title=f"Per-stage results: {split} ({n} clips)", footer=split == EVAL_SPLITS[-1]))
    text = "\n\n".join(texts) + "\n"
    print("\n" + text)
    for path, write in ((os.path.join(output_dir, STAGE_RESULTS_TEXT), lambda p: write_text_atomic(p, text)),
                        (os.path.join(output_dir, STAGE_RESULTS_JSON), lambda p: write_json_atomic(result.summary_extras(), p))):
        write(path)
        written.append(path)
    from ..plots import matplotlib_available

    if result.curriculum.episodes and matplotlib_available():
        written.append(str(plot_curriculum_actions(result.curriculum.episodes, result.buckets.names,
                                                   os.path.join(output_dir, ACTIONS_PLOT))))
    elif result.curriculum.episodes:
        logger.warning('matplotlib is not installed: no %s (pip install "hf_mtkd[plots]").', ACTIONS_PLOT)
    return written


__all__ = ["MetaCurriculumResult", "PreparedCaches", "build_student", "prepare_caches", "carve_quiz_split", "fit_meta_curriculum", "upstream_feature_extractor",
           "write_outputs"]
