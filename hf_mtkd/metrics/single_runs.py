"""Result files for tables of single runs (one seed, no paired test), so that README renders them too.

Some README tables size models rather than compare them: a floor, a teacher, a method's own stages, each run once.
`collect_runs({label: output_dir})` reads each finished run's `run_summary.json` and writes `runs.json` (validation
and test UR/WR with their intervals, test UR per language, the seed and thread count of each run, and where it was
collected: commit, CPU, torch) into a `results/<name>/` folder to be committed; `format_runs_markdown` is its table.
A method that reports several models from one run (meta_curriculum's stages) gives one row each through its
`result_rows` hook.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ..utils.atomic import write_json_atomic
from ..utils.provenance import machine_provenance
from .report import format_percent, format_with_ci

__all__ = ["RUNS_JSON", "collect_runs", "compact_metrics", "format_runs_markdown"]

RUNS_JSON = "runs.json"


def compact_metrics(metrics: Mapping[str, Any]) -> dict[str, Any]:
    """What a runs table shows of a `compute_ser_metrics` result: overall n, UR, WR (with intervals) and UR per
    language."""
    overall = metrics["overall"]
    return {
        "n": overall["n"],
        "UR": overall["UR"], "UR_ci": overall.get("UR_ci"),
        "WR": overall["WR"], "WR_ci": overall.get("WR_ci"),
        "per_language": {lang: {"n": block["n"], "UR": block["UR"]}
                         for lang, block in sorted((metrics.get("per_language") or {}).items())},
    }


def collect_runs(runs: Mapping[str, str | os.PathLike], results_dir: str | os.PathLike) -> Path:
    """Write `results_dir/runs.json` from the finished runs `{label: output_dir}` (in the table's order)."""
    from ..registry import get_method_class
    from ..run_summary import SUMMARY_FILE, RunSummary

    rows, seeds, threads, commits = [], {}, {}, {}
    for label, folder in runs.items():
        path = Path(folder) / SUMMARY_FILE
        if not path.is_file():
            raise FileNotFoundError(f"{label}: {path} does not exist (not a finished run).")
        summary = RunSummary.load(path)
        args_path = Path(folder) / "training_args.json"
        seeds[label] = json.loads(args_path.read_text(encoding="utf-8")).get("seed") if args_path.is_file() else None
        threads[label] = summary.torch_num_threads
        commits[label] = summary.commit
        for name, results in get_method_class(summary.method).result_rows(summary).items():
            missing = [split for split in ("validation", "test") if split not in results]
            if missing:
                raise ValueError(f"{label}: the run has no {missing} results in {path}.")
            rows.append({"model": f"{label}: {name}" if name else label, "method": summary.method,
                         **{split: compact_metrics(results[split]) for split in ("validation", "test")}})
    provenance = {**machine_provenance(), "seeds": seeds, "torch_num_threads": threads, "trained_at": commits,
                  "collected_from": {label: Path(folder).as_posix() for label, folder in runs.items()}}
    target = Path(results_dir)
    target.mkdir(parents=True, exist_ok=True)
    return write_json_atomic({"rows": rows, "provenance": provenance}, target / RUNS_JSON)


def format_runs_markdown(data: Mapping[str, Any], shown_as: str) -> str:
    """The provenance line and the table of a `runs.json`."""
    rows, provenance = data["rows"], data["provenance"]
    languages = sorted({lang for row in rows for lang in row["test"]["per_language"]})
    seeds = sorted({str(s) for s in provenance["seeds"].values()})
    threads = sorted({str(t) for t in provenance["torch_num_threads"].values()})
    commits = sorted({str(c) for c in (provenance.get("trained_at") or {}).values() if c})
    trained = ", ".join(f"`{c}`" for c in commits) or "not recorded (runs before summaries carried it)"
    line = (
        f"One run per model (seed {', '.join(seeds)}), no paired test: figures that size the models, not "
        f"verdicts. UR and WR in % with 95% bootstrap intervals over the clips. Trained at commit(s) {trained}; "
        f"collected at commit "
        f"`{provenance.get('commit')}` on {provenance.get('cpu_model')} ({provenance.get('cpu_cores')} cores), torch "
        f"{provenance.get('torch_version')}, {', '.join(threads)} intra-op thread(s), {provenance.get('date_utc')} "
        "UTC. "
        f"Rendered from `{shown_as}/` by `scripts/render_results.py`."
    )
    header = (["model", "validation UR", *(f"test {lang} UR" for lang in languages), "test UR", "test WR"])
    table = ["| " + " | ".join(header) + " |", "|---|---|" + "---|" * len(languages) + "---|---|"]
    for row in rows:
        test = row["test"]
        cells = [
            row["model"],
            format_with_ci(row["validation"]["UR"], row["validation"]["UR_ci"]),
            *(format_percent(test["per_language"][lang]["UR"]) if lang in test["per_language"] else "-"
              for lang in languages),
            format_with_ci(test["UR"], test["UR_ci"]),
            format_with_ci(test["WR"], test["WR_ci"]),
        ]
        table.append("| " + " | ".join(cells) + " |")
    return line + "\n\n" + "\n".join(table) + "\n"
