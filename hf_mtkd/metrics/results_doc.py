"""README result tables rendered from committed result files, never typed by hand.

A multi-stage run with `seeds` or `baseline` writes `comparison_seeds.csv` (every seed's numbers),
`paired_verdicts.json` and `provenance.json` (commit, CPU, torch, threads, seeds) into its folder. Those three files
are copied to `results/<name>/` and committed (single runs: `runs.json`, see `single_runs`);
`scripts/render_results.py` writes each one's table into README.md
between the markers `<!-- results:<name> -->` and `<!-- /results:<name> -->`, and `--check` (run by the tests)
fails when README and a result file disagree.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path

from .axes import FOLDS, SEEDS, VERDICTS_JSON, format_axis_markdown, read_axis_csv
from .single_runs import RUNS_JSON, format_runs_markdown

__all__ = ["PROVENANCE_JSON", "collect_results", "render_block", "render_readme", "stale_blocks"]

PROVENANCE_JSON = "provenance.json"


def _marker(name: str) -> tuple[str, str]:
    return f"<!-- results:{name} -->", f"<!-- /results:{name} -->"


def _axis_of(folder: Path):
    """The axis whose table `folder` holds (seeds or folds), or None."""
    return next((axis for axis in (SEEDS, FOLDS) if (folder / axis.csv).is_file()), None)


def collect_results(pipeline_dir: str | os.PathLike, results_dir: str | os.PathLike) -> list[Path]:
    """Copy a finished pipeline's result files into `results_dir` (to be committed): its table over seeds or folds,
    the provenance and, when the pipeline named a baseline, the paired verdicts."""
    source, target = Path(pipeline_dir), Path(results_dir)
    axis = _axis_of(source)
    missing = [name for name in ((axis.csv,) if axis else (SEEDS.csv + " or " + FOLDS.csv,)) + (PROVENANCE_JSON,)
               if not (source / name).exists()]
    if missing:
        raise FileNotFoundError(f"{source} lacks {missing}: run the pipeline with seeds or folds (or a baseline) "
                                "first.")
    names = [axis.csv, PROVENANCE_JSON] + ([VERDICTS_JSON] if (source / VERDICTS_JSON).is_file() else [])
    target.mkdir(parents=True, exist_ok=True)
    return [Path(shutil.copyfile(source / name, target / name)) for name in names]


def render_block(results_dir: str | os.PathLike, shown_as: str | None = None) -> str:
    """The Markdown a results folder renders to: a provenance line, then the table over seeds or folds with the
    paired verdicts, or, for a folder of single runs (`runs.json`), their table (`shown_as`: the folder as the text
    names it, e.g. `results/demo`)."""
    folder = Path(results_dir)
    shown_as = shown_as or folder.as_posix()
    if (folder / RUNS_JSON).is_file():
        return format_runs_markdown(json.loads((folder / RUNS_JSON).read_text(encoding="utf-8")), shown_as)
    axis = _axis_of(folder)
    if axis is None:
        raise FileNotFoundError(f"{folder} holds neither {SEEDS.csv} / {FOLDS.csv} (a pipeline over seeds or folds) "
                                f"nor {RUNS_JSON} (single runs): collect its result files first "
                                "(scripts/render_results.py --help).")
    rows = read_axis_csv(folder / axis.csv, axis)
    verdicts = (json.loads((folder / VERDICTS_JSON).read_text(encoding="utf-8"))
                if (folder / VERDICTS_JSON).is_file() else {})
    provenance = json.loads((folder / PROVENANCE_JSON).read_text(encoding="utf-8"))
    threads = provenance.get("torch_num_threads")
    values = ", ".join(str(v) for v in provenance.get(axis.plural) or [])
    paired = ("paired bootstrap over the same test clips, pooled over seeds" if axis is SEEDS else
              "the mean over folds of each fold's paired difference, each fold's test clips resampled within it")
    line = (
        f"Test split; {axis.plural} {values}; UR and WR as mean ± sd over {axis.plural} (%)"
        + (f"; ΔUR: {paired}" if verdicts else "")
        + f". Measured at commit `{provenance.get('commit')}` on {provenance.get('cpu_model')} "
        f"({provenance.get('cpu_cores')} cores), torch {provenance.get('torch_version')}, {threads} intra-op "
        f"thread(s), {provenance.get('date_utc')} UTC. Rendered from `{shown_as}/` by `scripts/render_results.py`."
    )
    return line + "\n\n" + format_axis_markdown(rows, verdicts.get("verdicts") or {}, verdicts.get("baseline"), axis)


def _blocks(readme: str) -> list[str]:
    return re.findall(r"<!-- results:([\w./-]+) -->", readme)


def _rendered(name: str, root: str | os.PathLike) -> str:
    return "\n" + render_block(Path(root) / "results" / name, shown_as=f"results/{name}")


def render_readme(readme: str, root: str | os.PathLike) -> str:
    """`readme` with every results block replaced by what `<root>/results/<name>/` renders to."""
    for name in _blocks(readme):
        start, end = _marker(name)
        if end not in readme:
            raise ValueError(f"README has {start} but no {end}.")
        before, rest = readme.split(start, 1)
        _, after = rest.split(end, 1)
        readme = before + start + _rendered(name, root) + end + after
    return readme


def stale_blocks(readme: str, root: str | os.PathLike) -> list[str]:
    """Names of the results blocks whose text in `readme` differs from what their result files render to."""
    stale = []
    for name in _blocks(readme):
        start, end = _marker(name)
        if readme.split(start, 1)[1].split(end, 1)[0] != _rendered(name, root):
            stale.append(name)
    return stale
