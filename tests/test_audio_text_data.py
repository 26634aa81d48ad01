"""Transcripts through the data layer (text_column_name): audiofolder/CSV, HF datasets on disk, corpus readers;
missing ones; the multimodal demo corpus plan; predictions with transcripts."""

from __future__ import annotations

import csv
from collections import Counter

import numpy as np
import pytest
from datasets import Audio, Dataset, DatasetDict

from audio_text_fakes import WORDS, tiny_model, tiny_processor, write_text_corpus
from testing_utils import LABELS
from corpora_fakes import make_iemocap, make_meld
from hf_mtkd.arguments import DataArguments
from hf_mtkd.audio_text.data import AudioTextCollator, require_text_column, transcript_checks
from hf_mtkd.data import DataReport, load_raw_dataset, make_splits, prepare_data, select_labels
from hf_mtkd.data.checks import check_transcripts
from hf_mtkd.audio_text.predict import TranscriptError, predict_audio_text
from hf_mtkd.corpora import synthetic_demo as demo_corpus


def prepare_text_data(data_args: DataArguments, sampling_rate: int = 16000):
    """The data as an audio_text run prepares it: the shared checks plus the method's transcript checks."""
    return prepare_data(data_args, sampling_rate, transcript_checks(data_args))


def test_audiofolder_transcripts_survive_preparation(tmp_path):
    root = write_text_corpus(tmp_path / "corpus")
    prepared = prepare_text_data(DataArguments(data_dir=str(root), text_column_name="text"), 16000)
    splits = prepared.splits
    assert prepared.label_names == LABELS and not any(prepared.report.skipped_clips.values())
    for split in ("train", "validation", "test"):
        ds = splits[split]
        assert "text" in ds.column_names and "waveform" in ds.column_names
        for row in ds:
            assert row["text"].startswith(WORDS[LABELS[int(row["labels"])]])


def test_missing_transcript_is_an_error_naming_the_clip(tmp_path):
    root = write_text_corpus(
        tmp_path / "corpus", missing_text=("en_spk2_sad_1.wav",), blank_text=("en_spk3_angry_0.wav",)
    )
    with pytest.raises(ValueError, match=r"2 clip\(s\) of the train split have no transcript in column "
                                         r"'text'") as error:
        prepare_text_data(DataArguments(data_dir=str(root), text_column_name="text"), 16000)
    assert "en_spk2_sad_1.wav" in str(error.value) and "en_spk3_angry_0.wav" in str(error.value)
    # The shared flow alone does not check transcripts: audio_text's data_checks hook asks.
    assert len(prepare_data(DataArguments(data_dir=str(root), text_column_name="text"), 16000).splits["train"]) == 16


def test_missing_transcripts_skipped_and_counted(tmp_path):
    root = write_text_corpus(tmp_path / "corpus", missing_text=("en_spk2_sad_1.wav", "en_spk3_happy_0.wav"))
    prepared = prepare_text_data(DataArguments(data_dir=str(root), text_column_name="text", on_missing_text="skip"))
    splits, report = prepared.splits, prepared.report
    assert sorted(report.skipped_clips["train"]) == sorted(
        f"{root / name}: no transcript" for name in ("en_spk2_sad_1.wav", "en_spk3_happy_0.wav"))
    assert report.to_dict()["skipped_clips"]["train"] == 2 and any("without a "
                                                                   "transcript" in w for w in report.warnings)
    assert sum(len(ds) for ds in splits.values()) == 4 * 4 * 2 - 2
    assert all(text.strip() for ds in splits.values() for text in ds["text"])


def test_one_transcript_for_every_clip_is_a_data_warning(tmp_path):
    """A text column holding one value for every clip (a placeholder, a column mix-up) gives the text branch
    nothing to learn from: the run goes on, and the data report (run summary, metrics, card) says so."""
    root = write_text_corpus(tmp_path / "corpus")
    args = DataArguments(data_dir=str(root), text_column_name="text")
    assert not [w for w in prepare_text_data(args, 16000).report.warnings if "same transcript" in w]
    with open(root / "metadata.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    for row in rows:
        row["text"] = "placeholder"
    with open(root / "metadata.csv", "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    warnings = [w for w in prepare_text_data(args, 16000).report.warnings if "same transcript" in w]
    assert len(warnings) == 1 and "'placeholder'" in warnings[0] and "column 'text'" in warnings[0]
    assert "train" in warnings[0]


def test_missing_text_column_names_the_flag(tmp_path):
    root = write_text_corpus(tmp_path / "corpus")
    with pytest.raises(ValueError, match=r"'transcript' \(--text_column_name\) not found"):
        prepare_text_data(DataArguments(data_dir=str(root), text_column_name="transcript"), 16000)
    with pytest.raises(ValueError, match="set text_column_name"):
        require_text_column(DataArguments(data_dir=str(root)))


def test_hf_dataset_on_disk_keeps_its_text_column(tmp_path):
    rng = np.random.default_rng(0)
    rows = {"audio": [], "label": [], "speaker": [], "utterance": []}
    for s in range(4):
        for k, label in enumerate(LABELS):
            rows["audio"].append({"array": 0.1 * rng.standard_normal(4000).astype(np.float32), "sampling_rate": 8000})
            rows["label"].append(label)
            rows["speaker"].append(f"spk{s}")
            rows["utterance"].append(None if (s, k) == (3, 1) else f"{label} words {s}")
    ds = Dataset.from_dict(rows).cast_column("audio", Audio(sampling_rate=8000))
    DatasetDict(train=ds).save_to_disk(str(tmp_path / "ds"))
    args = DataArguments(dataset_path=str(tmp_path / "ds"), text_column_name="utterance", validation_fraction=0.25)
    with pytest.raises(ValueError, match=r"1 clip\(s\).*row \d+"):  # embedded audio has no file name: the row
        prepare_text_data(args, 16000)
    args.on_missing_text = "skip"
    splits = prepare_text_data(args, 16000).splits
    texts = [t for ds in splits.values() for t in ds["utterance"]]
    assert len(texts) == 15 and all(t.endswith(("0", "1", "2", "3")) for t in texts)


def test_iemocap_transcripts_and_missing_ones(tmp_path):
    root = make_iemocap(tmp_path)  # only dialog Ses01F_impro01 has a transcriptions file
    args = DataArguments(corpus=["iemocap"], corpus_root=[str(root)], labels=["angry", "happy", "neutral", "sad"],
                         label_map={"excited": "happy"}, fold_column_name="fold", test_fold=["Session2"],
                         text_column_name="text")
    report = DataReport()
    raw, _ = select_labels(load_raw_dataset(args), args, report)
    splits = make_splits(raw, args, report)
    with pytest.raises(ValueError, match=r"clip\(s\) of the \w+ split have no transcript in column 'text'.*Ses0"):
        check_transcripts(splits, args, report)
    args.on_missing_text = "skip"
    kept = check_transcripts(splits, args, report)
    assert [t for ds in kept.values() for t in ds["text"]] == ["Excuse me."]
    assert sum(len(names) for names in report.skipped_clips.values()) == sum(len(ds) for ds in splits.values()) - 1
    assert all(name.endswith(".wav: no transcript") for names in report.skipped_clips.values() for name in names)


def test_meld_transcripts_reach_the_splits(tmp_path):
    root = make_meld(tmp_path)
    args = DataArguments(corpus=["meld"], corpus_root=[str(root)], text_column_name="text")
    report = DataReport()
    raw, _ = select_labels(load_raw_dataset(args), args, report)
    splits = check_transcripts(make_splits(raw, args, report), args, report)
    assert set(splits["train"]["text"]) == {"Oh my God!", "I know.", "Whatever.", "Stop it!"}
    assert splits["test"]["text"] == ["Hi, \u201cyou\u201d.", "No."] and not report.skipped_clips


def test_collator_pads_both_modalities_and_cached_states(tmp_path):
    processor = tiny_processor()
    collator = AudioTextCollator(
        feature_extractor=processor.feature_extractor, sampling_rate=16000, processor=processor, text_column="text"
    )
    short, long = (len(processor.tokenizer(t)["input_ids"]) for t in ("stop", "what a lovely day"))
    assert short < long
    rows = [
        {
            "waveform": np.ones(800, np.float32),
            "labels": 1,
            "text": "stop",
            "teacher_logits": np.arange(4, dtype=np.float32),
            "teacher_text_hidden_states": np.ones((short, 2), np.float32),
        },
        {
            "waveform": np.ones(1600, np.float32),
            "labels": 2,
            "text": "what a lovely day",
            "teacher_logits": np.zeros(4, np.float32),
            "teacher_text_hidden_states": np.ones((long, 2), np.float32),
        },
    ]
    batch = collator(rows)
    assert batch["input_values"].shape == (2, 1600) and batch["audio_attention_mask"][0].sum() == 800
    assert batch["input_ids"].shape == (2, long) and batch["attention_mask"][0].sum() == short
    hidden = batch["teacher_text_hidden_states"]
    assert hidden.shape == (2, long, 2) and hidden[0, short:].abs().sum() == 0 and hidden[0, :short].min() == 1
    assert batch["labels"].tolist() == [1, 2] and batch["teacher_logits"].shape == (2, 4)
    rows[0]["teacher_text_hidden_states"] = np.ones((short + 1, 2), np.float32)
    with pytest.raises(ValueError, match="another tokenizer"):
        collator(rows)


# ------------------------------------------------------------------ multimodal demo corpus (plan only, no espeak)


def test_multimodal_demo_variant_leaves_the_default_corpus_alone():
    default, multimodal = demo_corpus._plan(0), demo_corpus._plan(0, multimodal=True)
    assert demo_corpus._version_key(0) != demo_corpus._version_key(0, multimodal=True)
    assert "multimodal" not in demo_corpus._parameters()
    assert all(c.text_leaning == "none" for c in default)
    # Same clips, speakers, splits and random draws; only the wording (and so the SSML text) may differ.
    for a, b in zip(default, multimodal):
        assert (a.file_name, a.label, a.split, a.gain_db, a.noise_seed) == (
            b.file_name,
            b.label,
            b.split,
            b.gain_db,
            b.noise_seed,
        )
        assert a.ssml.split(">")[1] == b.ssml.split(">")[1]  # the prosody tag
    assert demo_corpus._metadata_columns(True)[-2:] == ("text", "text_leaning")


def test_multimodal_demo_text_is_informative_but_not_sufficient():
    plan = demo_corpus._plan(0, multimodal=True)
    leaning = Counter(c.text_leaning != "none" for c in plan)
    assert 0.4 < leaning[True] / len(plan) < 0.6
    agree = [c.text_leaning == c.label for c in plan if c.text_leaning != "none"]
    assert 0.6 < np.mean(agree) < 0.8
    # A reader who takes the leaning as the label and guesses otherwise is right about half the time, not always.
    for clip in plan:
        pool = demo_corpus._LEANING_SENTENCES[clip.language]
        if clip.text_leaning == "none":
            assert clip.text in demo_corpus._SENTENCES[clip.language]
        else:
            assert clip.text in pool[clip.text_leaning]


# ------------------------------------------------------------------ predictions with transcripts


@pytest.fixture(scope="module")
def saved_model(tmp_path_factory):
    folder = tmp_path_factory.mktemp("model")
    processor = tiny_processor()
    tiny_model(processor).save_pretrained(folder)
    processor.save_pretrained(folder)
    return folder


def test_predict_with_a_transcript_csv_and_with_sidecars(saved_model, tmp_path):
    root = write_text_corpus(tmp_path / "clips", speakers=1, clips_per_label=1)
    from_csv = predict_audio_text(saved_model, root, transcripts=root / "metadata.csv", output=tmp_path / "p.csv",
                                  progress=False)
    assert len(from_csv) == 4 and all(p.label in LABELS for p in from_csv)
    with open(tmp_path / "p.csv") as handle:
        assert len(list(csv.DictReader(handle))) == 4
    with open(root / "metadata.csv") as handle:
        for row in csv.DictReader(handle):
            (root / row["file_name"]).with_suffix(".txt").write_text(row["text"])
    from_sidecars = predict_audio_text(saved_model, root, progress=False)
    assert [p.scores for p in from_sidecars] == [p.scores for p in from_csv]


def test_predict_names_a_file_without_transcript(saved_model, tmp_path):
    root = write_text_corpus(tmp_path / "clips", speakers=1, clips_per_label=1)
    with pytest.raises(TranscriptError, match=r"en_spk0_angry_0\.wav: no transcript in a sidecar file"):
        predict_audio_text(saved_model, root, progress=False)
    skipped = predict_audio_text(saved_model, root, on_error="skip", progress=False)
    assert all(p.error and p.label is None for p in skipped)


def test_cli_predict_takes_transcripts(saved_model, tmp_path):
    from hf_mtkd.cli.predict import main

    root = write_text_corpus(tmp_path / "clips", speakers=1, clips_per_label=1)
    predictions = main(["--model", str(saved_model), str(root), "--transcripts", str(root / "metadata.csv"),
                        "--output", str(tmp_path / "p.json"), "--no_progress"])
    assert len(predictions) == 4 and (tmp_path / "p.json").exists()
    expected = predict_audio_text(saved_model, root, transcripts=root / "metadata.csv", progress=False)
    assert [p.scores for p in predictions] == [p.scores for p in expected]
