"""Pictures next to the metrics: a confusion matrix per language (charts of one method are its `figures` hook).

matplotlib is an optional dependency (`pip install "hf_mtkd[plots]"`), imported when a picture is
drawn. Figures are drawn on an Agg canvas of their own: no pyplot, no change to the global backend.
"""

from __future__ import annotations

import importlib
import logging
import os
import re
from pathlib import Path
from typing import Mapping, Optional, Sequence

import numpy as np

from .utils.atomic import atomic_path

logger = logging.getLogger(__name__)

def matplotlib_available() -> bool:
    try:
        importlib.import_module("matplotlib")
    except ImportError:
        return False
    return True


def new_figure(width: float, height: float):
    """A constrained-layout figure on an Agg canvas of its own (no pyplot); needs the `plots` extra."""
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError as err:
        raise ImportError('Plots need matplotlib: pip install "hf_mtkd[plots]" (or pip install matplotlib).') from err
    figure = Figure(figsize=(width, height), dpi=100, layout="constrained")
    FigureCanvasAgg(figure)
    return figure


def save_figure(figure, path: str | os.PathLike) -> Path:
    """Write `figure` to `path` atomically, in the format its suffix names (png by default)."""
    path = Path(path)
    with atomic_path(path) as tmp:
        figure.savefig(tmp, format=path.suffix.lstrip(".") or "png")
    return path


def confusion_matrix_filename(block: str, prefix: str = "test") -> str:
    """`<prefix>_confusion_matrix_<block>.png`, with the block name (a language or 'overall') made file-safe."""
    safe = re.sub(r"[^A-Za-z0-9_.-]+", "_", block).strip("._") or "unnamed"
    return f"{prefix}_confusion_matrix_{safe}.png"


def plot_confusion_matrix(matrix: Sequence[Sequence[int]], label_names: Sequence[str], path: str | os.PathLike,
                          title: Optional[str] = None) -> Path:
    """Rows = reference class, columns = predicted class. Colour and first line: share of the row (recall on the
    diagonal); second line: count. Rows with no reference sample are left blank."""
    counts = np.asarray(matrix, dtype=float)
    k = len(label_names)
    if counts.shape != (k, k):
        raise ValueError(f"confusion matrix of shape {counts.shape} does not match {k} labels {list(label_names)}.")
    totals = counts.sum(axis=1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        shares = np.where(totals > 0, counts / totals, np.nan)
    size = 1.2 + 0.75 * k
    figure = new_figure(size + 1.0, size)
    axes = figure.add_subplot()
    image = axes.imshow(np.nan_to_num(shares), cmap="Blues", vmin=0.0, vmax=1.0)
    figure.colorbar(image, ax=axes, fraction=0.046, pad=0.04, label="share of the true class")
    for i in range(k):
        for j in range(k):
            if totals[i, 0] == 0:
                continue
            dark = shares[i, j] > 0.6
            axes.text(j, i, f"{100 * shares[i, j]:.0f}%\n{int(counts[i, j])}", ha="center", va="center",
                      fontsize=8, color="white" if dark else "black")
    axes.set_xticks(range(k), labels=list(label_names), rotation=45, ha="right")
    axes.set_yticks(range(k), labels=list(label_names))
    axes.set_xlabel("predicted")
    axes.set_ylabel("true")
    if title:
        axes.set_title(title)
    return save_figure(figure, path)


def plot_confusion_matrices(metrics: Mapping, output_dir: str | os.PathLike, prefix: str = "test") -> dict[str, Path]:
    """One PNG per language and one for 'overall' from a `compute_ser_metrics` result; returns {block: path}."""
    label_names = metrics.get("label_names")
    if not label_names:
        raise ValueError("metrics has no label_names; pass a compute_ser_metrics result.")
    blocks = dict(sorted((metrics.get("per_language") or {}).items()))
    if metrics.get("overall"):
        blocks["overall"] = metrics["overall"]
    paths = {}
    for name, block in blocks.items():
        title = f"{prefix}: {name} (n={block.get('n', int(np.sum(block['confusion_matrix'])))})"
        paths[name] = plot_confusion_matrix(block["confusion_matrix"], label_names,
                                            Path(output_dir) / confusion_matrix_filename(name, prefix), title=title)
    return paths


def set_title_within(figure, axes, title: str) -> None:
    """Set `title`, wrapped onto more lines until it fits the figure's width (constrained layout makes room for
    a taller title, not a wider one: a long title on a narrow chart was cut off at the right edge)."""
    import textwrap

    renderer = figure.canvas.get_renderer()
    for width in range(len(title), 9, -4):
        text = axes.set_title(textwrap.fill(title, width))
        figure.draw_without_rendering()  # the constrained layout places the axes, and so the title
        extent = text.get_window_extent(renderer)
        if extent.x0 >= 0 and extent.x1 <= figure.bbox.x1:
            return


def plot_summary(summary, output_dir: str | os.PathLike, splits: Sequence[str] = ("test",), *,
                 skip_without_matplotlib: bool = False) -> list[Path]:
    """The pictures every run gets, from its `RunSummary` in memory: a confusion matrix per language (and overall)
    of each split in `splits`. Returns the files written. With `skip_without_matplotlib`, a missing matplotlib logs
    a warning and draws nothing."""
    if skip_without_matplotlib and not matplotlib_available():
        logger.warning('matplotlib is not installed: no plots (pip install "hf_mtkd[plots]").')
        return []
    results = dict(summary.results)
    written: list[Path] = []
    for split in splits:
        if results.get(split):
            written += plot_confusion_matrices(results[split], Path(output_dir), prefix=split).values()
    return written
