"""Students: the teacher with its text encoder cut to k layers (paper: BERT-6, BERT-4, BERT-2).

Two initialisations (`student_init`): "pretrained", as the authors' code (DistilSER): the kept layers and the
embeddings are the *pretrained* text encoder's (the one the teacher started from), the fusion block and head fresh;
"teacher": the kept layers, embeddings, and by default the fusion block and head are the fine-tuned teacher's, so a
student differs from its teacher only in the text layers it lacks. The audio branch is the teacher's, frozen, either
way. Which layers are kept:

- ``bottom``: layers 1..k (the authors' code: `BertConfig(num_hidden_layers=k)` loads the bottom k);
- ``uniform``: k layers evenly spaced and ending at the top layer (12 -> 6: 2, 4, ..., 12);
- an explicit list of 1-based teacher layers, strictly increasing (e.g. ``[1, 6, 12]``).
"""

from __future__ import annotations

import json
from typing import Sequence, Union

from torch import nn

from ..models.audio_text.configuration_audio_text import AudioTextConfig
from ..models.audio_text.modeling_audio_text import AudioTextForSequenceClassification

LAYER_SELECTIONS = ("bottom", "uniform")
LayerSelection = Union[str, Sequence[int]]


def parse_layer_selection(value: LayerSelection) -> Union[str, list[int]]:
    """'bottom', 'uniform', a list of ints, or that list as JSON / comma-separated text."""
    if isinstance(value, str):
        text = value.strip()
        if text in LAYER_SELECTIONS:
            return text
        try:
            value = json.loads(text) if text.startswith("[") else [int(part) for part in text.split(",")]
        except ValueError as err:
            raise ValueError(
                f"layer_selection must be 'bottom', 'uniform' or a list of 1-based layers, got {text!r}."
            ) from err
    if isinstance(value, (list, tuple)) and all(isinstance(v, int) and not isinstance(v, bool) for v in value):
        return list(value)
    raise ValueError(f"layer_selection must be 'bottom', 'uniform' or a list of 1-based layers, got {value!r}.")


def select_text_layers(
    num_teacher_layers: int, num_layers: int | None, selection: LayerSelection = "bottom"
) -> list[int]:
    """The teacher's 1-based text layers a student keeps, in order."""
    selection = parse_layer_selection(selection)
    if isinstance(selection, list):
        if num_layers is not None and num_layers != len(selection):
            raise ValueError(f"num_text_layers={num_layers} but layer_selection lists {len(selection)} layers "
                             f"{selection}.")
        if not selection or any(b <= a for a, b in zip(selection, selection[1:])):
            raise ValueError(f"layer_selection {selection} must be non-empty and strictly increasing.")
        bad = [layer for layer in selection if not 1 <= layer <= num_teacher_layers]
        if bad:
            raise ValueError(f"layer_selection {bad} outside the teacher's layers 1..{num_teacher_layers}.")
        return selection
    if num_layers is None or not 1 <= num_layers <= num_teacher_layers:
        raise ValueError(f"num_text_layers must be in 1..{num_teacher_layers} (the teacher's text layers), got "
                         f"{num_layers}.")
    if selection == "bottom":
        return list(range(1, num_layers + 1))
    # uniform: layer round(i * L / k) for i = 1..k, so the top layer is always kept.
    return [round(i * num_teacher_layers / num_layers) for i in range(1, num_layers + 1)]


def find_layer_list(encoder: nn.Module, num_layers: int) -> str:
    """Name of the ModuleList holding an encoder's transformer layers (BERT: encoder.layer; DistilBERT:
    transformer.layer)."""
    found = [
        name
        for name, module in encoder.named_modules()
        if isinstance(module, nn.ModuleList)
        and len(module) == num_layers
        and name.split(".")[-1] in ("layer", "layers")
    ]
    if len(found) != 1:
        raise ValueError(
            f"Cannot locate the {num_layers} transformer layers of {type(encoder).__name__} "
            f"(ModuleLists named layer/layers of that length: {found}); truncation supports BERT-family encoders."
        )
    return found[0]


STUDENT_INITS = ("pretrained", "teacher")


def make_student(
    teacher: AudioTextForSequenceClassification,
    num_text_layers: int | None,
    layer_selection: LayerSelection = "bottom",
    *,
    copy_fusion: bool = True,
    init: str = "teacher",
    pretrained_text_encoder: nn.Module | None = None,
) -> AudioTextForSequenceClassification:
    """A student whose text encoder keeps `num_text_layers` of the teacher's layers (see module docstring).

    init "teacher": the kept layers and embeddings are the fine-tuned teacher's, and so are the fusion block and head
    unless `copy_fusion=False`. init "pretrained" (the authors' code, DistilSER modules.py / train_distillation.py):
    the kept layers and embeddings come from `pretrained_text_encoder` (the pretrained encoder the teacher started
    from, e.g. bert-base-uncased), the fusion block and head are freshly initialised. The audio encoder is the
    teacher's (frozen) either way.
    """
    if init not in STUDENT_INITS:
        raise ValueError(f"student_init must be one of {STUDENT_INITS}, got {init!r}.")
    if init == "pretrained" and pretrained_text_encoder is None:
        raise ValueError("student_init 'pretrained' needs the pretrained text encoder the teacher started from "
                         "(text_encoder: its hub id or path).")
    config = teacher.config
    if not config.uses_text:
        raise ValueError(f"The teacher has no text encoder (modalities={config.modalities!r}): nothing to truncate.")
    teacher_layers = int(config.text_config.num_hidden_layers)
    kept = select_text_layers(teacher_layers, num_text_layers, layer_selection)
    student_config = AudioTextConfig.from_dict(config.to_dict())
    student_config.text_config.num_hidden_layers = len(kept)
    student_config.text_layers_kept = kept
    student_config.freeze_audio_encoder = True
    student = AudioTextForSequenceClassification(student_config)

    prefix = "text_encoder." + find_layer_list(teacher.text_encoder, teacher_layers) + "."
    source = teacher.state_dict()
    if init == "pretrained":
        found = int(getattr(pretrained_text_encoder.config, "num_hidden_layers", -1))
        if found != teacher_layers:
            raise ValueError(f"The pretrained text encoder has {found} layers, the teacher's {teacher_layers}: "
                             "it is not the encoder the teacher started from.")
        find_layer_list(pretrained_text_encoder, teacher_layers)  # the same layout as the teacher's text encoder
        source = {**{k: v for k, v in source.items() if k.startswith("audio_encoder.")},
                  **{f"text_encoder.{k}": v for k, v in pretrained_text_encoder.state_dict().items()}}
        copy_fusion = False
    mapped = {}
    for key in student.state_dict():
        if not copy_fusion and not key.startswith(("text_encoder.", "audio_encoder.")):
            continue
        teacher_key = key
        if key.startswith(prefix):
            index, rest = key[len(prefix):].split(".", 1)
            teacher_key = f"{prefix}{kept[int(index)] - 1}.{rest}"
        if teacher_key not in source:
            raise ValueError(f"Student weight {key!r} has no teacher weight {teacher_key!r} to start from.")
        mapped[key] = source[teacher_key]
    missing, unexpected = student.load_state_dict(mapped, strict=False)
    if unexpected or (copy_fusion and missing):
        raise ValueError(f"Student initialisation failed: missing {missing[:5]}, unexpected {unexpected[:5]}.")
    student.set_encoders_trainable(text=True, audio=False)
    return student


__all__ = [
    "LAYER_SELECTIONS",
    "STUDENT_INITS",
    "find_layer_list",
    "make_student",
    "parse_layer_selection",
    "select_text_layers",
]
