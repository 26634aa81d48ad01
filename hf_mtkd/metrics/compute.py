"""Speech-emotion-recognition metrics: UR, WR, F1, confusion matrix and bootstrap CIs.

Pure numpy. Papers name the two headline numbers inconsistently (UA / UR / balanced
accuracy for the class-averaged recall; WA / WR / accuracy for the sample-averaged one), so
every result carries a ``definitions`` block that says in words what was computed.
"""

from __future__ import annotations

import zlib
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np


__all__ = ["compute_ser_metrics", "metric_definitions"]

OVERALL = "overall"


def metric_definitions(confidence: float = 0.95, n_bootstrap: int = 1000) -> dict[str, str]:
    """The words that go with every result; the one place these definitions are written."""
    level = f"{confidence * 100:g}%"
    return {
        "UR": (
            "unweighted recall = UA = macro-averaged recall = balanced accuracy: the mean of the "
            "per-class recalls over the classes present in the references of the block (overall "
            "or one language); classes absent from those references are left out."
        ),
        "WR": (
            "weighted recall = WA = accuracy: correct predictions / samples (per-class recalls weighted "
            "by class frequency)."
        ),
        "macro_f1": (
            "mean of per-class F1 = 2TP / (2TP + FP + FN) over the classes present in the block's "
            "references or predictions (scikit-learn average='macro')."
        ),
        "weighted_f1": "per-class F1 weighted by reference counts per class (scikit-learn average='weighted').",
        "per_class_recall": "TP / reference count of each class; null where the class is absent from the references.",
        "confusion_matrix": (
            "counts; rows = reference (true) class, columns = predicted class, both in label_names order."
        ),
        "CI": (
            f"UR_ci, WR_ci: {level} percentile bootstrap: the block's samples resampled with replacement "
            f"{n_bootstrap} times (seeded), UR and WR recomputed on each resample (UR over the classes "
            f"present in it); the {(1 - confidence) / 2 * 100:g}th and {(1 + confidence) / 2 * 100:g}th percentiles."
        ),
        "per_language": "each language's block uses that language's samples only; 'overall' uses all samples.",
    }


def compute_ser_metrics(
    predictions: Sequence[int] | Sequence[str],
    references: Sequence[int] | Sequence[str],
    label_names: Sequence[str] | Mapping[int, str],
    languages: Sequence[str] | None = None,
    *,
    n_bootstrap: int = 1000,
    confidence: float = 0.95,
    seed: int | None = 0,
) -> dict[str, Any]:
    """Compute SER metrics overall and, when ``languages`` is given, per language.

    Args:
        predictions: predicted class ids (indexes into ``label_names``) or label names.
        references: reference class ids or label names.
        label_names: the class names in id order, or an ``id2label`` mapping with ids 0..K-1.
        languages: one language per sample; adds a ``per_language`` block.
        n_bootstrap: bootstrap resamples for ``UR_ci``/``WR_ci``; 0 disables them (``None``).
        confidence: coverage of the percentile intervals, in (0, 1).
        seed: seeds the bootstrap. Each block draws from its own stream derived from ``seed``
            and the block's name, so a language's interval does not depend on which other
            languages are present, and the overall interval does not depend on ``languages``.

    Returns:
        A JSON-serialisable dict with keys ``overall``, ``per_language`` (only with
        ``languages``), ``definitions``, ``label_names``, ``n_bootstrap``, ``confidence`` and
        ``seed``. Each block holds ``n``, ``UR``, ``WR``, ``macro_f1``, ``weighted_f1``,
        ``per_class_recall``, ``confusion_matrix``, ``UR_ci`` and ``WR_ci``; ``metric_definitions``
        (also stored under ``definitions``) says what each one is.
    """
    names = _label_names(label_names)
    if isinstance(n_bootstrap, bool) or not isinstance(n_bootstrap, (int, np.integer)) or n_bootstrap < 0:
        raise ValueError(f"n_bootstrap must be an integer >= 0, got {n_bootstrap!r}.")
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be in (0, 1), got {confidence!r}.")

    y_pred = _to_ids(predictions, names, "predictions")
    y_true = _to_ids(references, names, "references")
    if len(y_pred) != len(y_true):
        raise ValueError(f"predictions ({len(y_pred)}) and references ({len(y_true)}) differ in length.")
    if len(y_true) == 0:
        raise ValueError("predictions and references are empty; nothing to score.")

    entropy = np.random.SeedSequence().entropy if seed is None else int(seed)
    kwargs = {"n_labels": len(names), "n_bootstrap": int(n_bootstrap), "confidence": confidence, "entropy": entropy}
    results: dict[str, Any] = {"overall": _block(y_true, y_pred, names, OVERALL, **kwargs)}

    if languages is not None:
        langs = _languages(languages, len(y_true))
        per_language = {}
        for lang in sorted(set(langs.tolist())):
            mask = langs == lang
            per_language[lang] = _block(y_true[mask], y_pred[mask], names, lang, **kwargs)
        results["per_language"] = per_language

    results.update(
        definitions=metric_definitions(confidence, int(n_bootstrap)),
        label_names=list(names),
        n_bootstrap=int(n_bootstrap),
        confidence=float(confidence),
        seed=None if seed is None else int(seed),
    )
    return results


def _label_names(label_names: Sequence[str] | Mapping[int, str]) -> list[str]:
    if isinstance(label_names, Mapping):
        try:
            by_id = {int(k): v for k, v in label_names.items()}
        except (TypeError, ValueError):
            raise ValueError(f"an id2label mapping needs integer ids as keys, got {list(label_names)!r}.") from None
        if sorted(by_id) != list(range(len(by_id))):
            raise ValueError(f"id2label ids must be exactly 0..{len(by_id) - 1}, got {sorted(by_id)}.")
        names = [by_id[i] for i in range(len(by_id))]
    elif isinstance(label_names, str):
        raise ValueError(f"label_names must be a sequence of class names, got the string {label_names!r}.")
    else:
        names = list(label_names)
    if not names:
        raise ValueError("label_names is empty.")
    bad = [n for n in names if not isinstance(n, str)]
    if bad:
        raise ValueError(f"label_names must be strings, got {bad[0]!r} ({type(bad[0]).__name__}).")
    if len(set(names)) != len(names):
        dupes = sorted({n for n in names if names.count(n) > 1})
        raise ValueError(f"label_names has duplicates: {dupes}.")
    return names


def _to_ids(values: Any, names: list[str], what: str) -> np.ndarray:
    """Class ids (int64, 1-D) from ids or label names, with errors that name the bad value."""
    arr = np.asarray(values)
    if arr.ndim == 0:
        raise ValueError(f"{what} must be a 1-D sequence of class ids or label names, got a scalar {values!r}.")
    if arr.ndim != 1:
        raise ValueError(
            f"{what} must be 1-D class ids or label names, got shape {arr.shape}; "
            "for logits take the argmax over the last axis first."
        )
    if arr.size == 0:
        return np.zeros(0, dtype=np.int64)
    if arr.dtype.kind in "USO":
        strings = _as_str(arr, what) if arr.dtype.kind == "O" else arr.astype(str)
        uniques, inverse = np.unique(strings, return_inverse=True)
        index = {name: i for i, name in enumerate(names)}
        unknown = [u for u in uniques.tolist() if u not in index]
        if unknown:
            raise ValueError(f"{what} contain the unknown label name {unknown[0]!r}; label_names are {names}.")
        return np.array([index[u] for u in uniques.tolist()], dtype=np.int64)[inverse.reshape(-1)]
    if arr.dtype.kind not in "iu":
        raise ValueError(
            f"{what} must be integer class ids or label names, got dtype {arr.dtype} (e.g. {arr[0]!r})."
        )
    ids = arr.astype(np.int64)
    bad = np.flatnonzero((ids < 0) | (ids >= len(names)))
    if bad.size:
        i = int(bad[0])
        raise ValueError(
            f"{what} contain the class id {int(ids[i])} (at index {i}), outside 0..{len(names) - 1} "
            f"for {len(names)} label_names."
        )
    return ids


def _as_str(arr: np.ndarray, what: str) -> np.ndarray:
    for i, v in enumerate(arr.tolist()):
        if not isinstance(v, str):
            raise ValueError(f"{what} mix label names with {v!r} (at index {i}); pass all ids or all names.")
    return arr.astype(str)


def _languages(languages: Sequence[str], n: int) -> np.ndarray:
    langs = np.asarray(languages, dtype=object)
    if langs.ndim != 1:
        raise ValueError(f"languages must be a 1-D sequence of strings, got shape {langs.shape}.")
    if len(langs) != n:
        raise ValueError(f"languages ({len(langs)}) and references ({n}) differ in length.")
    for i, v in enumerate(langs.tolist()):
        if not isinstance(v, str) or not v:
            raise ValueError(f"languages must be non-empty strings, got {v!r} at index {i}.")
    return langs


def _block(
    y_true: np.ndarray,
    y_pred: np.ndarray,
    names: list[str],
    block_name: str,
    *,
    n_labels: int,
    n_bootstrap: int,
    confidence: float,
    entropy: int,
) -> dict[str, Any]:
    n = len(y_true)
    cm = np.bincount(y_true * n_labels + y_pred, minlength=n_labels * n_labels).reshape(n_labels, n_labels)
    tp = np.diag(cm)
    support = cm.sum(axis=1)
    predicted = cm.sum(axis=0)
    present = support > 0

    recall = np.divide(tp, support, out=np.zeros(n_labels), where=present)
    # F1 = 2PR / (P + R) = 2TP / (support + predicted); scikit-learn averages it over the
    # classes seen in references or predictions, which is what "macro" means here too.
    seen = present | (predicted > 0)
    f1 = np.divide(2 * tp, support + predicted, out=np.zeros(n_labels), where=seen)

    block: dict[str, Any] = {
        "n": int(n),
        "UR": float(recall[present].mean()),
        "WR": float(tp.sum() / n),
        "macro_f1": float(f1[seen].mean()),
        "weighted_f1": float((f1 * support).sum() / n),
        "per_class_recall": {
            name: (float(recall[i]) if present[i] else None) for i, name in enumerate(names)
        },
        "confusion_matrix": cm.tolist(),
        "UR_ci": None,
        "WR_ci": None,
    }
    if n_bootstrap > 0:
        rng = np.random.default_rng([entropy, zlib.crc32(block_name.encode("utf-8"))])
        ur, wr = _bootstrap(cm, n, n_bootstrap, rng)
        lo, hi = (1.0 - confidence) / 2.0, (1.0 + confidence) / 2.0
        block["UR_ci"] = [float(v) for v in np.quantile(ur, [lo, hi])]
        block["WR_ci"] = [float(v) for v in np.quantile(wr, [lo, hi])]
    return block


def _bootstrap(cm: np.ndarray, n: int, n_bootstrap: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """UR and WR on ``n_bootstrap`` resamples of the block's samples.

    UR and WR depend on the samples only through the confusion-matrix counts, and resampling
    n samples with replacement makes those counts Multinomial(n, cm / n). Drawing the counts
    directly is the same bootstrap in distribution at O(n_bootstrap * K^2) cost, whatever n is.
    """
    k = cm.shape[0]
    counts = rng.multinomial(n, cm.ravel() / n, size=n_bootstrap).reshape(n_bootstrap, k, k)
    tp = np.einsum("bii->bi", counts)
    support = counts.sum(axis=2)
    present = support > 0
    recall = np.divide(tp, support, out=np.zeros(tp.shape), where=present)
    ur = recall.sum(axis=1) / present.sum(axis=1)
    wr = tp.sum(axis=1) / n
    return ur, wr
