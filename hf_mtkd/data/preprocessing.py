"""Decode every clip once (resampled, mono, up to max_duration_seconds) into a cached `waveform` column.

The decoded waveforms are stored by `datasets.map`, so the cache is keyed by datasets'
fingerprint of the source data and of this function's arguments (rate, crop length,
bad-audio policy): a second run, or a later epoch, reads arrays from disk instead of decoding.
Features (normalisation, spectrograms) are made per batch by each model's own feature
extractor in the collator, so teachers and students with different front ends share one cache.
"""

from __future__ import annotations

from typing import Optional

import numpy as np
from datasets import Audio, DatasetDict, Features, List, Value

from ..arguments import DataArguments
from .audio import AudioDecodeError, crop, decode_audio
from .report import DataReport, first_few

WAVEFORM = "waveform"
LABELS = "labels"
_OK = "_decoded_ok"
_NOTE = "_decode_note"  # why a clip was skipped, or that its WAV file is truncated; empty otherwise


def prepare_audio_dataset(
    dataset: DatasetDict,
    data_args: DataArguments,
    sampling_rate: int,
    label_names: list[str],
    report: Optional[DataReport] = None,
) -> DatasetDict:
    """Return splits with `waveform` (float32 at `sampling_rate`), `labels` (int) and the metadata columns.

    Clips skipped under `on_bad_audio: skip` and truncated WAV files are recorded per split in `report`.
    """
    report = report if report is not None else DataReport()
    audio_column = data_args.audio_column_name
    label_column = data_args.label_column_name
    label2id = {name: i for i, name in enumerate(label_names)}
    # The cache keeps each clip up to max_duration_seconds: training windows are cut per epoch by the collator,
    # evaluation windows per split by hf_mtkd.windowing.
    keep_seconds = data_args.max_duration_seconds
    max_samples = int(round(keep_seconds * sampling_rate))
    skip_bad = data_args.on_bad_audio == "skip"

    def decode_batch(batch):
        waveforms, ok, notes = [], [], []
        for cell in batch[audio_column]:
            truncated = []
            try:
                waveform = crop(
                    decode_audio(cell, sampling_rate, max_seconds=keep_seconds, on_truncated=truncated.append),
                    max_samples,
                )
            except AudioDecodeError as err:
                if not skip_bad:
                    raise
                waveform = np.zeros(0, dtype=np.float32)
                ok.append(False)
                notes.append(str(err))
            else:
                ok.append(True)
                notes.append("; ".join(truncated))
            waveforms.append(waveform)
        return {
            WAVEFORM: waveforms,
            LABELS: [label2id[label] for label in batch[label_column]],
            _OK: ok,
            _NOTE: notes,
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
        features[_NOTE] = Value("string")
        ds = ds.map(
            decode_batch,
            batched=True,
            batch_size=32,
            remove_columns=[audio_column],
            features=features,
            num_proc=data_args.preprocessing_num_workers,
            desc=f"Decoding {split} audio at {sampling_rate} Hz",
        )
        # Read back from the (possibly cached) columns, so that a second run reports what the first one found.
        ok, notes = list(ds[_OK]), list(ds[_NOTE])
        skipped = [note for good, note in zip(ok, notes) if not good]
        truncated = [note for good, note in zip(ok, notes) if good and note]
        report.truncated_clips[split] = truncated
        if truncated:
            report.warn(f"{split}: {len(truncated)} WAV file(s) hold less audio than their header declares and were "
                        f"used as far as they go: {first_few(truncated, 3)}")
        if skip_bad:
            # after clips without transcript
            report.skipped_clips[split] = report.skipped_clips.get(split, []) + skipped
            if skipped:
                ds = ds.filter(lambda flags: flags, input_columns=[_OK], batched=True, desc="dropping bad audio")
                report.warn(f"{split}: skipped {len(skipped)} of {len(ok)} clips with unusable audio "
                            f"(on_bad_audio: skip): {first_few(skipped, 3)}")
        if len(ds) == 0:
            raise ValueError(f"The {split} split has no usable audio left.")
        out[split] = ds.remove_columns([_OK, _NOTE]).with_format(
            "numpy", columns=[WAVEFORM, LABELS], output_all_columns=True)
    return DatasetDict(out)
