"""Teachers every distillation method shares: specs, loading, freezing, label alignment and fingerprints.

A `TeacherSpec` says where a teacher comes from; `load_teacher` loads it frozen (eval mode, no gradients) with
its own feature extractor and the permutation of its classes into the student's label order;
`teacher_fingerprint` hashes everything that changes its logits (the key of the teacher-output cache).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from dataclasses import dataclass
from collections.abc import Mapping, Sequence
from typing import Any, Optional

import numpy as np
import torch
from transformers import AutoFeatureExtractor, AutoModelForAudioClassification, PreTrainedModel

from ..data.audio import resample
from ..data.collator import feature_extractor_inputs
from ..modeling_utils import hash_weights, load_pretrained

logger = logging.getLogger(__name__)

_DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


@dataclass
class TeacherSpec:
    """One frozen teacher: where to load it from and the language it speaks for."""

    model: str
    language: Optional[str] = None
    feature_extractor: Optional[str] = None
    name: Optional[str] = None

    def __post_init__(self):
        if not self.model:
            raise ValueError("A teacher needs `model` (a Hub id or local path).")
        if self.name is None:
            self.name = self.language or self.model.rstrip("/").split("/")[-1]


def parse_teachers(value) -> list[TeacherSpec]:
    """Teachers from a list of {model, language, ...} mappings, `language=path` strings, or that list as JSON."""
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except json.JSONDecodeError as err:
            raise ValueError(f"teachers must be a JSON list of {{model, language}} objects, got {value!r}: "
                             f"{err}") from err
    if not isinstance(value, (list, tuple)):
        raise ValueError(f"teachers must be a list, got {type(value).__name__}.")
    specs = []
    for i, item in enumerate(value):
        if isinstance(item, TeacherSpec):
            specs.append(item)
        elif isinstance(item, dict):
            unknown = set(item) - {"model", "language", "feature_extractor", "name"}
            if unknown:
                raise ValueError(f"teachers[{i}] has unknown key(s) {sorted(unknown)}; keys are model, language, "
                                 f"feature_extractor, name.")
            if "model" not in item:
                raise ValueError(f"teachers[{i}] has no `model` key.")
            specs.append(TeacherSpec(**item))
        elif isinstance(item, str) and "=" in item:
            language, model = item.split("=", 1)
            specs.append(TeacherSpec(model=model, language=language or None))
        else:
            raise ValueError(f"teachers[{i}] must be a mapping {{model, language}} or 'language=path', got {item!r}.")
    names = [spec.name for spec in specs]
    if len(set(names)) != len(names):
        raise ValueError(f"Teacher names must be unique, got {names}; set `name` for teachers sharing a language.")
    return specs


@dataclass
class Teacher:
    """A frozen teacher with its own feature extractor and the permutation into student label order."""

    spec: TeacherSpec
    model: PreTrainedModel
    feature_extractor: Any
    label_index: torch.Tensor  # student class j is teacher class label_index[j]
    shares_student_inputs: bool

    @property
    def name(self) -> str:
        return self.spec.name


def teacher_label_index(teacher_labels: list[str], student_labels: list[str], teacher_name: str) -> torch.Tensor:
    """Indices that reorder a teacher's logits into the student's label order, matched by name."""
    missing = [label for label in student_labels if label not in teacher_labels]
    extra = [label for label in teacher_labels if label not in student_labels]
    if missing or extra:
        raise ValueError(
            f"Teacher {teacher_name!r} has labels {teacher_labels}, the student {student_labels}"
            + (f"; missing from the teacher: {missing}" if missing else "")
            + (f"; not in the student's label set: {extra}" if extra else "")
            + ". Teachers must predict exactly the student's classes (in any order)."
        )
    return torch.tensor([teacher_labels.index(label) for label in student_labels], dtype=torch.long)


def _feature_extractor_key(feature_extractor) -> dict:
    config = feature_extractor.to_dict()
    config.pop("processor_class", None)
    return config


def freeze(model: torch.nn.Module) -> torch.nn.Module:
    """Eval mode (no dropout) and no gradients: the authors' code left both on."""
    model.eval()
    model.requires_grad_(False)
    return model


def check_teacher_languages(teacher_languages: Mapping[str, Optional[str]], data_languages: Sequence[str],
                            language_column: Optional[str] = None) -> None:
    """With teacher_weighting: language, a teacher whose language is not in the training data never gets a
    sample: an error naming it (rather than a run where that teacher silently does nothing)."""
    if not data_languages:
        raise ValueError(
            f"teacher_weighting=language needs a language column in the data; --language_column_name "
            f"{language_column!r} is not a column of the training split."
        )
    unmatched = {name: language for name, language in teacher_languages.items() if language not in set(data_languages)}
    if unmatched:
        raise ValueError(
            "teacher_weighting: language routes each sample to the teacher of its language, but teacher(s) "
            + ", ".join(f"{name!r} (language {language!r})" for name, language in unmatched.items())
            + f" match no language of the training data (languages: {sorted(data_languages)})."
        )


def check_teacher_launch(environ=os.environ) -> None:
    """Refuse launch setups in which an unsharded teacher would not hold its real weights on every process."""
    from transformers.integrations import is_deepspeed_zero3_enabled

    if is_deepspeed_zero3_enabled() or environ.get("ACCELERATE_DEEPSPEED_ZERO_STAGE") == "3":
        raise ValueError(
            "DeepSpeed ZeRO-3 partitions every model from_pretrained loads, teachers included, and hf_mtkd runs "
            "teachers unsharded: use ZeRO-2 (recipes/accelerate_configs/zero2.yaml), DDP or FSDP."
        )
    flags = ("ACCELERATE_USE_FSDP", "FSDP_CPU_RAM_EFFICIENT_LOADING")
    if all(environ.get(flag, "false").lower() in ("1", "true", "yes") for flag in flags):
        raise ValueError(
            "fsdp_cpu_ram_efficient_loading: true loads weights on the first process only and lets FSDP broadcast "
            "them to the models it wraps; teachers are not wrapped, so the other processes would run teachers "
            "without weights. Set fsdp_cpu_ram_efficient_loading: false (recipes/accelerate_configs/fsdp.yaml)."
        )


def load_teacher(
    spec: TeacherSpec,
    student_labels: list[str],
    student_feature_extractor,
    dtype: str = "float32",
    trust_remote_code: bool = False,
) -> Teacher:
    check_teacher_launch()
    model, loading_info = load_pretrained(
        AutoModelForAudioClassification, spec.model, f"teacher {spec.name!r}",
        dtype=_DTYPES[dtype], trust_remote_code=trust_remote_code, output_loading_info=True,
    )
    check_teacher_weights_complete(spec, loading_info)
    fe_source = spec.feature_extractor or spec.model
    feature_extractor = load_pretrained(
        AutoFeatureExtractor,
        fe_source,
        f"feature extractor of teacher {spec.name!r}",
        trust_remote_code=trust_remote_code,
    )
    labels = [model.config.id2label[i] for i in range(model.config.num_labels)]
    index = teacher_label_index(labels, student_labels, spec.name)
    shares = _feature_extractor_key(feature_extractor) == _feature_extractor_key(student_feature_extractor)
    logger.info(
        "Teacher %s (%s, language %s, %s): %s inputs", spec.name, spec.model, spec.language, dtype,
        "shares the student's" if shares else "gets its own",
    )
    return Teacher(spec, freeze(model), feature_extractor, index, shares)


def check_teacher_weights_complete(spec: TeacherSpec, loading_info: dict) -> None:
    """A teacher whose checkpoint lacks weights (typically the classification head of a base encoder) would run
    with freshly initialised ones, which transformers only logs; the SPEC names this a defect of the authors' code."""
    missing = sorted(loading_info.get("missing_keys") or ())
    if missing:
        shown = ", ".join(missing[:10]) + (f" and {len(missing) - 10} more" if len(missing) > 10 else "")
        raise ValueError(
            f"Teacher {spec.name!r} ({spec.model}) lacks {len(missing)} weight(s) the model needs: {shown}. A teacher "
            "must be a fine-tuned audio classifier whose checkpoint holds every weight, its head included; these "
            "would "
            "be initialised at random."
        )


#: Config keys that say where a model came from, not what it computes: a teacher copied elsewhere keeps its cache.
_CONFIG_PROVENANCE_KEYS = ("_name_or_path", "_commit_hash")


def _model_config_key(model: PreTrainedModel) -> str:
    config = model.config.to_dict()
    for key in _CONFIG_PROVENANCE_KEYS:
        config.pop(key, None)
    return json.dumps(config, sort_keys=True, default=str)


def teacher_fingerprint(teacher: Teacher) -> str:
    """A hash of everything that changes a teacher's logits: weights, model config (e.g. `hidden_act`), dtype, label
    order, feature extractor."""
    digest = hashlib.sha256()
    digest.update(_model_config_key(teacher.model).encode())
    digest.update(str(teacher.model.dtype).encode())
    hash_weights(teacher.model, digest)
    digest.update(str(teacher.label_index.tolist()).encode())
    digest.update(repr(sorted(_feature_extractor_key(teacher.feature_extractor).items())).encode())
    return digest.hexdigest()


def own_feature_extractor_inputs(
    feature_extractors: Sequence[Any], waveforms: Sequence[np.ndarray], sampling_rate: int
) -> list[Optional[dict[str, torch.Tensor]]]:
    """Each teacher's inputs made by its own feature extractor from the same waveforms (at `sampling_rate`),
    resampled to the extractor's rate; None for a teacher that shares the student's inputs (its entry is None)."""
    return [
        None
        if fe is None
        else feature_extractor_inputs(
            fe, [resample(w, sampling_rate, fe.sampling_rate) for w in waveforms], fe.sampling_rate
        )
        for fe in feature_extractors
    ]


def teacher_logits_for_batch(
    teachers: list[Teacher],
    model_inputs: dict[str, torch.Tensor],
    teacher_inputs: Optional[list[Optional[dict[str, torch.Tensor]]]],
    rows: Optional[torch.Tensor] = None,
) -> torch.Tensor:
    """(N, B, K) float32 logits in student label order; no autograd.

    `rows` (B, N) bool, optional: teacher i runs only on the samples b with rows[b, i] (the samples routed to it);
    its other entries are 0 and must carry a weight of 0 in the loss."""
    outputs = []
    with torch.no_grad():
        for i, teacher in enumerate(teachers):
            inputs = model_inputs if teacher.shares_student_inputs else teacher_inputs[i]
            inputs = {k: v for k, v in inputs.items() if k != "labels"}
            batch = next(iter(inputs.values())).shape[0]
            keep = None if rows is None or bool(rows[:, i].all()) else rows[:, i]
            num_labels = len(teacher.label_index)
            if keep is not None and not bool(keep.any()):
                outputs.append(torch.zeros(batch, num_labels, device=rows.device))
                continue
            device = next(teacher.model.parameters()).device
            dtype = next(teacher.model.parameters()).dtype
            inputs = {
                k: (v.to(device=device, dtype=dtype) if v.is_floating_point() else v.to(device))
                for k, v in inputs.items()
            }
            if keep is not None:
                inputs = {k: v[keep.to(v.device)] for k, v in inputs.items()}
            logits = teacher.model(**inputs).logits.float()
            logits = logits[:, teacher.label_index.to(logits.device)]
            if keep is not None:
                full = logits.new_zeros(batch, num_labels)
                full[keep.to(logits.device)] = logits
                logits = full
            outputs.append(logits)
    return torch.stack([logits.to(outputs[0].device) for logits in outputs])
