"""Several seeds of several models on the same test clips: mean ± sd per language and overall, and each model's
paired verdict against a baseline (`hf_mtkd.metrics.paired`). What a multi-stage run with `seeds` and `baseline`
prints and writes; README's result tables are rendered from the CSV it writes.
"""

from __future__ import annotations

import csv
import io
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Optional

import numpy as np

from ..utils.atomic import write_json_atomic, write_text_atomic
from .compute import OVERALL
from .paired import PairedDifference, paired_ur_difference
from .report import format_grid, format_percent

__all__ = ["SEEDS_CSV", "SEEDS_MARKDOWN", "VERDICTS_JSON", "SeedRuns", "format_seed_table", "paired_verdicts",
           "save_seed_comparison", "seed_rows"]

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


def _table(runs: SeedRuns, verdicts: Mapping[str, PairedDifference], baseline: Optional[str]):
    languages = _languages(runs)
    header = ["model", "seeds", *[f"{language} UR" for language in languages], "overall UR", "overall WR"]
    if baseline:
        level = f"{next(iter(verdicts.values())).confidence * 100:g}%" if verdicts else "95%"
        header += [f"ΔUR vs {baseline} [{level} CI]", "verdict"]
    rows = []
    for model, seeds in runs.items():
        row = [model, str(len(seeds)), *[mean_sd(_values(seeds, language)) for language in languages],
               mean_sd(_values(seeds, OVERALL)), mean_sd(_values(seeds, OVERALL, "WR"))]
        if baseline:
            verdict = verdicts.get(model)
            row += (["(baseline)", ""] if model == baseline else [
                f"{verdict.difference * 100:+.1f} [{verdict.ci_low * 100:+.1f}, {verdict.ci_high * 100:+.1f}]",
                verdict.verdict])
        rows.append(row)
    return header, rows


def format_seed_table(runs: SeedRuns, verdicts: Mapping[str, PairedDifference], baseline: Optional[str]) -> str:
    """Models as rows: UR mean ± sd over seeds per language and overall, WR, and the paired verdict."""
    header, rows = _table(runs, verdicts, baseline)
    lines = format_grid([header], rows, left_columns=1, rule_above_last=False)
    return "\n".join(lines)


def format_seed_markdown(runs: SeedRuns, verdicts: Mapping[str, PairedDifference], baseline: Optional[str]) -> str:
    header, rows = _table(runs, verdicts, baseline)
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


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
    markdown = format_seed_markdown(runs, verdicts, baseline) + "".join(f"\n{note}\n" for note in notes)
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=SEED_CSV_COLUMNS, lineterminator="\n")
    writer.writeheader()
    for row in seed_rows(runs):
        writer.writerow({key: "" if value is None else (repr(value) if isinstance(value, float) else value)
                         for key, value in row.items()})
    write_json_atomic({"baseline": baseline, "verdicts": {m: v.to_dict() for m, v in verdicts.items()}},
                      out / VERDICTS_JSON)
    return (write_text_atomic(out / SEEDS_MARKDOWN, markdown),
            write_text_atomic(out / SEEDS_CSV, buffer.getvalue(), newline=""))
