"""MTKD's chart: the mean weight each teacher received per language (its `figures` hook draws it)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Mapping

import numpy as np

from ..plots import new_figure, save_figure, set_title_within

TEACHER_WEIGHTS_FILE = "teacher_weights.png"


def plot_teacher_weights(weights: Mapping[str, Mapping[str, float]], path: str | os.PathLike,
                         title: str = "Mean teacher weight per language (training steps)") -> Path:
    """Grouped bars from the run summary's `teacher_weights_per_language` {language: {teacher: mean weight}}."""
    if not weights:
        raise ValueError("teacher weights are empty: nothing to plot.")
    languages = list(weights)
    teachers = list(dict.fromkeys(t for row in weights.values() for t in row))
    width = 0.8 / len(teachers)
    figure = new_figure(max(4.0, 1.2 + 1.1 * len(languages) * max(1, len(teachers)) / 2), 3.6)
    axes = figure.add_subplot()
    x = np.arange(len(languages))
    for i, teacher in enumerate(teachers):
        values = [weights[lang].get(teacher, 0.0) for lang in languages]
        bars = axes.bar(x + (i - (len(teachers) - 1) / 2) * width, values, width, label=teacher)
        axes.bar_label(bars, fmt="%.2f", fontsize=7)
    axes.set_xticks(x, labels=languages)
    axes.set_xlabel("language of the training samples")
    axes.set_ylabel("mean weight")
    axes.set_ylim(0.0, 1.3)  # room for the legend above bars of weight 1
    axes.legend(title="teacher", fontsize=8, loc="upper center", ncols=min(len(teachers), 5))
    set_title_within(figure, axes, title)
    return save_figure(figure, path)


__all__ = ["TEACHER_WEIGHTS_FILE", "plot_teacher_weights"]
