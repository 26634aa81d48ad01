"""The frozen teacher, its cached outputs, and the meta-teacher T'.

The teacher is any `AutoModelForAudioClassification` checkpoint fine-tuned on the task (the paper: HuBERT-large).
Its encoder stays frozen for the whole method, so what it says about a clip (logits, and the pooled feature
that enters its `classifier`) is computed once, clip by clip, and stored with the dataset in the shared
teacher-output cache (`hf_mtkd.distillation.cache`). T' is the paper's "clone of the fine-tuned teacher whose encoder
is frozen": the frozen
encoder is the teacher's own (its pooled features come from the cache), and T' owns a trainable copy of the
teacher's `classifier`, plus a learnable projection that brings the student's pooled features to the
teacher's width when the two differ (item 4 of the issue).
"""

from __future__ import annotations

import copy
import hashlib
import logging

import numpy as np
import torch
from datasets import Dataset, List, Value
from torch import nn
from torch.func import functional_call

from ..data.audio import resample
from ..data.collator import feature_extractor_inputs
from ..data.preprocessing import WAVEFORM
from ..distillation.cache import cache_teacher_outputs
from ..distillation.teachers import Teacher, TeacherSpec, load_teacher, teacher_fingerprint
from .features import TEACHER_FEATURES, TEACHER_LOGITS, numeric_format

logger = logging.getLogger(__name__)

def load_frozen_teacher(name_or_path: str, label_names: list[str], upstream_feature_extractor,
                        trust_remote_code: bool = False) -> Teacher:
    """The teacher in eval mode without gradients, its labels aligned to `label_names` by name."""
    teacher = load_teacher(TeacherSpec(model=name_or_path, name="teacher"), label_names, upstream_feature_extractor,
                           trust_remote_code=trust_remote_code)
    classifier_of(teacher.model)  # fail now, not after the feature cache, for a model without a findable head
    return teacher


#: Names under which audio classifiers keep their head (transformers: classifier; hf_mtkd's log-mel CNN: head).
HEAD_NAMES = ("classifier", "head", "score", "classification_head")


def classifier_of(model: nn.Module) -> nn.Module:
    """The teacher's classification head: the module its class names in `classifier_module_name`, else the first of
    `HEAD_NAMES` it has, else its only top-level submodule (the encoder, `base_model_prefix`, aside) whose last
    Linear layer gives one output per label."""
    declared = getattr(type(model), "classifier_module_name", None)
    if declared:
        head = getattr(model, declared, None)
        if isinstance(head, nn.Module):
            return head
    for name in HEAD_NAMES:
        head = getattr(model, name, None)
        if isinstance(head, nn.Module):
            return head
    num_labels = getattr(getattr(model, "config", None), "num_labels", None)
    encoder = getattr(model, "base_model_prefix", None)
    candidates = []
    for name, child in model.named_children():
        linears = [m for m in child.modules() if isinstance(m, nn.Linear)]
        if name != encoder and linears and linears[-1].out_features == num_labels:
            candidates.append(name)
    if len(candidates) == 1:
        return getattr(model, candidates[0])
    raise ValueError(
        f"The teacher ({type(model).__name__}) has no classification head the meta-teacher can clone: none of "
        f"{list(HEAD_NAMES)}, no `classifier_module_name` on its class, and {len(candidates)} top-level modules "
        f"ending in a Linear layer with {num_labels} outputs ({candidates}) among "
        f"{[n for n, _ in model.named_children()]}. "
        "Set `classifier_module_name = '<attribute>'` on the model class (the module that maps pooled "
        "(batch, width) features to the logits)."
    )


def check_teacher_head(name_or_path: str, trust_remote_code: bool = False, **hub) -> str:
    """Find the teacher's head on its architecture alone (built on the meta device: no weights read, no data touched);
    returns the head's class name. Raises `classifier_of`'s error."""
    from transformers import AutoConfig, AutoModelForAudioClassification

    config = AutoConfig.from_pretrained(name_or_path, trust_remote_code=trust_remote_code, **hub)
    with torch.device("meta"):
        model = AutoModelForAudioClassification.from_config(config, trust_remote_code=trust_remote_code)
    return type(classifier_of(model)).__name__


@torch.no_grad()
def teacher_outputs(teacher: Teacher, inputs: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    """(logits in the student's label order (B, K), pooled features entering the classifier (B, D)), float32."""
    captured = []
    handle = classifier_of(teacher.model).register_forward_pre_hook(lambda module, args: captured.append(args[0]))
    try:
        logits = teacher.model(**inputs).logits
    finally:
        handle.remove()
    if len(captured) != 1 or captured[0].dim() != 2:
        raise ValueError(
            f"The teacher's classifier ({type(teacher.model).__name__}) must be called once on pooled (batch, width) "
            f"features; got {[tuple(c.shape) for c in captured]}."
        )
    return logits.float()[:, teacher.label_index.to(logits.device)], captured[0].float()


def _clip_outputs(teacher: Teacher, waveform: np.ndarray, sampling_rate: int, device) -> tuple[np.ndarray, np.ndarray]:
    fe = teacher.feature_extractor
    waveform = resample(np.asarray(waveform, dtype=np.float32), sampling_rate, fe.sampling_rate)
    inputs = feature_extractor_inputs(fe, [waveform], fe.sampling_rate)
    dtype = next(teacher.model.parameters()).dtype
    inputs = {
        k: (v.to(device=device, dtype=dtype) if v.is_floating_point() else v.to(device)) for k, v in inputs.items()
    }
    logits, features = teacher_outputs(teacher, inputs)
    return logits[0].cpu().numpy(), features[0].cpu().numpy()


def add_teacher_logits_and_features(dataset: Dataset, teacher: Teacher, *, sampling_rate: int, device="cpu",
                                    batch_size: int = 32) -> Dataset:
    """`dataset` with `teacher_logits` (K,) and `teacher_features` (D,) float32 columns, computed clip by clip
    (what the teacher says about the clip alone) under a fingerprint of the split, the teacher's weights, label
    order and feature extractor, and the waveforms' rate."""
    key = hashlib.sha256()
    key.update(dataset._fingerprint.encode())
    key.update(teacher_fingerprint(teacher).encode())
    key.update(f"meta_curriculum teacher outputs, rate={sampling_rate}".encode())
    teacher.model.to(device)

    def batch_outputs(batch):
        outputs = [_clip_outputs(teacher, w, sampling_rate, device) for w in batch[WAVEFORM]]
        return {TEACHER_LOGITS: [o[0] for o in outputs], TEACHER_FEATURES: [o[1] for o in outputs]}

    features = dataset.features.copy()
    features[TEACHER_LOGITS] = List(Value("float32"))
    features[TEACHER_FEATURES] = List(Value("float32"))
    out = cache_teacher_outputs(dataset, batch_outputs, features=features, fingerprint=key.hexdigest()[:32],
                                batch_size=batch_size, desc="Teacher logits and pooled features")
    return numeric_format(out)


class MetaTeacher(nn.Module):
    """T': a trainable copy of the teacher's classifier on the frozen teacher's pooled features, and a projection
    from the student's pooled width to the teacher's (identity when they match)."""

    def __init__(self, teacher: Teacher, teacher_width: int, student_width: int):
        super().__init__()
        self.head = copy.deepcopy(classifier_of(teacher.model)).float().requires_grad_(True)
        self.projection = nn.Linear(student_width, teacher_width) if student_width != teacher_width else nn.Identity()
        self.register_buffer("label_index", teacher.label_index.clone())

    def forward(self, teacher_features: torch.Tensor) -> torch.Tensor:
        """T' logits in the student's label order from the teacher's pooled features: h(., T') = h(., T)."""
        return self.head(teacher_features.float())[:, self.label_index]

    def project(self, student_features: torch.Tensor, trainable: bool = True) -> torch.Tensor:
        """The student's pooled features at the teacher's width. trainable=False: the projection's weights are
        constants here (gradients reach the student, never T')."""
        return _call(self.projection, student_features.float(), trainable)

    def classify_student(self, student_features: torch.Tensor, trainable: bool = True) -> torch.Tensor:
        """T'(h(., S)): the student's pooled features through the projection and T''s head."""
        projected = self.project(student_features, trainable)
        return _call(self.head, projected, trainable)[:, self.label_index]

    def trainable_state(self) -> dict[str, torch.Tensor]:
        return {k: v.detach().clone() for k, v in self.state_dict().items()}


def _call(module: nn.Module, x: torch.Tensor, trainable: bool) -> torch.Tensor:
    if trainable:
        return module(x)
    constants = {name: p.detach() for name, p in module.named_parameters()}
    return functional_call(module, constants, (x,))


__all__ = [
    "MetaTeacher",
    "TEACHER_FEATURES",
    "TEACHER_LOGITS",
    "HEAD_NAMES",
    "add_teacher_logits_and_features",
    "check_teacher_head",
    "classifier_of",
    "load_frozen_teacher",
    "teacher_outputs",
]
