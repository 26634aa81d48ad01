"""The teacher-output cache: what frozen teachers say about every clip of a split, computed once and stored
with the dataset. Every caching method (mtkd, meta_curriculum, audio_text) fills it through
`cache_teacher_outputs`; `add_teacher_logits` is the fill for audio-classification teachers' logits.

The outputs become columns added by `datasets.map` under a fingerprint the caller makes of the split's own
fingerprint and everything that changes the outputs (each teacher's weights, model config, dtype, labels and
feature extractor, the crop length), so a changed teacher or preprocessing rebuilds the cache and an unchanged
one is read back from the datasets cache files.

Each fill writes into a folder of its own beside the split's cache files, `hf_mtkd-teacher-logits-<fingerprint>/`,
under a file lock held while it fills. `datasets` writes a `tmp*` file there and renames it when done; a process
killed in between leaves it behind. The next fill of that fingerprint takes the lock (so no live process is
filling it) and removes those files: only files in that folder, only once their writer is gone.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
from collections.abc import Callable, Iterator
from typing import Optional

import numpy as np
import torch
from datasets import Array2D, Dataset, Features
from filelock import FileLock, Timeout

from ..data.collator import feature_extractor_inputs
from ..data.preprocessing import WAVEFORM
from .teachers import Teacher, own_feature_extractor_inputs, teacher_fingerprint, teacher_logits_for_batch

logger = logging.getLogger(__name__)

TEACHER_LOGITS = "teacher_logits"
FILL_FOLDER_PREFIX = "hf_mtkd-teacher-logits-"
_CACHE_FILE = "teacher_logits.arrow"
_LOCK_FILE = "fill.lock"


class CacheRefused(ValueError):
    """The cache would be wrong for this run (random crops or augmentation change the inputs each epoch)."""


def check_cache_allowed(random_windows: bool) -> None:
    if random_windows:
        raise CacheRefused(
            "use_teacher_logit_cache cannot be used with random_crop when clips may be longer than "
            "train_window_seconds: "
            "the teacher would have seen other audio than the student sees in each epoch. Set random_crop: false "
            "(the leading window every epoch), train_window_seconds >= max_duration_seconds, or compute teacher "
            "logits online."
        )


def add_teacher_logits(
    dataset: Dataset,
    teachers: list[Teacher],
    student_feature_extractor,
    *,
    max_samples: int,
    batch_size: int = 32,
    device: torch.device | str = "cpu",
) -> Dataset:
    """Return `dataset` with a (N, K) float32 `teacher_logits` column."""
    key = hashlib.sha256()
    key.update(dataset._fingerprint.encode())
    for teacher in teachers:
        key.update(teacher_fingerprint(teacher).encode())
    key.update(f"max_samples={max_samples}".encode())
    fingerprint = key.hexdigest()[:32]
    num_labels = len(teachers[0].label_index)
    rate = student_feature_extractor.sampling_rate

    # Without an attention mask (wav2vec2-base style), zero padding changes a model's output, so
    # clips are then run one by one: the cache holds what each teacher says about the clip itself,
    # independent of which clips happened to share its batch.
    uses_mask = all(
        getattr(
            t.feature_extractor if not t.shares_student_inputs else student_feature_extractor,
            "return_attention_mask",
            False,
        )
        for t in teachers
    )

    own_fes = [None if t.shares_student_inputs else t.feature_extractor for t in teachers]

    def logits_of(waveforms):
        student_inputs = feature_extractor_inputs(student_feature_extractor, waveforms, rate)
        own_inputs = own_feature_extractor_inputs(own_fes, waveforms, rate)
        logits = teacher_logits_for_batch(teachers, {k: v.to(device) for k, v in student_inputs.items()}, own_inputs)
        return logits.transpose(0, 1).cpu().numpy()  # (B, N, K)

    def batch_logits(batch):
        waveforms = [np.asarray(w)[:max_samples] for w in batch[WAVEFORM]]
        if uses_mask:
            return {TEACHER_LOGITS: logits_of(waveforms)}
        return {TEACHER_LOGITS: np.concatenate([logits_of([w]) for w in waveforms])}

    features = dataset.features.copy()
    features[TEACHER_LOGITS] = Array2D(shape=(len(teachers), num_labels), dtype="float32")
    out = cache_teacher_outputs(
        dataset,
        batch_logits,
        features=features,
        fingerprint=fingerprint,
        batch_size=batch_size,
        desc=f"Teacher-logit cache ({len(teachers)} teachers)",
    )
    return out.with_format(
        "numpy", columns=[c for c in ("waveform", "labels", TEACHER_LOGITS)], output_all_columns=True
    )


def cache_teacher_outputs(
    dataset: Dataset,
    batch_outputs: Callable[[dict], dict],
    *,
    features: Features,
    fingerprint: str,
    batch_size: int,
    desc: str,
) -> Dataset:
    """`dataset` (its format dropped) mapped by `batch_outputs` (a batched `datasets.map` function that adds the
    teachers' columns) into `features`, under `fingerprint`: written once into the fill's own folder under its
    lock, read back on every later call with the same fingerprint. An in-memory dataset is mapped in memory."""
    formatted = dataset.with_format(None)

    def fill(cache_file_name: Optional[str] = None) -> Dataset:
        return formatted.map(
            batch_outputs,
            batched=True,
            batch_size=batch_size,
            features=features,
            new_fingerprint=fingerprint,
            cache_file_name=cache_file_name,
            desc=desc,
        )

    folder = fill_folder(dataset, fingerprint)
    if folder is None:  # an in-memory dataset: map writes no file
        return fill()
    os.makedirs(folder, exist_ok=True)
    with _fill_lock(folder):
        remove_stale_fill_files(folder)
        return fill(os.path.join(folder, _CACHE_FILE))



def fill_folder(dataset: Dataset, fingerprint: str) -> Optional[str]:
    """The folder one fill writes into, beside the split's own cache files; None for an in-memory dataset."""
    if not dataset.cache_files:
        return None
    return os.path.join(os.path.dirname(dataset.cache_files[0]["filename"]), FILL_FOLDER_PREFIX + fingerprint)


@contextlib.contextmanager
def _fill_lock(folder: str) -> Iterator[None]:
    """Held while one process fills `folder`; the OS releases it when that process dies, however it dies."""
    lock = FileLock(os.path.join(folder, _LOCK_FILE))
    try:
        lock.acquire(timeout=0)
    except Timeout:
        logger.info("Waiting for another process filling the teacher-logit cache in %s.", folder)
        lock.acquire()
    try:
        yield
    finally:
        lock.release()


def remove_stale_fill_files(folder: str) -> list[str]:
    """Remove the `tmp*` files `datasets` left in `folder` when a fill was killed. Call it holding the folder's
    lock: then no live process is writing them."""
    removed = []
    for name in sorted(os.listdir(folder)):
        path = os.path.join(folder, name)
        if name.startswith("tmp") and os.path.isfile(path):
            os.remove(path)
            removed.append(path)
    if removed:
        logger.warning("Removed %d file(s) left by a teacher-logit cache fill that was killed: %s", len(removed),
                       ", ".join(removed))
    return removed
