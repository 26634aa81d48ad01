"""Plain-text tables and JSON files for ``compute_ser_metrics`` results."""

from __future__ import annotations

import json
import os
import textwrap
import uuid
from collections.abc import Mapping
from typing import Any

import numpy as np

from .ser_metrics import OVERALL, metric_definitions


__all__ = ["format_comparison_table", "format_metrics_table", "save_metrics_json"]

_FOOTER_KEYS = ("UR", "WR", "macro_f1", "weighted_f1", "CI")


def format_metrics_table(results: Mapping[str, Any], title: str | None = None) -> str:
    """One row per language, then ``overall``: n, UR [CI], WR [CI], macro-F1, weighted-F1 in %.

    A "Definitions:" footer (taken from ``results["definitions"]``) says what the columns are.
    """
    level = _level(results)
    header = ["language", "n", f"UR [{level} CI]", f"WR [{level} CI]", "macro-F1", "weighted-F1"]
    rows = [
        [
            name,
            str(block["n"]),
            _with_ci(block["UR"], block.get("UR_ci")),
            _with_ci(block["WR"], block.get("WR_ci")),
            _pct(block["macro_f1"]),
            _pct(block["weighted_f1"]),
        ]
        for name, block in _blocks(results)
    ]
    lines = [title] if title else []
    lines += _grid([header], rows, left_columns=1)
    lines += _footer(results)
    return "\n".join(lines)


def format_comparison_table(results_by_model: Mapping[str, Mapping[str, Any]]) -> str:
    """Models side by side: rows = languages + ``overall``; per model, UR [CI] and WR [CI] in %.

    ``n`` is one column when every model was scored on the same number of samples in a row
    and reads e.g. ``120/118`` (model order) when they differ. A language a model was not
    scored on shows ``-``.
    """
    if not results_by_model:
        raise ValueError("results_by_model is empty; pass {model_name: compute_ser_metrics(...)}.")
    models = list(results_by_model)
    blocks = {m: dict(_blocks(r)) for m, r in results_by_model.items()}
    languages = sorted({lang for b in blocks.values() for lang in b if lang != OVERALL})

    sub = ["language", "n"]
    groups = []
    for m in models:
        level = _level(results_by_model[m])
        groups.append((m, len(sub), 2))
        sub += [f"UR [{level} CI]", f"WR [{level} CI]"]

    rows = []
    for name in languages + [OVERALL]:
        counts = [str(blocks[m][name]["n"]) if name in blocks[m] else "-" for m in models]
        row = [name, counts[0] if len(set(counts)) == 1 else "/".join(counts)]
        for m in models:
            block = blocks[m].get(name)
            if block is None:
                row += ["-", "-"]
            else:
                row += [_with_ci(block["UR"], block.get("UR_ci")), _with_ci(block["WR"], block.get("WR_ci"))]
        rows.append(row)

    lines = _grid([sub], rows, left_columns=1, groups=groups)
    lines += _footer(results_by_model[models[0]])
    return "\n".join(lines)


def save_metrics_json(results: Mapping[str, Any], path: str | os.PathLike) -> None:
    """Write ``results`` as pretty-printed JSON with sorted keys, atomically.

    The text goes to a temporary file in the target's directory, which then replaces ``path``
    in one ``os.replace``: readers see the old file or the new one, never half of one.
    Missing parent directories are created. NaN/inf are refused (strict JSON).
    """
    path = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    text = json.dumps(results, indent=2, sort_keys=True, allow_nan=False, default=_json_default) + "\n"
    tmp = os.path.join(directory, f".{os.path.basename(path)}.{uuid.uuid4().hex}.tmp")
    try:
        # os.open honours the umask, so the result has the same permissions as a plain open().
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise


# --------------------------------------------------------------------------- internals


def _blocks(results: Mapping[str, Any]) -> list[tuple[str, Mapping[str, Any]]]:
    per_language = results.get("per_language") or {}
    return [(lang, per_language[lang]) for lang in sorted(per_language)] + [(OVERALL, results[OVERALL])]


def _level(results: Mapping[str, Any]) -> str:
    return f"{float(results.get('confidence', 0.95)) * 100:g}%"


def _pct(value: float) -> str:
    return f"{value * 100:.1f}"


def _with_ci(value: float, ci: list[float] | None) -> str:
    if ci is None:
        return _pct(value)
    return f"{_pct(value)} [{_pct(ci[0])}, {_pct(ci[1])}]"


def _grid(
    headers: list[list[str]],
    rows: list[list[str]],
    left_columns: int,
    groups: list[tuple[str, int, int]] | None = None,
) -> list[str]:
    """Aligned text rows: the first ``left_columns`` left-aligned, the rest right-aligned.

    ``groups`` are ``(label, first_column, n_columns)`` spans centred on a line above the
    headers. A rule goes under the headers and above the last row (``overall``).
    """
    sep = "  "
    widths = [max(len(r[i]) for r in headers + rows) for i in range(len(headers[-1]))]
    for label, first, count in groups or []:
        span = sum(widths[first : first + count]) + len(sep) * (count - 1)
        widths[first + count - 1] += max(0, len(label) - span)

    def fmt(row: list[str]) -> str:
        cells = [c.ljust(w) if i < left_columns else c.rjust(w) for i, (c, w) in enumerate(zip(row, widths))]
        return sep.join(cells).rstrip()

    lines = []
    if groups:
        line = ""
        for label, first, count in groups:
            start = sum(widths[:first]) + len(sep) * first
            span = sum(widths[first : first + count]) + len(sep) * (count - 1)
            line = line.ljust(start) + label.center(span)
        lines.append(line.rstrip())
    rule = "-" * (sum(widths) + len(sep) * (len(widths) - 1))
    body = [fmt(r) for r in rows]
    if len(body) > 1:
        body.insert(len(body) - 1, rule)
    return lines + [fmt(h) for h in headers] + [rule] + body


def _footer(results: Mapping[str, Any]) -> list[str]:
    definitions = results.get("definitions") or metric_definitions(
        float(results.get("confidence", 0.95)), int(results.get("n_bootstrap", 1000))
    )
    lines = ["", "Definitions (values in %):"]
    for key in _FOOTER_KEYS:
        if key in definitions:
            text = f"{key}: {definitions[key]}"
            lines += textwrap.wrap(text, 100, initial_indent="  ", subsequent_indent="    ", break_on_hyphens=False)
    return lines


def _json_default(obj: Any) -> Any:
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    raise TypeError(f"Object of type {type(obj).__name__} is not JSON serializable")
