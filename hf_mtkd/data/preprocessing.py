"""Decode every clip once (resampled, mono, up to max_duration_seconds) into a cached `waveform` column.

The decoded waveforms are stored by `datasets.map`, so the cache is keyed by datasets'
fingerprint of the source data and of this function's arguments (rate, crop length,
bad-audio policy): a second run, or a later epoch, reads arrays from disk instead of decoding.
Features (normalisation, spectrograms) are made per batch by each model's own feature
extractor in the collator, so teachers and students with different front ends share one cache.
"""

from __future__ import annotations

import logging

import numpy as np
from datasets import Audio, DatasetDict, Features, List, Value

from ..arguments import DataArguments
from .audio import AudioDecodeError, crop, decode_audio

logger = logging.getLogger(__name__)

WAVEFORM = "waveform"
LABELS = "labels"
_OK = "_decoded_ok"


def prepare_audio_dataset(
    dataset: DatasetDict,
    data_args: DataArguments,
    sampling_rate: int,
    label_names: list[str],
) -> DatasetDict:
    """Return splits with `waveform` (float32 at `sampling_rate`), `labels` (int) and the metadata columns."""
    audio_column = data_args.audio_column_name
    label_column = data_args.label_column_name
    label2id = {name: i for i, name in enumerate(label_names)}
    # The cache keeps each clip up to max_duration_seconds: training windows are cut per epoch by the collator,
    # evaluation windows per split by hf_mtkd.windowing.
    keep_seconds = data_args.max_duration_seconds
    max_samples = int(round(keep_seconds * sampling_rate))
    skip_bad = data_args.on_bad_audio == "skip"

    def decode_batch(batch):
        waveforms, ok = [], []
        for cell in batch[audio_column]:
            try:
                waveform = crop(decode_audio(cell, sampling_rate, max_seconds=keep_seconds), max_samples)
            except AudioDecodeError as err:
                if not skip_bad:
                    raise
                logger.warning("Skipping %s", err)
                waveform = np.zeros(0, dtype=np.float32)
                ok.append(False)
            else:
                ok.append(True)
            waveforms.append(waveform)
        return {
            WAVEFORM: waveforms,
            LABELS: [label2id[label] for label in batch[label_column]],
            _OK: ok,
        }

    out = {}
    for split, ds in dataset.items():
        if isinstance(ds.features[audio_column], Audio):
            # We decode ourselves (see audio.py) so that a bad file can be named and skipped.
            ds = ds.cast_column(audio_column, Audio(decode=False))
        features = Features({**{k: v for k, v in ds.features.items() if k != audio_column}})
        features[WAVEFORM] = List(Value("float32"))
        features[LABELS] = Value("int64")
        features[_OK] = Value("bool")
        ds = ds.map(
            decode_batch,
            batched=True,
            batch_size=32,
            remove_columns=[audio_column],
            features=features,
            num_proc=data_args.preprocessing_num_workers,
            desc=f"Decoding {split} audio at {sampling_rate} Hz",
        )
        n_before = len(ds)
        if skip_bad:
            ds = ds.filter(lambda flags: flags, input_columns=[_OK], batched=True, desc="dropping bad audio")
            if len(ds) < n_before:
                logger.warning("%s: skipped %d of %d clips with unusable audio.", split, n_before - len(ds), n_before)
        if len(ds) == 0:
            raise ValueError(f"The {split} split has no usable audio left.")
        out[split] = ds.remove_columns([_OK]).with_format("numpy", columns=[WAVEFORM, LABELS], output_all_columns=True)
    return DatasetDict(out)
