"""Several models' ``compute_ser_metrics`` results side by side: a text table that fits a terminal, the same table
in Markdown (the format of the README's results tables), and every number in CSV.

One row per model: the UR of each language, then overall UR and WR with their confidence intervals. Models as
columns (the earlier layout) put two CI cells per model on every line: six models were about 250 characters
wide. The per-language CIs, WR and F1s are in the CSV (and in each model's metrics JSON).
"""

from __future__ import annotations

import csv
import os
import textwrap
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from ..utils.atomic import write_text_atomic
from .compute import OVERALL
from .report import csv_text, format_definitions, format_grid, format_percent, format_with_ci, markdown_table

__all__ = [
    "COMPARISON_CSV",
    "COMPARISON_MARKDOWN",
    "CSV_COLUMNS",
    "comparison_rows",
    "format_comparison_markdown",
    "format_comparison_table",
    "read_comparison_csv",
    "save_comparison",
]

COMPARISON_MARKDOWN = "comparison.md"
COMPARISON_CSV = "comparison.csv"
#: One CSV row per (model, language or "overall"); metric values as fractions, as in the metrics JSON.
CSV_COLUMNS = ("model", "language", "n", "UR", "UR_low", "UR_high", "WR", "WR_low", "WR_high", "macro_f1",
               "weighted_f1")
#: Terminal width the text table keeps to (wider tables are wrapped into blocks of language columns).
DEFAULT_WIDTH = 120


def _blocks(results: Mapping[str, Any]) -> dict[str, Mapping[str, Any]]:
    per_language = results.get("per_language") or {}
    return {**{language: per_language[language] for language in sorted(per_language)}, OVERALL: results[OVERALL]}


def _check(results_by_model: Mapping[str, Mapping[str, Any]]) -> dict[str, dict[str, Mapping[str, Any]]]:
    if not results_by_model:
        raise ValueError("results_by_model is empty; pass {model_name: compute_ser_metrics(...)}.")
    return {model: _blocks(results) for model, results in results_by_model.items()}


def _languages(blocks: Mapping[str, Mapping[str, Any]]) -> list[str]:
    return sorted({language for b in blocks.values() for language in b if language != OVERALL})


def _level(results: Mapping[str, Any]) -> str:
    return f"{float(results.get('confidence', 0.95)) * 100:g}%"


def _clip_counts(blocks: Mapping[str, Mapping[str, Any]], languages: Sequence[str]) -> str:
    """'Clips per language: de 81, en 112.': one count per language, or each model's where they differ."""
    parts = []
    for language in languages:
        counts = {model: b[language]["n"] for model, b in blocks.items() if language in b}
        if len(set(counts.values())) == 1:
            parts.append(f"{language} {next(iter(counts.values()))}")
        else:
            parts.append(f"{language} " + "/".join(f"{n} ({model})" for model, n in counts.items()))
    return "Clips per language: " + ", ".join(parts) + "." if parts else ""


def _cells(results_by_model, blocks, languages) -> tuple[list[str], list[list[str]]]:
    level = _level(next(iter(results_by_model.values())))
    header = ["model", "n", *[f"{language} UR" for language in languages],
              f"overall UR [{level} CI]", f"overall WR [{level} CI]"]
    rows = []
    for model, b in blocks.items():
        overall = b[OVERALL]
        rows.append([
            model, str(overall["n"]),
            *[format_percent(b[language]["UR"]) if language in b else "-" for language in languages],
            format_with_ci(overall["UR"], overall.get("UR_ci")), format_with_ci(overall["WR"], overall.get("WR_ci")),
        ])
    return header, rows


def format_comparison_table(results_by_model: Mapping[str, Mapping[str, Any]], width: int = DEFAULT_WIDTH,
                            definitions: bool = True) -> str:
    """Models as rows: n, the UR of each language, overall UR [CI] and WR [CI], in %; lines at most `width` long
    where the model names allow (more languages than fit are wrapped into further blocks, each repeating the
    model and n columns). Below: the clips per language and (`definitions`) what the columns are."""
    blocks = _check(results_by_model)
    languages = _languages(blocks)
    header, rows = _cells(results_by_model, blocks, languages)
    sep = 2
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    fixed, overall = [0, 1], [len(header) - 2, len(header) - 1]

    def fits(columns: list[int]) -> bool:
        return sum(widths[c] + sep for c in fixed + columns) - sep <= width

    # The language columns in order, as many per block as fit; overall UR and WR close the last block.
    remaining, chunks = list(range(2, len(header) - 2)), []
    while not fits(remaining + overall) and remaining:
        take = 1
        while take < len(remaining) and fits(remaining[: take + 1]):
            take += 1
        chunks.append(remaining[:take])
        remaining = remaining[take:]
    chunks.append(remaining + overall)
    lines = []
    for chunk in chunks:
        columns = fixed + chunk
        if lines:
            lines.append("")
        lines += format_grid([[header[i] for i in columns]], [[row[i] for i in columns] for row in rows],
                             left_columns=1, rule_above_last=False)
    counts = _clip_counts(blocks, languages)
    if counts:
        lines += textwrap.wrap(counts, width, subsequent_indent="  ")
    if definitions:
        lines += format_definitions(next(iter(results_by_model.values())))
    return "\n".join(lines)


def format_comparison_markdown(results_by_model: Mapping[str, Mapping[str, Any]], split: str = "test") -> str:
    """The same table as Markdown, headed as the README's results tables: `| model (test) | de UR | ... |`."""
    blocks = _check(results_by_model)
    languages = _languages(blocks)
    header, rows = _cells(results_by_model, blocks, languages)
    header = [f"model ({split})", *header[2:]]
    rows = [[row[0], *row[2:]] for row in rows]
    counts = _clip_counts(blocks, languages)
    return markdown_table(header, rows) + (f"\n{counts}\n" if counts else "")


def comparison_rows(results_by_model: Mapping[str, Mapping[str, Any]]) -> list[dict[str, Any]]:
    """One dict per (model, language), `CSV_COLUMNS` as keys; a missing CI gives None."""
    rows = []
    for model, blocks in _check(results_by_model).items():
        for language, block in blocks.items():
            ur_ci, wr_ci = block.get("UR_ci") or (None, None), block.get("WR_ci") or (None, None)
            rows.append({
                "model": model, "language": language, "n": int(block["n"]),
                "UR": block["UR"], "UR_low": ur_ci[0], "UR_high": ur_ci[1],
                "WR": block["WR"], "WR_low": wr_ci[0], "WR_high": wr_ci[1],
                "macro_f1": block.get("macro_f1"), "weighted_f1": block.get("weighted_f1"),
            })
    return rows


def save_comparison(results_by_model: Mapping[str, Mapping[str, Any]], output_dir: str | os.PathLike,
                    split: str = "test", notes: Sequence[str] = ()) -> tuple[Path, Path]:
    """Write `comparison.md` (the Markdown table, then `notes` as paragraphs) and `comparison.csv` (every number,
    floats written exactly) into `output_dir`, atomically; returns their paths."""
    markdown = format_comparison_markdown(results_by_model, split=split)
    markdown += "".join(f"\n{note}\n" for note in notes)
    out = Path(output_dir)
    return (write_text_atomic(out / COMPARISON_MARKDOWN, markdown),
            write_text_atomic(out / COMPARISON_CSV, csv_text(CSV_COLUMNS, comparison_rows(results_by_model)),
                              newline=""))


def read_comparison_csv(path: str | os.PathLike) -> list[dict[str, Any]]:
    """`comparison.csv` back as `comparison_rows` gives it (numbers as numbers, empty cells as None)."""
    with open(path, encoding="utf-8", newline="") as handle:
        reader = csv.DictReader(handle)
        if tuple(reader.fieldnames or ()) != CSV_COLUMNS:
            raise ValueError(f"{os.fspath(path)} has columns {reader.fieldnames}; expected {list(CSV_COLUMNS)}.")
        rows = []
        for row in reader:
            parsed: dict[str, Any] = {"model": row["model"], "language": row["language"], "n": int(row["n"])}
            for key in CSV_COLUMNS[3:]:
                parsed[key] = float(row[key]) if row[key] != "" else None
            rows.append(parsed)
    return rows
