"""Phase 0 of meta-curriculum distillation: the quiz split carved from the training clips, the frozen upstream,
and the caches every later phase reads (the teacher's logits and pooled features, the upstream features), once per
split. The method's `prepare_splits` calls `prepare_caches`; `fit.fit_phases` trains on what it returns."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, Optional, Sequence

import numpy as np
import torch
from datasets import DatasetDict

from ..arguments import DataArguments, ModelArguments
from ..modeling_utils import hub_kwargs
from ..models.inverted_transformer.configuration_inverted_transformer import WaveformStudentConfig
from ..models.inverted_transformer.upstream import load_upstream, upstream_feature_extractor
from .config import MetaCurriculumConfig
from .features import add_upstream_features
from .teacher import add_teacher_logits_and_features, load_frozen_teacher

logger = logging.getLogger("hf_mtkd")


def carve_quiz_split(train, fraction: float, seed: int, strata_columns: Sequence[str] = ("labels",),
                     label_names: Optional[Sequence[str]] = None):
    """(train without the quiz clips, quiz): `fraction` of the clips of every stratum (label x language), at least
    one per stratum with two clips or more, drawn with `seed`. Every class of `train` reaches the quiz (a class whose
    strata hold one clip each gives one of them); a class with a single clip, which cannot be in both, stops the run
    with its name."""
    plain = train.with_format(None)
    columns = [c for c in strata_columns if c and c in train.column_names]
    keys = list(zip(*(plain[c] for c in columns))) if columns else [()] * len(train)
    labels = np.asarray(plain["labels"])
    name_of = (lambda y: repr(label_names[y])) if label_names is not None else (lambda y: f"label {y}")
    counts = {int(y): int(n) for y, n in zip(*np.unique(labels, return_counts=True))}
    single = [y for y, n in counts.items() if n < 2]
    if single:
        raise ValueError(
            "The quiz split needs a clip of every class and the training split one more: "
            + ", ".join(f"{name_of(y)} has {counts[y]} training clip" for y in single)
            + ". Add clips of it or leave the class out (labels)."
        )
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
    for y in sorted(set(counts) - set(labels[quiz_rows].tolist())):
        quiz_rows.append(int(rng.choice(np.flatnonzero(labels == y))))
    in_quiz = np.zeros(len(train), dtype=bool)
    in_quiz[quiz_rows] = True
    return train.select(np.flatnonzero(~in_quiz)), train.select(np.flatnonzero(in_quiz))


def load_run_upstream(config: MetaCurriculumConfig, model_args: ModelArguments, data_args: DataArguments):
    """(upstream module, its `WaveformStudentConfig`, its feature extractor) for a run: inputs cropped to the data's
    `max_duration_seconds`, features fixed to `max_frames`."""
    options = hub_kwargs(model_args)
    rate = int(upstream_feature_extractor(config, options).sampling_rate)
    return load_upstream(
        config.upstream_model_name_or_path,
        config.upstream_layer_index(),
        filterbank_kwargs=config.filterbank_kwargs(),
        max_frames=config.max_frames,
        max_input_samples=int(round(data_args.max_duration_seconds * rate)),
        hub_kwargs=options,
    )


@dataclass
class PreparedCaches:
    """Phase 0's product: train / quiz / validation / test with the cached columns, and the frozen models."""

    splits: DatasetDict
    upstream: torch.nn.Module
    upstream_config: WaveformStudentConfig
    feature_extractor: Any
    teacher: Any  # hf_mtkd.distillation.teachers.Teacher


def prepare_caches(
    config: MetaCurriculumConfig,
    model_args: ModelArguments,
    data_args: DataArguments,
    splits: DatasetDict,
    label_names: Sequence[str],
    upstream_parts: Optional[tuple] = None,
) -> PreparedCaches:
    """Load the teacher (and the upstream, unless `upstream_parts` = `load_run_upstream`'s result is given), carve
    the quiz split from train, and cache on every split the teacher's logits and pooled features and the upstream
    features."""
    device = config.device
    upstream, upstream_config, feature_extractor = upstream_parts or load_run_upstream(config, model_args, data_args)
    rate = int(feature_extractor.sampling_rate)
    teacher = load_frozen_teacher(config.teacher_model_name_or_path, list(label_names), feature_extractor,
                                  trust_remote_code=model_args.trust_remote_code)
    train, quiz = carve_quiz_split(splits["train"], config.quiz_fraction, config.seed,
                                   strata_columns=("labels", data_args.language_column_name), label_names=label_names)
    prepared = {}
    for name, dataset in (
        ("train", train),
        ("quiz", quiz),
        ("validation", splits["validation"]),
        ("test", splits["test"]),
    ):
        dataset = add_teacher_logits_and_features(
            dataset, teacher, sampling_rate=rate, device=device, batch_size=config.feature_batch_size
        )
        prepared[name] = add_upstream_features(dataset, upstream, upstream_config, feature_extractor,
                                               feature_dtype=config.feature_dtype, device=device,
                                               batch_size=config.feature_batch_size)
    logger.info("meta_curriculum splits: %s", {k: len(v) for k, v in prepared.items()})
    return PreparedCaches(DatasetDict(prepared), upstream, upstream_config, feature_extractor, teacher)
