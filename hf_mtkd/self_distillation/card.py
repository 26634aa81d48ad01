"""What the model card says about a self-distillation run beyond the shared card: every head's results, and for an
exported exit, which exit it is. An exported exit gets a run summary of its own (`exit_summary`), so its folder
is pushed and carded like any run."""

from __future__ import annotations

import dataclasses
from typing import Optional

from ..metrics.report import format_with_ci
from ..registry import CardSection

HEADS_TITLE = "Every head"
EXIT_TITLE = "Which exit this is"


def layer_of(head: str) -> Optional[int]:
    """The transformer layer of a head named "layer_<a>" (its export folder has that name too)."""
    prefix, _, number = head.rpartition("_")
    return int(number) if prefix == "layer" and number.isdigit() else None


def heads_section(exits: dict[str, dict]) -> CardSection:
    """Every head on the test split ({head: {metrics, num_parameters, latency_s}}): layer exits in depth order,
    then the others (deepest, fusion)."""

    def order(name):
        layer = layer_of(name)
        return (0, layer, name) if layer is not None else (1, 0, name)

    lines = [
        "Every head of the self-distillation model on the test split (overall, in %; parameters in millions, latency "
        "in ms per clip as measured after training; \"fusion\" picks, per clip, the exit with the largest top-1 minus "
        "top-2 margin):",
        "",
        "| head | parameters (M) | latency (ms) | UR | WR |",
        "|---|---:|---:|---|---|",
    ]
    for name in sorted(exits, key=order):
        head = exits[name] or {}
        overall = (head.get("metrics") or {}).get("overall") or {}
        params, latency = head.get("num_parameters"), head.get("latency_s")
        lines.append(
            f"| {name} | {'-' if params is None else f'{params / 1e6:.2f}'} | "
            f"{'-' if latency is None else f'{latency * 1e3:.1f}'} | "
            f"{format_with_ci(overall.get('UR'), overall.get('UR_ci'))} | "
            f"{format_with_ci(overall.get('WR'), overall.get('WR_ci'))} |"
        )
    return CardSection(HEADS_TITLE, "\n".join(lines), placement="results")


def exit_summary(summary, head: str):
    """The run summary of the exit `head` ("layer_<a>") exported as a model of its own: the exit's validation and
    test results, the run's data and warnings, and a section that says which exit it is."""
    layer = layer_of(head)
    results = {
        split: metrics
        for split, metrics in (
            ("validation", ((summary.get("validation_exits") or {}).get(head) or {}).get("metrics")),
            ("test", ((summary.get("exits") or {}).get(head) or {}).get("metrics")),
        )
        if metrics
    }
    note = (
        f"This model is the exit after transformer layer {layer} of a self-distillation model, exported as a model "
        f"of its own: it computes only the first {layer} transformer layers. The results below are this exit's."
    )
    return dataclasses.replace(summary, results=results, extras={}, card_sections=[CardSection(EXIT_TITLE, note)])
