"""Several seeds of several models on the same test clips: mean ± sd per language and overall, and each model's
paired verdict against a baseline (`hf_mtkd.metrics.paired`). What a multi-stage run with `seeds` and `baseline`
prints and writes; README's result tables are rendered from the CSV it writes.
"""

from __future__ import annotations

import csv
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Optional

import numpy as np

from ..utils.atomic import write_json_atomic, write_text_atomic
from .compute import OVERALL
from .paired import PairedDifference, paired_ur_difference
from .report import csv_text, format_grid, format_percent, markdown_table

__all__ = ["SEEDS_CSV", "SEEDS_MARKDOWN", "VERDICTS_JSON", "SeedRuns", "format_seed_markdown", "format_seed_table",
           "paired_verdicts", "read_seed_csv", "save_seed_comparison", "seed_rows"]

SEEDS_MARKDOWN = "comparison_seeds.md"
SEEDS_CSV = "comparison_seeds.csv"
VERDICTS_JSON = "paired_verdicts.json"
SEED_CSV_COLUMNS = ("model", "seed", "language", "n", "UR", "WR", "macro_f1")


class SeedRuns(dict):
    """model -> {seed: {"results": compute_ser_metrics(...) of the test split, "predictions": {...}}}: the test
    results of every seed of every model, with its per-clip predictions (`test_predictions.json`)."""


def _languages(runs: SeedRuns) -> list[str]:
    return sorted({language for seeds in runs.values() for run in seeds.values()
                   for language in (run["results"].get("per_language") or {})})


def _values(seeds: Mapping[int, Mapping[str, Any]], language: str, key: str = "UR") -> list[float]:
    values = []
    for run in seeds.values():
        block = (
            run["results"][OVERALL]
            if language == OVERALL
            else (run["results"].get("per_language") or {}).get(language)
        )
        if block is not None and block.get(key) is not None:
            values.append(float(block[key]))
    return values


def mean_sd(values: Sequence[float]) -> str:
    """`mean ± sd` in % (sample sd, n - 1); the mean alone for one value."""
    if not values:
        return "-"
    if len(values) == 1:
        return format_percent(values[0])
    return f"{format_percent(float(np.mean(values)))} ± {float(np.std(values, ddof=1)) * 100:.1f}"


def paired_verdicts(runs: SeedRuns, baseline: str, *, n_bootstrap: int = 1000, seed: int = 0,
                    confidence: float = 0.95) -> dict[str, PairedDifference]:
    """Each model's paired UR difference to `baseline` over the seeds both have, on the same test clips."""
    if baseline not in runs:
        raise ValueError(f"baseline {baseline!r} is not among the compared models {list(runs)}.")
    base = runs[baseline]
    verdicts = {}
    for model, seeds in runs.items():
        if model == baseline:
            continue
        shared = sorted(set(seeds) & set(base))
        if not shared:
            raise ValueError(f"{model} and the baseline {baseline} share no seed ({sorted(seeds)} vs {sorted(base)}).")
        references = base[shared[0]]["predictions"]["references"]
        for s in shared:
            for name, run in ((model, seeds[s]), (baseline, base[s])):
                if run["predictions"]["references"] != references:
                    raise ValueError(f"{name} (seed {s}) was tested on other clips than {baseline} (seed "
                                     f"{shared[0]}): "
                                     "a paired comparison needs the same test clips in the same order.")
        num_labels = len(base[shared[0]]["predictions"]["label_names"])
        verdicts[model] = paired_ur_difference(
            references, [base[s]["predictions"]["predictions"] for s in shared],
            [seeds[s]["predictions"]["predictions"] for s in shared], num_labels,
            n_bootstrap=n_bootstrap, seed=seed, confidence=confidence)
    return verdicts


def _table(rows: Sequence[Mapping[str, Any]], verdicts: Mapping[str, Mapping[str, Any]], baseline: Optional[str]):
    """Header and cells from every seed's rows (`seed_rows`, or the CSV read back) and the verdicts (as dicts)."""
    models = list(dict.fromkeys(row["model"] for row in rows))
    languages = sorted({row["language"] for row in rows if row["language"] != OVERALL})

    def values(model, language, key):
        return [float(row[key]) for row in rows if row["model"] == model and row["language"] == language
                and row[key] not in (None, "")]

    header = ["model", "seeds", *[f"{language} UR" for language in languages], "overall UR", "overall WR"]
    if baseline:
        level = f"{float(next(iter(verdicts.values()))['confidence']) * 100:g}%" if verdicts else "95%"
        header += [f"ΔUR vs {baseline} [{level} CI]", "verdict"]
    cells = []
    for model in models:
        seeds = {row["seed"] for row in rows if row["model"] == model}
        row = [model, str(len(seeds)), *[mean_sd(values(model, language, "UR")) for language in languages],
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


def format_seed_table(runs: SeedRuns, verdicts: Mapping[str, PairedDifference], baseline: Optional[str]) -> str:
    """Models as rows: UR mean ± sd over seeds per language and overall, WR, and the paired verdict."""
    header, rows = _table(seed_rows(runs), _as_dicts(verdicts), baseline)
    return "\n".join(format_grid([header], rows, left_columns=1, rule_above_last=False))


def format_seed_markdown(
    rows: Sequence[Mapping[str, Any]], verdicts: Mapping[str, Any], baseline: Optional[str]
) -> str:
    """The same table as Markdown, from every seed's rows (`seed_rows` or `read_seed_csv`) and the verdicts."""
    header, cells = _table(rows, _as_dicts(verdicts), baseline)
    return markdown_table(header, cells)


def read_seed_csv(path: str | os.PathLike) -> list[dict[str, Any]]:
    """`comparison_seeds.csv` back as `seed_rows` gives it."""
    with open(path, encoding="utf-8", newline="") as handle:
        reader = csv.DictReader(handle)
        if tuple(reader.fieldnames or ()) != SEED_CSV_COLUMNS:
            raise ValueError(f"{os.fspath(path)} has columns {reader.fieldnames}; expected {list(SEED_CSV_COLUMNS)}.")
        return [{"model": row["model"], "seed": int(row["seed"]), "language": row["language"], "n": int(row["n"]),
                 **{key: float(row[key]) if row[key] != "" else None for key in ("UR", "WR", "macro_f1")}}
                for row in reader]


def seed_rows(runs: SeedRuns) -> list[dict[str, Any]]:
    """One dict per (model, seed, language or overall): every seed's numbers, `SEED_CSV_COLUMNS` as keys."""
    rows = []
    for model, seeds in runs.items():
        for seed, run in sorted(seeds.items()):
            results = run["results"]
            blocks = {**(results.get("per_language") or {}), OVERALL: results[OVERALL]}
            for language in sorted(blocks, key=lambda name: (name == OVERALL, name)):
                block = blocks[language]
                rows.append({"model": model, "seed": seed, "language": language, "n": int(block["n"]),
                             "UR": block["UR"], "WR": block["WR"], "macro_f1": block.get("macro_f1")})
    return rows


def save_seed_comparison(runs: SeedRuns, verdicts: Mapping[str, PairedDifference], baseline: Optional[str],
                         output_dir: str | os.PathLike, notes: Sequence[str] = ()) -> tuple[Path, Path]:
    """Write the seed table (Markdown, then `notes`), every seed's row (CSV) and the verdicts (JSON)."""
    out = Path(output_dir)
    markdown = format_seed_markdown(seed_rows(runs), verdicts, baseline) + "".join(f"\n{note}\n" for note in notes)
    write_json_atomic({"baseline": baseline, "verdicts": {m: v.to_dict() for m, v in verdicts.items()}},
                      out / VERDICTS_JSON)
    return (write_text_atomic(out / SEEDS_MARKDOWN, markdown),
            write_text_atomic(out / SEEDS_CSV, csv_text(SEED_CSV_COLUMNS, seed_rows(runs)), newline=""))
