"""Per-stage results (the paper's Tables 5-6) and the curriculum's action choices over episodes.

One source per number: `fit_phases` scores the stages before the curriculum (teacher, student alone, T', distilled
student) and the run summary keeps them as its `stage_results` extra; the final student S' is the run's model, scored
by the shared validation and test reports (`summary.results`). `stage_results_of` joins the two for the tables.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Optional

import numpy as np
import torch
from torch import nn

from ..metrics import compute_ser_metrics
from ..metrics import format_definitions, format_grid, format_percent, format_with_ci
from .features import INPUT_FEATURES, TEACHER_FEATURES, TEACHER_LOGITS

#: Stages in the paper's order, with the stage each one is compared to ("did it help?").
STAGES = ("teacher", "student", "meta_teacher", "distilled_student", "updated_student")
STAGE_TITLES = {
    "teacher": "teacher (fine-tuned)",
    "student": "student alone",
    "meta_teacher": "meta-teacher T'",
    "distilled_student": "distilled student",
    "updated_student": "updated student S' (curriculum)",
}
PREVIOUS_STAGE = {"meta_teacher": "teacher", "distilled_student": "student", "updated_student": "distilled_student"}
#: The stage the run exports and the shared reports score; `fit_phases` scores the others.
FINAL_STAGE = "updated_student"
#: The run-summary extra that holds {stage: {split: compute_ser_metrics result}} of the stages before FINAL_STAGE.
STAGE_RESULTS_KEY = "stage_results"
ACTIONS_PLOT = "curriculum_actions.png"


@torch.no_grad()
def student_logits(model: nn.Module, dataset, batch_size: int = 64, device="cpu") -> np.ndarray:
    """Logits of a feature-level student on a split's cached `input_features`, in eval mode."""
    was_training = model.training
    model.eval()
    out = []
    for start in range(0, len(dataset), batch_size):
        features = np.asarray(dataset[start : start + batch_size][INPUT_FEATURES])
        out.append(model(torch.as_tensor(features, dtype=torch.float32, device=device)).logits.float().cpu().numpy())
    model.train(was_training)
    return np.concatenate(out)


@torch.no_grad()
def meta_teacher_logits(meta_teacher: nn.Module, dataset, device="cpu") -> np.ndarray:
    """T' logits on a split's cached teacher features."""
    features = torch.as_tensor(np.asarray(dataset[TEACHER_FEATURES]), dtype=torch.float32, device=device)
    return meta_teacher.eval()(features).float().cpu().numpy()


def cached_teacher_logits(dataset) -> np.ndarray:
    return np.asarray(dataset[TEACHER_LOGITS], dtype=np.float32)


def split_metrics(logits: np.ndarray, dataset, label_names: Sequence[str], *, language_column: Optional[str],
                  n_bootstrap: int, seed: int) -> dict:
    languages = None
    if language_column and language_column in dataset.column_names:
        languages = dataset.with_format(None)[language_column]
    return compute_ser_metrics(np.argmax(logits, axis=-1), np.asarray(dataset["labels"]), list(label_names),
                               languages=languages, n_bootstrap=n_bootstrap, seed=seed)


def stage_results_of(summary: Mapping[str, Any], split: str) -> dict[str, Mapping[str, Any]]:
    """{stage: compute_ser_metrics result} on `split` for every stage of a finished run (a `RunSummary` or its
    JSON): the earlier stages from its `stage_results` extra, the final student from its shared report."""
    earlier = summary.get(STAGE_RESULTS_KEY) if hasattr(summary, "get") else None
    if not earlier:
        raise ValueError(f"The run summary has no {STAGE_RESULTS_KEY!r}: it is not a finished meta_curriculum run.")
    # In the paper's order (run_summary.json stores its keys sorted).
    order = [s for s in STAGES if s in earlier] + sorted(s for s in earlier if s not in STAGES)
    results = {stage: earlier[stage][split] for stage in order if split in earlier[stage]}
    results[FINAL_STAGE] = summary["results"][split]
    return results


def _stage_rows(results: Mapping[str, Mapping[str, Any]]) -> tuple[list[str], list[list[str]]]:
    """Header and one row per stage (paper order): n, UR [CI], WR [CI], weighted-F1, the UR change against the
    stage it builds on, and UR per language."""
    stages = [s for s in STAGES if s in results] + [s for s in results if s not in STAGES]
    level = f"{float(results[stages[0]].get('confidence', 0.95)) * 100:g}%"
    languages = sorted({lang for r in results.values() for lang in (r.get("per_language") or {})})
    header = ["stage", "n", f"UR [{level} CI]", f"WR [{level} CI]", "weighted-F1", "UR change"] + [
        f"UR {lang}" for lang in languages
    ]
    rows = []
    for stage in stages:
        overall = results[stage]["overall"]
        previous = PREVIOUS_STAGE.get(stage)
        change = "-"
        if previous in results:
            delta = overall["UR"] - results[previous]["overall"]["UR"]
            change = f"{delta * 100:+.1f} vs {STAGE_TITLES.get(previous, previous).split(' ')[0]}"
        per_language = results[stage].get("per_language") or {}
        rows.append([
            STAGE_TITLES.get(stage, stage), str(overall["n"]), format_with_ci(overall["UR"], overall.get("UR_ci")),
            format_with_ci(overall["WR"], overall.get("WR_ci")), format_percent(overall["weighted_f1"]), change,
            *[format_percent(per_language[lang]["UR"]) if lang in per_language else "-" for lang in languages],
        ])
    return header, rows


def format_stage_table(
    results: Mapping[str, Mapping[str, Any]], title: Optional[str] = None, footer: bool = True
) -> str:
    """The per-stage table as text. `results` = {stage: compute_ser_metrics result} for one split
    (`stage_results_of`)."""
    header, rows = _stage_rows(results)
    lines = [title] if title else []
    lines += format_grid([header], rows, left_columns=1)
    if footer:
        lines += format_definitions(next(iter(results.values())))
    return "\n".join(lines)


def format_stage_markdown(results: Mapping[str, Mapping[str, Any]]) -> str:
    """The per-stage table as a Markdown table (the model card's)."""
    header, rows = _stage_rows(results)
    lines = ["| " + " | ".join(header) + " |", "|---|" + "---:|" * (len(header) - 1)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def plot_curriculum_actions(
    episodes: Sequence[Mapping[str, Any]],
    bucket_names: Sequence[str],
    path: str | os.PathLike,
    title: str = "Curriculum: buckets picked per episode",
) -> Path:
    """Stacked bars: the share of each bucket among an episode's picks; line (right axis): the episode's mean
    reward."""
    from ..plots import new_figure, save_figure  # matplotlib is the optional `plots` extra

    if not episodes:
        raise ValueError("no curriculum episodes to plot.")
    counts = np.array([np.bincount(e["actions"], minlength=len(bucket_names)) for e in episodes], dtype=float)
    shares = counts / counts.sum(axis=1, keepdims=True)
    x = np.arange(len(episodes))
    figure = new_figure(max(6.0, min(12.0, 2.0 + 0.08 * len(episodes))), 4.4)
    axes = figure.add_subplot()
    bottom = np.zeros(len(episodes))
    for i, name in enumerate(bucket_names):
        axes.bar(x, shares[:, i], bottom=bottom, width=1.0, label=name)
        bottom += shares[:, i]
    axes.set_xlabel("episode")
    axes.set_ylabel("share of the episode's picks")
    axes.set_ylim(0.0, 1.0)
    reward_axes = axes.twinx()
    reward_axes.plot(x, [e["mean_reward"] for e in episodes], color="black", linewidth=1.2, label="mean reward")
    reward_axes.set_ylabel("mean reward (S' beats T')")
    reward_axes.set_ylim(0.0, 1.0)
    axes.legend(title="bucket (easy to hard)", fontsize=7, title_fontsize=8, loc="upper center",
                bbox_to_anchor=(0.5, -0.18), ncols=min(len(bucket_names), 3))
    axes.set_title(title)
    return save_figure(figure, path)


__all__ = [
    "ACTIONS_PLOT",
    "FINAL_STAGE",
    "PREVIOUS_STAGE",
    "STAGES",
    "STAGE_RESULTS_KEY",
    "STAGE_TITLES",
    "cached_teacher_logits",
    "format_stage_markdown",
    "format_stage_table",
    "meta_teacher_logits",
    "plot_curriculum_actions",
    "split_metrics",
    "stage_results_of",
    "student_logits",
]
