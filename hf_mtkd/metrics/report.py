"""Plain-text tables and JSON files for ``compute_ser_metrics`` results."""

from __future__ import annotations

import csv
import io
import os
import textwrap
from collections.abc import Mapping, Sequence
from typing import Any

from ..utils.atomic import write_json_atomic
from .compute import OVERALL, metric_definitions


__all__ = [
    "format_definitions",
    "format_grid",
    "format_metrics_table",
    "format_percent",
    "format_with_ci",
    "save_metrics_json",
]

_FOOTER_KEYS = ("UR", "WR", "macro_f1", "weighted_f1", "CI")


def format_metrics_table(results: Mapping[str, Any], title: str | None = None) -> str:
    """One row per language, then ``overall``: n, UR [CI], WR [CI], macro-F1, weighted-F1 in %.

    A "Definitions:" footer (taken from ``results["definitions"]``) says what the columns are.
    """
    level = _level(results)
    header = ["language", "n", f"UR [{level} CI]", f"WR [{level} CI]", "macro-F1", "weighted-F1"]
    rows = [
        [
            name,
            str(block["n"]),
            format_with_ci(block["UR"], block.get("UR_ci")),
            format_with_ci(block["WR"], block.get("WR_ci")),
            format_percent(block["macro_f1"]),
            format_percent(block["weighted_f1"]),
        ]
        for name, block in _blocks(results)
    ]
    lines = [title] if title else []
    lines += format_grid([header], rows, left_columns=1)
    lines += format_definitions(results)
    return "\n".join(lines)


def save_metrics_json(results: Mapping[str, Any], path: str | os.PathLike) -> None:
    """Write ``results`` as pretty-printed JSON with sorted keys, atomically (readers see the old file or
    the new one, never half of one). Missing parent directories are created. NaN/inf are refused (strict JSON).
    """
    write_json_atomic(results, path, allow_nan=False)


def csv_text(columns: Sequence[str], rows: Sequence[Mapping[str, Any]]) -> str:
    """`rows` (dicts keyed by `columns`) as CSV text: floats written exactly (repr), None as an empty cell."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(columns), lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({key: "" if value is None else (repr(value) if isinstance(value, float) else value)
                         for key, value in row.items()})
    return buffer.getvalue()


def markdown_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """A Markdown table (`|` inside a cell escaped), ending with a newline."""
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(cell.replace("|", "\\|") for cell in row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def format_percent(value: float | None) -> str:
    """A fraction as a percentage with one decimal ("-" for a missing value): the format of every table and card."""
    return "-" if value is None else f"{value * 100:.1f}"


def format_with_ci(value: float | None, ci: Sequence[float] | None) -> str:
    """``value [low, high]`` in %, or the value alone when there is no interval."""
    if not ci:
        return format_percent(value)
    return f"{format_percent(value)} [{format_percent(ci[0])}, {format_percent(ci[1])}]"


def format_grid(
    headers: list[list[str]],
    rows: list[list[str]],
    left_columns: int,
    groups: list[tuple[str, int, int]] | None = None,
    rule_above_last: bool = True,
) -> list[str]:
    """Aligned text rows (the layout of every table here): the first ``left_columns`` left-aligned, the rest
    right-aligned.

    ``groups`` are ``(label, first_column, n_columns)`` spans centred on a line above the
    headers. A rule goes under the headers and (``rule_above_last``) above the last row (``overall``).
    """
    sep = "  "
    widths = [max(len(r[i]) for r in headers + rows) for i in range(len(headers[-1]))]
    for label, first, count in groups or []:
        span = sum(widths[first : first + count]) + len(sep) * (count - 1)
        widths[first + count - 1] += max(0, len(label) - span)

    def fmt(row: list[str]) -> str:
        cells = [c.ljust(w) if i < left_columns else c.rjust(w) for i, (c, w) in enumerate(zip(row, widths))]
        return sep.join(cells).rstrip()

    lines = []
    if groups:
        line = ""
        for label, first, count in groups:
            start = sum(widths[:first]) + len(sep) * first
            span = sum(widths[first : first + count]) + len(sep) * (count - 1)
            line = line.ljust(start) + label.center(span)
        lines.append(line.rstrip())
    rule = "-" * (sum(widths) + len(sep) * (len(widths) - 1))
    body = [fmt(r) for r in rows]
    if len(body) > 1 and rule_above_last:
        body.insert(len(body) - 1, rule)
    return lines + [fmt(h) for h in headers] + [rule] + body


def format_definitions(results: Mapping[str, Any]) -> list[str]:
    """The "Definitions (values in %):" footer lines of a ``compute_ser_metrics`` result (its own definitions, or
    the standard ones at its confidence level and bootstrap count)."""
    definitions = results.get("definitions") or metric_definitions(
        float(results.get("confidence", 0.95)), int(results.get("n_bootstrap", 1000))
    )
    lines = ["", "Definitions (values in %):"]
    for key in _FOOTER_KEYS:
        if key in definitions:
            text = f"{key}: {definitions[key]}"
            lines += textwrap.wrap(text, 100, initial_indent="  ", subsequent_indent="    ", break_on_hyphens=False)
    return lines


# --------------------------------------------------------------------------- internals


def _blocks(results: Mapping[str, Any]) -> list[tuple[str, Mapping[str, Any]]]:
    per_language = results.get("per_language") or {}
    return [(lang, per_language[lang]) for lang in sorted(per_language)] + [(OVERALL, results[OVERALL])]


def _level(results: Mapping[str, Any]) -> str:
    return f"{float(results.get('confidence', 0.95)) * 100:g}%"
