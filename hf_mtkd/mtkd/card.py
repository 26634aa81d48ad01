"""What the model card says about an MTKD student beyond the shared card: its teachers and the weight each received.

The section goes after the card's training data, as a Markdown table per fact; teachers on the Hub link there, local
ones are named by folder only (the training machine's layout is nobody's business).
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

from ..distillation.teachers import TeacherSpec
from ..registry import CardSection
from ..run_summary import is_hub_id

TEACHERS_TITLE = "Teachers"


def teachers_section(specs: list[TeacherSpec], weights: Optional[dict[str, dict[str, float]]]) -> CardSection:
    """The frozen teachers (name, language, model) and, when recorded, the mean weight each teacher received on the
    training samples of each language ({language: {teacher: weight}})."""
    lines = [
        "The student learned from these frozen teachers:",
        "",
        "| teacher | language | model |",
        "|---|---|---|",
        *(f"| {spec.name} | {spec.language or 'any'} | {_shown_model(spec.model)} |" for spec in specs),
    ]
    if weights:
        teachers = list(next(iter(weights.values())))
        lines += [
            "",
            "Mean weight each teacher received on the training samples of each language:",
            "",
            f"| language | {' | '.join(teachers)} |",
            "|---|" + "---:|" * len(teachers),
            *(f"| {lang} | {' | '.join(f'{row.get(t, 0.0):.3f}' for t in teachers)} |"
              for lang, row in weights.items()),
        ]
    return CardSection(TEACHERS_TITLE, "\n".join(lines), placement="training")


def _shown_model(model: str) -> str:
    if is_hub_id(model):
        return f"[{model}](https://huggingface.co/{model})"
    return f"local checkpoint `{Path(model).name}`"
