"""Data layer: sources, labels, splits, decoding and batching, on audio the tests write."""

import csv
import shutil

import numpy as np
import pytest
import soundfile as sf
from transformers import Wav2Vec2FeatureExtractor

from testing_utils import LABELS, SHARED_DATA, write_tone_corpus
from hf_mtkd.arguments import DataArguments
from hf_mtkd.data.splits import _draw_by_speaker
from hf_mtkd.data import (
    AudioClassificationCollator,
    AudioDecodeError,
    DataReport,
    decode_audio,
    load_raw_dataset,
    make_splits,
    prepare_audio_dataset,
    select_labels,
)


def data_args(**kw):
    return DataArguments(**kw)


def load_splits(root, **kw):
    args = data_args(data_dir=str(root), **kw)
    raw, labels = select_labels(load_raw_dataset(args), args)
    return make_splits(raw, args), labels, args


def test_audiofolder_with_split_column(tone_corpus):
    splits, labels, _ = load_splits(tone_corpus)
    assert labels == LABELS
    assert {k: len(v) for k, v in splits.items()} == {"train": 16, "validation": 16, "test": 16}
    speakers = {k: set(v["speaker"]) for k, v in splits.items()}
    assert not speakers["train"] & speakers["test"] and not speakers["validation"] & speakers["test"]


def test_label_map_and_selection(tone_corpus):
    splits, labels, _ = load_splits(tone_corpus, label_map='{"angry": "sad"}', labels=["happy", "neutral", "sad"])
    assert labels == ["happy", "neutral", "sad"]
    assert sorted(set(splits["train"]["label"])) == ["happy", "neutral", "sad"]
    # One train speaker per language (2 languages) x (2 sad + 2 angry clips) = 8.
    assert splits["train"]["label"].count("sad") == 8


def test_unlisted_labels_dropped_or_rejected(tone_corpus):
    splits, _, _ = load_splits(tone_corpus, labels=["happy", "sad"])
    assert set(splits["test"]["label"]) == {"happy", "sad"}
    with pytest.raises(ValueError, match=r"'angry' \(12 rows\)"):
        load_splits(tone_corpus, labels=["happy", "sad"], drop_unlisted_labels=False)


def test_missing_column_is_named(tone_corpus):
    with pytest.raises(ValueError, match="'emotion' \\(--label_column_name\\)"):
        load_splits(tone_corpus, label_column_name="emotion")


def test_languages_filter(tone_corpus):
    splits, _, _ = load_splits(tone_corpus, languages=["fi"])
    assert all(set(ds["language"]) == {"fi"} for ds in splits.values())
    with pytest.raises(ValueError, match="'de'"):
        load_splits(tone_corpus, languages=["de"])


def test_leave_one_group_out(tone_corpus):
    splits, _, _ = load_splits(tone_corpus, fold_column_name="speaker", test_fold="en_spk2", validation_fold="fi_spk2")
    assert set(splits["test"]["speaker"]) == {"en_spk2"}
    assert set(splits["validation"]["speaker"]) == {"fi_spk2"}
    assert not {"en_spk2", "fi_spk2"} & set(splits["train"]["speaker"])
    with pytest.raises(ValueError, match="not a value of column 'speaker'"):
        load_splits(tone_corpus, fold_column_name="speaker", test_fold="nobody")


def test_validation_never_equals_test():
    with pytest.raises(ValueError, match="must differ"):
        data_args(data_dir="x", validation_split_name="test")
    with pytest.raises(ValueError, match="share"):
        data_args(data_dir="x", fold_column_name="f", test_fold=["1"], validation_fold=["1", "2"])


def test_missing_splits_drawn_by_speaker(tmp_path):
    root = write_tone_corpus(tmp_path / "c", speakers_per_language=5)
    rows = list(csv.DictReader(open(root / "metadata.csv")))
    with open(root / "metadata.csv", "w", newline="") as handle:  # drop the split column
        writer = csv.DictWriter(handle, fieldnames=["file_name", "label", "language", "speaker"])
        writer.writeheader()
        writer.writerows({k: r[k] for k in writer.fieldnames} for r in rows)
    splits, _, _ = load_splits(root, validation_fraction=0.2)
    groups = {k: set(v["speaker"]) for k, v in splits.items()}
    assert groups["train"] and groups["validation"] and groups["test"]
    assert not (groups["train"] & groups["validation"]) and not (groups["train"] & groups["test"])
    assert not (groups["validation"] & groups["test"])


def test_decode_resamples_and_downmixes(tmp_path):
    t = np.arange(48000) / 48000
    left = 0.5 * np.sin(2 * np.pi * 440 * t)
    sf.write(tmp_path / "stereo48k.wav", np.stack([left, left], axis=1).astype(np.float32), 48000)
    sf.write(
        tmp_path / "mono8k.flac", (0.5 * np.sin(2 * np.pi * 440 * np.arange(8000) / 8000)).astype(np.float32), 8000
    )
    stereo = decode_audio(str(tmp_path / "stereo48k.wav"), 16000)
    mono8k = decode_audio({"path": str(tmp_path / "mono8k.flac"), "bytes": None}, 16000)
    assert stereo.ndim == 1 and abs(len(stereo) - 16000) <= 32
    assert abs(len(mono8k) - 16000) <= 32
    # Downmix of identical channels keeps the amplitude; the tone survives resampling.
    assert np.abs(stereo[1000:-1000]).max() == pytest.approx(0.5, abs=0.02)
    spectrum = np.abs(np.fft.rfft(stereo[:16000]))
    assert abs(np.argmax(spectrum) * 16000 / len(stereo[:16000]) - 440) < 3


def test_decode_errors_name_the_file(tmp_path):
    corrupt = tmp_path / "corrupt.wav"
    corrupt.write_bytes(b"RIFF\x00\x00\x00\x00WAVEgarbage")
    empty = tmp_path / "empty.wav"
    empty.write_bytes(b"")
    zero = tmp_path / "zero.wav"
    sf.write(zero, np.zeros(0, dtype=np.float32), 16000)
    for path in (corrupt, empty, zero):
        with pytest.raises(AudioDecodeError, match=str(path.name)):
            decode_audio(str(path), 16000)
    with pytest.raises(AudioDecodeError, match="NaN or infinite"):
        decode_audio({"array": np.array([0.0, np.nan]), "sampling_rate": 16000, "path": "x.wav"}, 16000)


def _with_bad_file(tmp_path):
    root = write_tone_corpus(tmp_path / "c")
    rows = list(csv.DictReader(open(root / "metadata.csv")))
    (root / rows[-1]["file_name"]).write_bytes(b"not audio at all")
    return root, rows[-1]["file_name"]


def test_bad_audio_fails_by_default_naming_the_file(tmp_path):
    root, bad = _with_bad_file(tmp_path)
    splits, labels, args = load_splits(root)
    with pytest.raises(AudioDecodeError, match=bad):
        prepare_audio_dataset(splits, args, 16000, labels)


def test_bad_audio_skipped_and_counted(tmp_path, caplog):
    root, bad = _with_bad_file(tmp_path)
    splits, labels, args = load_splits(root, on_bad_audio="skip")
    n = len(splits["train"])
    with caplog.at_level("WARNING"):
        prepared = prepare_audio_dataset(splits, args, 16000, labels)
    assert len(prepared["train"]) == n - 1
    assert "skipped 1 of" in caplog.text and bad in caplog.text


def test_prepare_crops_and_encodes_labels(tone_corpus):
    splits, labels, args = load_splits(tone_corpus, max_duration_seconds=0.25)
    prepared = prepare_audio_dataset(splits, args, 16000, labels)
    row = prepared["train"][0]
    assert row["waveform"].dtype == np.float32 and len(row["waveform"]) == 4000
    assert labels[int(row["labels"])] == row["label"]


def test_attention_mask_follows_the_feature_extractor(tone_corpus):
    splits, labels, args = load_splits(tone_corpus)
    prepared = prepare_audio_dataset(splits, args, 16000, labels)
    rows = [prepared["train"][i] for i in range(4)]
    base = Wav2Vec2FeatureExtractor(return_attention_mask=False)  # wav2vec2-base convention
    large = Wav2Vec2FeatureExtractor(return_attention_mask=True)  # wav2vec2-large-lv60 convention
    batch = AudioClassificationCollator(base, 16000)(rows)
    assert set(batch) == {"input_values", "labels"}
    batch = AudioClassificationCollator(large, 16000, language_column="language", language_to_id={"en": 0, "fi": 1})(
        rows
    )
    assert set(batch) == {"input_values", "attention_mask", "labels", "language_id"}
    lengths = [len(r["waveform"]) for r in rows]
    assert batch["attention_mask"].sum(1).tolist() == lengths
    assert batch["input_values"].shape == (4, max(lengths))


def test_random_crop_changes_window_deterministic_crop_does_not(tone_corpus):
    splits, labels, args = load_splits(tone_corpus)
    prepared = prepare_audio_dataset(splits, args, 16000, labels)
    rows = [prepared["train"][0]]
    fe = Wav2Vec2FeatureExtractor(do_normalize=False)
    fixed = AudioClassificationCollator(fe, 16000, max_samples=1000)
    assert np.allclose(fixed(rows)["input_values"][0].numpy(), rows[0]["waveform"][:1000])
    rand = AudioClassificationCollator(fe, 16000, max_samples=1000, random_crop=True, seed=1)
    windows = []
    for epoch in range(5):
        rand.set_epoch(epoch)
        windows.append(tuple(rand(rows)["input_values"][0, :5].tolist()))
    assert len(set(windows)) > 1
    # The window depends on (seed, epoch, clip) only, never on how many batches came before.
    rand.set_epoch(3)
    assert tuple(rand(rows)["input_values"][0, :5].tolist()) == windows[3]


@pytest.mark.skipif(not (SHARED_DATA / "emodb").is_dir(), reason="../shared/data/emodb not present")
def test_real_recordings_decode(tmp_path):
    # Real speech: an EmoDB FLAC (16 kHz) and a RAVDESS FLAC, decoded through an audiofolder.
    emodb = SHARED_DATA / "emodb" / "wav" / "03a01Fa.flac"
    ravdess = next((SHARED_DATA / "ravdess").rglob("03-01-05-*.flac"))
    root = tmp_path / "real"
    root.mkdir()
    shutil.copy(emodb, root / emodb.name)
    shutil.copy(ravdess, root / ravdess.name)
    with open(root / "metadata.csv", "w") as handle:
        handle.write(f"file_name,label,language,speaker\n{emodb.name},happy,de,03\n{ravdess.name},angry,en,01\n")
    args = data_args(data_dir=str(root))
    raw, labels = select_labels(load_raw_dataset(args), args)
    waveforms = [
        decode_audio(cell, 16000)
        for cell in raw["train"].cast_column("audio", __import__("datasets").Audio(decode=False))["audio"]
    ]
    for w in waveforms:
        assert 0.5 * 16000 < len(w) < 10 * 16000
        assert 0.01 < np.abs(w).max() <= 1.0 and np.sqrt(np.mean(w**2)) > 1e-3


# ----------------------------------------------------------------- splits: drawn, by fold, by folder (issue 15)


def _without_split_column(root):
    rows = list(csv.DictReader(open(root / "metadata.csv")))
    with open(root / "metadata.csv", "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=["file_name", "label", "language", "speaker"])
        writer.writeheader()
        writer.writerows({k: r[k] for k in writer.fieldnames} for r in rows)
    return root


def test_drawn_validation_speakers_are_stratified_by_language(tmp_path, caplog):
    # Training speakers: en 9, fi 2, fr 2 (69% en). An unstratified draw of 2 speakers takes no fi or fr
    # speaker about half the time; stratified, each language gives one.
    root = write_tone_corpus(tmp_path / "c", languages=("en", "fi", "fr"), speakers_per_language=10, clips_per_label=1)
    rows = list(csv.DictReader(open(root / "metadata.csv")))
    rows = [dict(r, split="test" if r["split"] == "test" else "train") for r in rows
            if r["language"] == "en" or int(r["speaker"][-1]) < 3]
    with open(root / "metadata.csv", "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    for seed in range(6):
        args = data_args(data_dir=str(root), validation_fraction=0.15, split_seed=seed)
        raw, labels = select_labels(load_raw_dataset(args), args)
        report = DataReport()
        with caplog.at_level("WARNING"):
            caplog.clear()
            splits = make_splits(raw, args, report)
        validation = splits["validation"]
        assert set(validation["language"]) == {"en", "fi", "fr"}, seed
        assert set(validation["label"]) == set(LABELS) and set(splits["train"]["label"]) == set(LABELS)
        drawn = report.drawn_speakers["validation"]
        assert drawn == sorted(set(validation["speaker"]))
        assert not set(drawn) & set(splits["train"]["speaker"]) and not set(drawn) & set(splits["test"]["speaker"])
        # Printed at the default level (WARNING), with the seed.
        assert f"validation speakers drawn from the training data (split_seed {seed})" in caplog.text
        assert all(speaker in caplog.text for speaker in drawn)


def test_drawn_validation_keeps_every_language_of_a_small_set(tmp_path):
    # 2 languages x 5 training speakers: an unstratified draw misses a language in some seeds; stratified, never,
    # and (a language with four or more training speakers gives at least two) two from each.
    root = write_tone_corpus(tmp_path / "c", languages=("en", "fi"), speakers_per_language=6, clips_per_label=1)
    rows = [
        dict(r, split="test" if r["split"] == "test" else "train") for r in csv.DictReader(open(root / "metadata.csv"))
    ]
    with open(root / "metadata.csv", "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    args = data_args(data_dir=str(root), validation_fraction=0.2)
    raw, _ = select_labels(load_raw_dataset(args), args)
    for seed in range(20):
        splits = make_splits(
            raw, data_args(data_dir=str(root), validation_fraction=0.2, split_seed=seed), DataReport()
        )
        speakers = set(splits["validation"]["speaker"])
        assert sorted(s.split("_")[0] for s in speakers) == ["en", "en", "fi", "fi"], seed
        assert set(splits["validation"]["language"]) == {"en", "fi"}, seed


def test_draw_keeps_every_class_on_both_sides_when_the_data_allow(tmp_path):
    # Four speakers, each with two of the four classes: only some draws keep all classes in training and validation.
    root = tmp_path / "c"
    root.mkdir()
    rows = []
    for s, classes in enumerate([("angry", "happy"), ("neutral", "sad"), ("angry", "neutral"), ("happy", "sad")]):
        for label in classes:
            name = f"spk{s}_{label}.wav"
            sf.write(root / name, np.full(1600, 0.1, dtype=np.float32), 16000)
            rows.append({"file_name": name, "label": label, "speaker": f"spk{s}"})
    with open(root / "metadata.csv", "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    for seed in range(5):
        args = data_args(data_dir=str(root), validation_fraction=0.5, split_seed=seed)
        raw, _ = select_labels(load_raw_dataset(args), args)
        train, validation = _draw_by_speaker(raw["train"], args, "validation", DataReport())
        assert set(train["label"]) == set(LABELS) and set(validation["label"]) == set(LABELS), seed


def test_validation_fold_without_test_fold(tmp_path):
    root = _without_split_column(write_tone_corpus(tmp_path / "c", speakers_per_language=4))
    splits, _, _ = load_splits(root, fold_column_name="speaker", validation_fold=["en_spk1", "fi_spk1"])
    assert set(splits["validation"]["speaker"]) == {"en_spk1", "fi_spk1"}
    assert not {"en_spk1", "fi_spk1"} & (set(splits["train"]["speaker"]) | set(splits["test"]["speaker"]))
    assert splits["test"].num_rows > 0 and set(splits["test"]["language"]) == {"en", "fi"}
    # With the data's own validation split, a validation_fold is ambiguous.
    with pytest.raises(ValueError, match="validation_fold .* own 'validation' split"):
        load_splits(write_tone_corpus(tmp_path / "d"), fold_column_name="speaker", validation_fold=["en_spk1"])
    with pytest.raises(ValueError, match="validation_fold needs fold_column_name"):
        data_args(data_dir="x", validation_fold=["a"])


def test_audiofolder_with_split_subfolders(tmp_path, tone_corpus):
    root = tmp_path / "layout"
    rows = list(csv.DictReader(open(tone_corpus / "metadata.csv")))
    for split in ("train", "validation", "test"):
        (root / split).mkdir(parents=True)
        mine = [r for r in rows if r["split"] == split]
        for r in mine:
            shutil.copy(tone_corpus / r["file_name"], root / split / r["file_name"])
        with open(root / split / "metadata.csv", "w", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=["file_name", "label", "language", "speaker"])
            writer.writeheader()
            writer.writerows({k: r[k] for k in writer.fieldnames} for r in mine)
    splits, labels, _ = load_splits(root)
    assert labels == LABELS
    assert {k: sorted(set(v["speaker"])) for k, v in splits.items()} == {
        "train": ["en_spk2", "fi_spk2"], "validation": ["en_spk1", "fi_spk1"], "test": ["en_spk0", "fi_spk0"]}
    (root / "test" / "metadata.csv").unlink()
    with pytest.raises(FileNotFoundError, match=r"test/metadata.csv' is missing"):
        load_splits(root)


def test_a_drawn_validation_takes_two_speakers_from_a_language_with_four(tmp_path):
    from hf_mtkd.data.splits import _allocate

    # 5 speakers per language, validation_fraction 0.15: 2 draws in all by share, at least two per language now.
    assert _allocate(2, {"en": 5, "fi": 5}, two_from=4) == {"en": 2, "fi": 2}
    assert _allocate(2, {"en": 5, "fi": 5}) == {"en": 1, "fi": 1}  # the test split's draw: one each
    assert _allocate(2, {"en": 3, "fi": 5}, two_from=4) == {"en": 1, "fi": 2}
    root = write_tone_corpus(tmp_path / "c", speakers_per_language=6)
    with open(root / "metadata.csv", newline="") as handle:
        rows = [{**row, "split": "test" if row["split"] == "test" else "train"} for row in csv.DictReader(handle)]
    with open(root / "metadata.csv", "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    report = DataReport()
    args = data_args(data_dir=str(root))
    raw, _ = select_labels(load_raw_dataset(args), args)
    splits = make_splits(raw, args, report)
    drawn = report.drawn_speakers["validation"]
    assert sorted(s.split("_")[0] for s in drawn) == ["en", "en", "fi", "fi"]
    assert set(splits["validation"]["speaker"]) == set(drawn)


def test_few_validation_clips_per_class_are_a_warning_naming_the_language(tone_corpus):
    from hf_mtkd.data.checks import check_validation_size

    splits, _, args = load_splits(tone_corpus)  # validation: one speaker per language, 2 clips per class
    report = DataReport()
    check_validation_size(splits, args, report)
    assert len(report.warnings) == 2
    assert report.warnings[0].startswith("Validation data for language 'en' has fewer than 5 clips "
                                         "(validation_min_clips) of angry (2), happy (2), neutral (2), sad (2)")
    report = DataReport()
    check_validation_size(splits, data_args(data_dir=str(tone_corpus), validation_min_clips=2), report)
    assert report.warnings == []
    # Every run checks it: it is in the data report that goes into the metrics files and the card.
    from hf_mtkd.data import prepare_data

    prepared = prepare_data(data_args(data_dir=str(tone_corpus)), 16000)
    assert any(w.startswith("Validation data for language 'fi' has fewer than 5") for w in prepared.report.warnings)


def test_split_seed_changes_the_drawn_validation_speakers(tmp_path):
    # 2 languages x 6 speakers, no split column: the test and the validation speakers are drawn. The same seed
    # draws the same speakers; over several seeds the draws differ (a seed-blind draw gives one set for all).
    root = _without_split_column(write_tone_corpus(tmp_path / "c", speakers_per_language=6, clips_per_label=1))
    args = data_args(data_dir=str(root))
    raw, _ = select_labels(load_raw_dataset(args), args)

    def drawn(seed):
        report = DataReport()
        make_splits(raw, data_args(data_dir=str(root), split_seed=seed), report)
        return tuple(report.drawn_speakers["validation"]), tuple(report.drawn_speakers["test"])

    draws = {seed: drawn(seed) for seed in range(5)}
    assert drawn(3) == draws[3]
    assert len({validation for validation, _ in draws.values()}) > 1
    assert len({test for _, test in draws.values()}) > 1


def test_leave_one_speaker_out_without_validation_fold_keeps_test_speakers_out(tmp_path):
    # test_fold only: the validation speakers are drawn from the speakers left after the test fold is taken out.
    root = _without_split_column(write_tone_corpus(tmp_path / "c", speakers_per_language=4, clips_per_label=1))
    for seed in range(4):
        splits, _, _ = load_splits(root, fold_column_name="speaker", test_fold=["en_spk1", "fi_spk2"], split_seed=seed)
        assert set(splits["test"]["speaker"]) == {"en_spk1", "fi_spk2"}
        assert splits["test"].num_rows == 2 * len(LABELS)
        assert not {"en_spk1", "fi_spk2"} & (set(splits["train"]["speaker"]) | set(splits["validation"]["speaker"]))
        assert splits["validation"].num_rows > 0 and splits["train"].num_rows > 0
        total = splits["train"].num_rows + splits["validation"].num_rows + splits["test"].num_rows
        assert total == 2 * 4 * len(LABELS)  # every clip in exactly one split


def test_zero_length_clip_error_names_the_file():
    # An already-decoded cell with no samples (torchcodec rejects an empty WAV file before this check).
    with pytest.raises(AudioDecodeError, match=r"^silent_clip\.wav: zero-length clip$"):
        decode_audio(
            {"array": np.zeros(0, dtype=np.float32), "sampling_rate": 16000, "path": "silent_clip.wav"}, 16000
        )
