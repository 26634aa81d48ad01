"""SER metrics: UR/WR with bootstrap CIs, F1s, confusion matrices, tables and an evaluate module."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .comparison import (
    comparison_rows,
    format_comparison_markdown,
    format_comparison_table,
    read_comparison_csv,
    save_comparison,
)
from .report import (
    format_definitions,
    format_grid,
    format_metrics_table,
    format_percent,
    format_with_ci,
    save_metrics_json,
)
from .compute import compute_ser_metrics, metric_definitions


__all__ = [
    "SER_METRIC_PATH",
    "comparison_rows",
    "compute_ser_metrics",
    "format_comparison_markdown",
    "format_comparison_table",
    "format_definitions",
    "format_grid",
    "format_metrics_table",
    "format_percent",
    "format_with_ci",
    "load_ser_metric",
    "metric_definitions",
    "read_comparison_csv",
    "save_comparison",
    "save_metrics_json",
]

#: The evaluate module script, shipped as package data (setup.cfg: ``metrics/*/*.py``).
SER_METRIC_PATH = Path(__file__).resolve().parent / "ser_metric" / "ser_metric.py"


def load_ser_metric(**kwargs: Any):
    """``evaluate.load`` of the bundled ``SerMetric`` module; works offline.

    A local script path never reaches the Hub. evaluate copies the script into its modules
    cache (``$HF_MODULES_CACHE``, default ``~/.cache/huggingface/modules/evaluate_modules``)
    and imports it from there; the script imports ``hf_mtkd``, so hf_mtkd must be importable.

    Args:
        **kwargs: passed to ``evaluate.load``, e.g. ``config_name="per_language"`` (languages
            become an input of ``add_batch``), ``label_names=[...]`` (default for ``compute``),
            ``keep_in_memory=True`` or ``cache_dir=...``.
    """
    import evaluate  # deferred: importing evaluate pulls in datasets and pyarrow

    return evaluate.load(str(SER_METRIC_PATH), **kwargs)
