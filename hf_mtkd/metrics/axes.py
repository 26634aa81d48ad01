"""Several runs of several models along one axis: mean ± sd per language and overall, and each model's paired
verdict against a baseline (`hf_mtkd.metrics.paired`). What a multi-stage run with `seeds` or `folds` (and
`baseline`) prints and writes; README's result tables are rendered from the CSV it writes.

Two axes: seeds (every run of a model tests the same clips; the verdict resamples those clips and applies each
resample to every seed) and folds (leave-one-group-out: each fold tests its own clips, each clip in one fold; the
verdict resamples every fold's clips within that fold and averages the folds' differences).
"""

from __future__ import annotations

import csv
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Optional

import numpy as np

from ..utils.atomic import write_json_atomic, write_text_atomic
from .compute import OVERALL
from .paired import PairedDifference, paired_ur_difference, stratified_paired_ur_difference
from .report import csv_text, format_grid, format_percent, markdown_table

__all__ = ["FOLDS", "FOLDS_CSV", "FOLDS_MARKDOWN", "SEEDS", "SEEDS_CSV", "SEEDS_MARKDOWN", "VERDICTS_JSON", "Axis",
           "AxisRuns", "axis_rows", "format_axis_markdown", "format_axis_table", "paired_verdicts", "read_axis_csv",
           "save_axis_comparison"]

VERDICTS_JSON = "paired_verdicts.json"


@dataclass(frozen=True)
class Axis:
    """What varies between the runs of one model: `name` is the CSV column and the folder prefix (`seed-0`),
    `plural` the table's count column and the file names (`comparison_seeds.csv`)."""

    name: str
    plural: str
    #: Every run of a model tests the same clips (seeds), or each run its own (folds).
    same_test_clips: bool
    #: A value as read back from the CSV.
    parse: Callable[[str], Any]

    @property
    def markdown(self) -> str:
        return f"comparison_{self.plural}.md"

    @property
    def csv(self) -> str:
        return f"comparison_{self.plural}.csv"

    @property
    def columns(self) -> tuple[str, ...]:
        return ("model", self.name, "language", "n", "UR", "WR", "macro_f1")

    def folder(self, value: Any) -> str:
        return f"{self.name}-{value}"


SEEDS = Axis("seed", "seeds", same_test_clips=True, parse=int)
FOLDS = Axis("fold", "folds", same_test_clips=False, parse=str)
SEEDS_MARKDOWN, SEEDS_CSV = SEEDS.markdown, SEEDS.csv
FOLDS_MARKDOWN, FOLDS_CSV = FOLDS.markdown, FOLDS.csv


class AxisRuns(dict):
    """model -> {seed or fold: {"results": compute_ser_metrics(...) of the test split, "predictions": {...}}}: the
    test results of every run of every model, with its per-clip predictions (`test_predictions.json`; needed for
    the verdicts only)."""


def mean_sd(values: Sequence[float]) -> str:
    """`mean ± sd` in % (sample sd, n - 1); the mean alone for one value."""
    if not values:
        return "-"
    if len(values) == 1:
        return format_percent(values[0])
    return f"{format_percent(float(np.mean(values)))} ± {float(np.std(values, ddof=1)) * 100:.1f}"


def paired_verdicts(runs: AxisRuns, baseline: str, axis: Axis = SEEDS, *, n_bootstrap: int = 1000, seed: int = 0,
                    confidence: float = 0.95) -> dict[str, PairedDifference]:
    """Each model's paired UR difference to `baseline` over the runs (seeds or folds) both have; a run of a model
    and the baseline's run of the same seed or fold must have tested the same clips (seeds: every run the same)."""
    if baseline not in runs:
        raise ValueError(f"baseline {baseline!r} is not among the compared models {list(runs)}.")
    base = runs[baseline]
    verdicts = {}
    for model, own in runs.items():
        if model == baseline:
            continue
        shared = sorted(set(own) & set(base))
        if not shared:
            raise ValueError(f"{model} and the baseline {baseline} share no {axis.name} ({sorted(own)} vs "
                             f"{sorted(base)}).")
        for value in shared:
            references = base[shared[0] if axis.same_test_clips else value]["predictions"]["references"]
            for name, run in ((model, own[value]), (baseline, base[value])):
                if run["predictions"]["references"] != references:
                    first = shared[0] if axis.same_test_clips else value
                    raise ValueError(f"{name} ({axis.name} {value}) was tested on other clips than {baseline} "
                                     f"({axis.name} {first}): "
                                     "a paired comparison needs the same test clips in the same order.")
        num_labels = len(base[shared[0]]["predictions"]["label_names"])
        if axis.same_test_clips:
            verdicts[model] = paired_ur_difference(
                base[shared[0]]["predictions"]["references"], [base[s]["predictions"]["predictions"] for s in shared],
                [own[s]["predictions"]["predictions"] for s in shared], num_labels,
                n_bootstrap=n_bootstrap, seed=seed, confidence=confidence)
        else:
            strata = [(base[f]["predictions"]["references"], [base[f]["predictions"]["predictions"]],
                       [own[f]["predictions"]["predictions"]]) for f in shared]
            verdicts[model] = stratified_paired_ur_difference(strata, num_labels, n_bootstrap=n_bootstrap,
                                                              seed=seed, confidence=confidence)
    return verdicts


def _table(rows: Sequence[Mapping[str, Any]], verdicts: Mapping[str, Mapping[str, Any]], baseline: Optional[str],
           axis: Axis):
    """Header and cells from every run's rows (`axis_rows`, or the CSV read back) and the verdicts (as dicts)."""
    models = list(dict.fromkeys(row["model"] for row in rows))
    languages = sorted({row["language"] for row in rows if row["language"] != OVERALL})

    def values(model, language, key):
        return [float(row[key]) for row in rows if row["model"] == model and row["language"] == language
                and row[key] not in (None, "")]

    header = ["model", axis.plural, *[f"{language} UR" for language in languages], "overall UR", "overall WR"]
    if baseline:
        level = f"{float(next(iter(verdicts.values()))['confidence']) * 100:g}%" if verdicts else "95%"
        header += [f"ΔUR vs {baseline} [{level} CI]", "verdict"]
    cells = []
    for model in models:
        runs = {row[axis.name] for row in rows if row["model"] == model}
        row = [model, str(len(runs)), *[mean_sd(values(model, language, "UR")) for language in languages],
               mean_sd(values(model, OVERALL, "UR")), mean_sd(values(model, OVERALL, "WR"))]
        if baseline:
            verdict = verdicts.get(model)
            if model == baseline:
                row += ["(baseline)", ""]
            elif verdict is None:
                row += ["-", ""]
            else:
                row += [f"{verdict['difference'] * 100:+.1f} [{verdict['ci_low'] * 100:+.1f}, "
                        f"{verdict['ci_high'] * 100:+.1f}]", verdict["verdict"]]
        cells.append(row)
    return header, cells


def _as_dicts(verdicts: Mapping[str, Any]) -> dict[str, Mapping[str, Any]]:
    return {model: v.to_dict() if isinstance(v, PairedDifference) else v for model, v in verdicts.items()}


def format_axis_table(runs: AxisRuns, verdicts: Mapping[str, PairedDifference], baseline: Optional[str],
                      axis: Axis = SEEDS) -> str:
    """Models as rows: UR mean ± sd over the runs per language and overall, WR, and the paired verdict."""
    header, rows = _table(axis_rows(runs, axis), _as_dicts(verdicts), baseline, axis)
    return "\n".join(format_grid([header], rows, left_columns=1, rule_above_last=False))


def format_axis_markdown(
    rows: Sequence[Mapping[str, Any]], verdicts: Mapping[str, Any], baseline: Optional[str], axis: Axis = SEEDS
) -> str:
    """The same table as Markdown, from every run's rows (`axis_rows` or `read_axis_csv`) and the verdicts."""
    header, cells = _table(rows, _as_dicts(verdicts), baseline, axis)
    return markdown_table(header, cells)


def read_axis_csv(path: str | os.PathLike, axis: Axis = SEEDS) -> list[dict[str, Any]]:
    """`comparison_seeds.csv` (or `comparison_folds.csv`) back as `axis_rows` gives it."""
    with open(path, encoding="utf-8", newline="") as handle:
        reader = csv.DictReader(handle)
        if tuple(reader.fieldnames or ()) != axis.columns:
            raise ValueError(f"{os.fspath(path)} has columns {reader.fieldnames}; expected {list(axis.columns)}.")
        return [{"model": row["model"], axis.name: axis.parse(row[axis.name]), "language": row["language"],
                 "n": int(row["n"]),
                 **{key: float(row[key]) if row[key] != "" else None for key in ("UR", "WR", "macro_f1")}}
                for row in reader]


def axis_rows(runs: AxisRuns, axis: Axis = SEEDS) -> list[dict[str, Any]]:
    """One dict per (model, seed or fold, language or overall): every run's numbers, `axis.columns` as keys."""
    rows = []
    for model, own in runs.items():
        for value, run in sorted(own.items()):
            results = run["results"]
            blocks = {**(results.get("per_language") or {}), OVERALL: results[OVERALL]}
            for language in sorted(blocks, key=lambda name: (name == OVERALL, name)):
                block = blocks[language]
                rows.append({"model": model, axis.name: value, "language": language, "n": int(block["n"]),
                             "UR": block["UR"], "WR": block["WR"], "macro_f1": block.get("macro_f1")})
    return rows


def save_axis_comparison(runs: AxisRuns, verdicts: Mapping[str, PairedDifference], baseline: Optional[str],
                         output_dir: str | os.PathLike, axis: Axis = SEEDS,
                         notes: Sequence[str] = ()) -> tuple[Path, Path]:
    """Write the table (Markdown, then `notes`), every run's row (CSV) and the verdicts (JSON)."""
    out = Path(output_dir)
    rows = axis_rows(runs, axis)
    markdown = format_axis_markdown(rows, verdicts, baseline, axis) + "".join(f"\n{note}\n" for note in notes)
    write_json_atomic({"baseline": baseline, "verdicts": {m: v.to_dict() for m, v in verdicts.items()}},
                      out / VERDICTS_JSON)
    return (write_text_atomic(out / axis.markdown, markdown),
            write_text_atomic(out / axis.csv, csv_text(axis.columns, rows), newline=""))
