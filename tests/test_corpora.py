"""Corpus readers: fake mini-corpora in each native layout, bad input, and the real EmoDB / RAVDESS copies."""

from __future__ import annotations

import logging
from collections import Counter
from pathlib import Path

import pytest
from datasets import Audio, DatasetDict

from hf_mtkd.corpora import (
    CORE_COLUMNS,
    CORPORA,
    FESC_FOLD_ORDER,
    CorpusLayoutError,
    get_reader,
    list_corpora,
    load_corpus,
)

from corpora_fakes import (
    N_SAMPLES,
    SR,
    make_cafe,
    make_crema_d,
    make_demos,
    make_emodb,
    make_fesc,
    make_iemocap,
    make_meld,
    make_ravdess,
    write_audio,
)

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
FOUR = ["angry", "happy", "neutral", "sad"]


def _only_train(ds: DatasetDict):
    assert isinstance(ds, DatasetDict) and list(ds) == ["train"]
    return ds["train"]


def _check_columns(split):
    assert tuple(split.column_names[: len(CORE_COLUMNS)]) == CORE_COLUMNS
    assert isinstance(split.features["audio"], Audio)
    for column in split.column_names[1:]:
        assert split.features[column].dtype == "string", column


# -- registry --------------------------------------------------------------------------------------


def test_registry_names_and_lookup():
    assert list_corpora() == ["cafe", "crema_d", "demos", "emodb", "fesc", "iemocap", "meld", "ravdess"]
    assert set(CORPORA) == set(list_corpora())
    assert get_reader("CREMA-D") is CORPORA["crema_d"] is get_reader("cremad")
    assert get_reader("IEMOCAP") is CORPORA["iemocap"]
    with pytest.raises(ValueError, match="known corpora: cafe, crema_d"):
        get_reader("tess")


def test_unknown_reader_option_is_a_type_error(tmp_path):
    with pytest.raises(TypeError, match="merge_exited"):
        load_corpus("iemocap", tmp_path, merge_exited=True)


# -- one fake corpus per reader --------------------------------------------------------------------


def test_emodb_fake(tmp_path):
    ds, report = load_corpus("emodb", make_emodb(tmp_path), return_report=True)
    train = _only_train(ds)
    _check_columns(train)
    assert len(train) == 10
    assert Counter(train["label"]) == {
        "angry": 3,
        "happy": 1,
        "neutral": 2,
        "sad": 1,
        "boredom": 1,
        "fear": 1,
        "disgust": 1,
    }
    assert set(train["speaker"]) == {"emodb_03", "emodb_08"}
    assert train["fold"] == train["speaker"]
    assert set(train["language"]) == {"de"}
    row = train[train["original_label"].index("L")]
    assert (row["label"], row["speaker"], row["gender"], row["text_id"]) == ("boredom", "emodb_08", "female", "a01")
    assert report.unknown_codes == {"X": 1} and "03a01Xa" in report.unknown_examples[0]
    assert report.unparsable == 1 and "notes.wav" in report.unparsable_examples[0]
    assert report.files_seen == 12  # the ._ file and the .lablaut file are not audio files


def test_ravdess_fake_and_options(tmp_path):
    root = make_ravdess(tmp_path)
    ds, report = load_corpus("ravdess", root, return_report=True)
    train = _only_train(ds)
    _check_columns(train)
    assert len(train) == 10
    assert Counter(train["label"]) == {
        "calm": 3,
        "neutral": 1,
        "happy": 1,
        "sad": 1,
        "angry": 1,
        "fear": 1,
        "disgust": 1,
        "surprise": 1,
    }
    assert Counter(train["speaker"]) == {"ravdess_01": 6, "ravdess_02": 4}
    assert set(zip(train["speaker"], train["gender"])) == {("ravdess_01", "male"), ("ravdess_02", "female")}
    assert train["fold"] == train["speaker"]
    happy = train[train["label"].index("happy")]
    assert (happy["original_label"], happy["intensity"], happy["vocal_channel"]) == ("03", "strong", "speech")
    assert report.unknown_codes == {"09": 1}
    assert sum(report.skipped.values()) == 2  # the song file and the video-only file

    calm = load_corpus("ravdess", root, calm_as_neutral=True)["train"]
    assert Counter(calm["label"])["neutral"] == 4 and "calm" not in calm["label"]
    assert Counter(calm["original_label"])["02"] == 3  # the corpus' own code stays

    both = load_corpus("ravdess", root, vocal_channels=["speech", "song"])["train"]
    assert len(both) == 11 and "song" in both["vocal_channel"]
    with pytest.raises(ValueError, match="vocal_channels"):
        load_corpus("ravdess", root, vocal_channels=["dance"])


def test_crema_d_fake(tmp_path):
    ds, report = load_corpus("crema_d", make_crema_d(tmp_path), return_report=True)
    train = _only_train(ds)
    _check_columns(train)
    assert len(train) == 6
    assert Counter(train["label"]) == {"angry": 1, "happy": 1, "neutral": 1, "sad": 1, "fear": 1, "disgust": 1}
    assert set(zip(train["speaker"], train["gender"])) == {("crema_d_1001", "male"), ("crema_d_1002", "female")}
    assert train["fold"] == train["speaker"]
    assert Counter(train["intensity"]) == {"unspecified": 3, "high": 1, "low": 1, "medium": 1}
    assert report.unknown_codes == {"CAL": 1}
    assert report.unparsable == 1
    reasons = " ".join(report.skipped)
    assert "git-lfs pointer" in reasons and "empty audio file" in reasons


def test_cafe_fake(tmp_path):
    ds, report = load_corpus("cafe", make_cafe(tmp_path), return_report=True)
    train = _only_train(ds)
    _check_columns(train)
    assert len(train) == 9
    assert Counter(train["label"]) == {
        "angry": 2,
        "happy": 1,
        "sad": 1,
        "neutral": 2,
        "disgust": 1,
        "fear": 1,
        "surprise": 1,
    }
    assert Counter(train["speaker"]) == {"cafe_01": 5, "cafe_02": 3, "cafe_07": 1}
    assert set(train["language"]) == {"fr"}
    neutral = train.filter(lambda row: row["label"] == "neutral")
    assert set(neutral["intensity"]) == {""} and set(neutral["sentence"]) == {"1", "5"}
    assert Counter(train["intensity"]) == {"low": 3, "high": 4, "": 2}
    assert report.unknown_codes == {"Z": 1}
    # The AIFF files decode.
    assert train[0]["audio"].get_all_samples().data.shape[-1] == N_SAMPLES


def test_demos_fake_folds(tmp_path):
    root = make_demos(tmp_path)
    ds, report = load_corpus("demos", root, return_report=True)
    train = _only_train(ds)
    _check_columns(train)
    assert len(train) == 8
    assert Counter(train["label"]) == {
        "angry": 1, "happy": 1, "guilt": 1, "neutral": 1, "sad": 1, "fear": 1, "disgust": 1, "surprise": 1,
    }  # fmt: skip
    assert Counter(train["speaker"]) == {"demos_01": 4, "demos_02": 3, "demos_03": 1}
    assert train["fold"] == train["speaker"]  # no fold files: the speaker
    assert set(zip(train["speaker"], train["gender"])) == {
        ("demos_01", "female"),
        ("demos_02", "male"),
        ("demos_03", "male"),
    }
    assert Counter(train["prototypicality"]) == {"PR": 5, "NP": 2, "": 1}
    assert report.unknown_codes == {"xyz": 1} and report.unparsable == 1

    # A folder of per-fold lists, found at <root>/folds/: unlisted files are kept as "unassigned" and noted.
    (root / "folds").mkdir()
    (root / "folds" / "train.csv").write_text("file\nPR_f_01_rab01a.wav\nNP_f_01_gio02b\nPR_m_02_tri01a.wav\n")
    (root / "folds" / "test.csv").write_text("DEMOS/PR_m_03_sor01a.wav\nPR_m_99_gone01a.wav\n")  # no header
    ds, report = load_corpus("demos", root, labels=["angry", "happy", "sad", "surprise"], return_report=True)
    train = _only_train(ds)
    assert dict(zip(train["original_label"], train["fold"])) == {
        "rab": "train",
        "gio": "train",
        "tri": "train",
        "sor": "test",
    }
    assert report.notes == {}  # the rows missing from the lists (col, neu, pau, dis) were dropped by labels
    ds, report = load_corpus("demos", root, return_report=True)
    assert sum(report.notes.values()) == 4 and Counter(ds["train"]["fold"])["unassigned"] == 4

    # One CSV with speaker -> fold, given explicitly.
    table = tmp_path / "speaker_folds.csv"
    table.write_text("speaker,fold\n01,devel\ndemos_02,train\n03,test\n")
    train = load_corpus("demos", root, fold_file=table)["train"]
    assert set(zip(train["speaker"], train["fold"])) == {
        ("demos_01", "devel"),
        ("demos_02", "train"),
        ("demos_03", "test"),
    }
    with pytest.raises(FileNotFoundError, match="fold_file"):
        load_corpus("demos", root, fold_file=tmp_path / "nope.csv")


def test_fesc_fake_and_filename_pattern(tmp_path):
    ds, report = load_corpus("fesc", make_fesc(tmp_path / "a"), return_report=True)
    train = _only_train(ds)
    _check_columns(train)
    assert len(train) == 8
    assert Counter(train["label"]) == {"angry": 3, "happy": 1, "neutral": 1, "sad": 2, "tender": 1}
    assert Counter(train["speaker"]) == {"fesc_TIRE": 6, "fesc_JARA": 2}
    assert set(train["fold"]) == {"TIRE", "JARA"} and set(train["fold"]) <= set(FESC_FOLD_ORDER)
    assert set(train["language"]) == {"fi"}
    assert report.unknown_codes == {"9": 1} and report.unparsable == 1
    # The papers' four classes drop tenderness, counted.
    ds, report = load_corpus("fesc", tmp_path / "a", labels=FOUR, return_report=True)
    assert len(ds["train"]) == 7 and report.dropped_by_label == {"tender": 1}

    flat = tmp_path / "b"
    for name in ["TIRE_1_001", "TIRE_3_002", "MIKO_4_001", "MIKO_x_002"]:
        write_audio(flat / "all" / f"{name}.wav")
    ds, report = load_corpus(
        "fesc", flat, filename_pattern=r"^(?P<speaker>[A-Z]{4})_(?P<emotion>[^_]+)_", return_report=True
    )
    train = _only_train(ds)
    assert sorted(zip(train["speaker"], train["label"])) == [
        ("fesc_MIKO", "sad"),
        ("fesc_TIRE", "angry"),
        ("fesc_TIRE", "neutral"),
    ]
    assert report.unknown_codes == {"x": 1}
    with pytest.raises(ValueError, match="emotion"):
        load_corpus("fesc", flat, filename_pattern=r"(?P<speaker>\w+)")


def test_iemocap_fake(tmp_path):
    root = make_iemocap(tmp_path)  # the parent of IEMOCAP_full_release
    ds, report = load_corpus("iemocap", root, return_report=True)
    train = _only_train(ds)
    _check_columns(train)
    assert len(train) == 8
    assert Counter(train["label"]) == {
        "neutral": 1, "frustrated": 1, "angry": 1, "no_agreement": 1, "excited": 2, "happy": 1, "sad": 1,
    }  # fmt: skip
    assert Counter(train["fold"]) == {"Session1": 6, "Session2": 2}
    assert Counter(train["speaker"]) == {
        "iemocap_Ses01F": 3,
        "iemocap_Ses01M": 3,
        "iemocap_Ses02F": 1,
        "iemocap_Ses02M": 1,
    }
    # Ses01M_script01_1_F000 is spoken by the session's female actor although the dialog name says M.
    by_id = {Path(a["path"]).stem: i for i, a in enumerate(train.cast_column("audio", Audio(decode=False))["audio"])}
    f000 = train[by_id["Ses01M_script01_1_F000"]]
    assert (f000["speaker"], f000["gender"], f000["original_label"]) == ("iemocap_Ses01F", "female", "exc")
    first = train[by_id["Ses01F_impro01_F000"]]
    assert (first["text"], first["dialog"], first["valence"], first["dominance"]) == (
        "Excuse me.",
        "Ses01F_impro01",
        "2.5000",
        "3.5000",
    )
    assert report.unknown_codes == {"zzz": 1}
    assert (
        sum(report.skipped.values()) == 1 and "Ses01F_impro01_M002" in next(iter(report.skipped_examples.values()))[0]
    )

    # The papers' 4-class setup: excited merged into happy, the rest dropped and counted.
    ds, report = load_corpus(
        "iemocap", root / "IEMOCAP_full_release", labels=FOUR, merge_excited=True, return_report=True
    )
    train = _only_train(ds)
    assert Counter(train["label"]) == {"neutral": 1, "angry": 1, "happy": 3, "sad": 1}
    assert report.dropped_by_label == {"frustrated": 1, "no_agreement": 1}
    assert Counter(train["original_label"])["exc"] == 2


def test_meld_fake_splits(tmp_path):
    root = make_meld(tmp_path, with_mp4=True)
    ds, report = load_corpus("meld", root, return_report=True)
    assert list(ds) == ["train", "validation", "test"]
    assert {split: len(d) for split, d in ds.items()} == {"train": 4, "validation": 2, "test": 2}
    for split, d in ds.items():
        _check_columns(d)
        assert set(d["fold"]) == {split}
    assert Counter(ds["train"]["label"]) == {"surprise": 1, "happy": 1, "neutral": 1, "angry": 1}
    assert ds["validation"]["label"] == ["sad", "disgust"]
    assert set(ds["train"]["speaker"]) == {"meld_Rachel", "meld_Monica", "meld_Chandler", "meld_Ross"}
    assert ds["test"][0]["text"] == "Hi, \u201cyou\u201d." and ds["test"][0]["sentiment"] == "negative"
    reasons = " ".join(report.skipped)
    assert "without its media" in reasons and "known to be corrupt" in reasons
    assert report.skipped_examples["CSV row without its media file"] == ["dev_splits_complete/dia110_utt7"]

    # MELD ships video: the audio track of an .mp4 decodes through the Audio feature.
    clip = ds["train"].cast_column("audio", Audio(decode=False))[0]["audio"]["path"]
    if not clip.endswith(".mp4"):
        pytest.skip("ffmpeg is not installed: no .mp4 clip could be made")
    samples = ds["train"][0]["audio"].get_all_samples()
    assert samples.sample_rate == SR and abs(samples.data.shape[-1] - N_SAMPLES) < SR // 20

    # The parent of MELD.Raw works; an absent split is left out.
    (root / "test_sent_emo.csv").unlink()
    ds = load_corpus("meld", tmp_path, skip_known_broken=False)
    assert list(ds) == ["train", "validation"] and len(ds["train"]) == 5


def test_fake_audio_decodes_lazily(tmp_path):
    train = load_corpus("emodb", make_emodb(tmp_path))["train"]
    samples = train[0]["audio"].get_all_samples()
    assert samples.sample_rate == SR and samples.data.shape == (1, N_SAMPLES)
    resampled = train.cast_column("audio", Audio(sampling_rate=8_000))[0]["audio"].get_all_samples()
    assert resampled.sample_rate == 8_000


# -- labels and label_map ----------------------------------------------------------------------------


def test_label_map_and_labels_are_counted_and_logged(tmp_path, caplog):
    root = make_emodb(tmp_path)
    with caplog.at_level(logging.INFO, logger="hf_mtkd.corpora"):
        ds, report = load_corpus(
            "emodb", root, labels=FOUR, label_map={"boredom": "neutral", "angry": "angry"}, return_report=True
        )
    train = ds["train"]
    assert Counter(train["label"]) == {"angry": 3, "happy": 1, "neutral": 3, "sad": 1}
    assert train["original_label"].count("L") == 1  # boredom kept its own code
    assert report.dropped_by_label == {"fear": 1, "disgust": 1}
    assert report.kept == {"train": Counter({"angry": 3, "neutral": 3, "happy": 1, "sad": 1})}
    logged = caplog.text
    assert "dropped 2 rows: disgust=1, fear=1" in logged
    assert "dropped 1 rows whose label code is not in the reader's table (never mapped): X=1" in logged
    assert "dropped 1 files whose names are not in the expected form" in logged
    assert "dropped by the label selection" in report.summary()


def test_label_selection_errors(tmp_path, caplog):
    root = make_emodb(tmp_path)
    with pytest.raises(ValueError, match="no rows left"):
        load_corpus("emodb", root, labels=["calm"])
    with caplog.at_level(logging.WARNING, logger="hf_mtkd.corpora"):
        load_corpus("emodb", root, labels=["angry", "anger"])
    assert "['anger'] were asked for but no row has them" in caplog.text
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="hf_mtkd.corpora"):
        train = load_corpus("emodb", root, label_map={"L": "neutral"})["train"]
    assert "label_map key 'L' is a label code" in caplog.text and "boredom" in train["label"]
    with pytest.raises(TypeError, match="list of emotion names"):
        load_corpus("emodb", root, labels="angry")
    with pytest.raises(ValueError, match="non-empty emotion names"):
        load_corpus("emodb", root, label_map={"boredom": None})


# -- bad roots ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(CORPORA))
def test_missing_root_names_root_and_layout(tmp_path, name):
    missing = tmp_path / "no_such_corpus"
    with pytest.raises(FileNotFoundError) as err:
        load_corpus(name, missing)
    assert str(missing) in str(err.value) and "Expected layout" in str(err.value)


@pytest.mark.parametrize("name", sorted(CORPORA))
def test_empty_root_is_a_layout_error(tmp_path, name):
    with pytest.raises(CorpusLayoutError, match="Expected layout: .*<root>"):
        load_corpus(name, tmp_path)


def test_other_layout_is_a_layout_error(tmp_path):
    ravdess = make_ravdess(tmp_path / "ravdess")
    with pytest.raises(CorpusLayoutError) as err:
        load_corpus("emodb", ravdess)
    message = str(err.value)
    assert "SSTTTEV" in message and "names not in the expected form" in message
    with pytest.raises(CorpusLayoutError, match=r"Session\{1..5\}/dialog/EmoEvaluation"):
        load_corpus("iemocap", ravdess)
    with pytest.raises(CorpusLayoutError, match="AAAA_SSS_EEE_LL"):
        load_corpus("crema_d", ravdess)
    meld = make_meld(tmp_path / "meld")
    for folder in ("train_splits",):
        for file in (meld / folder).iterdir():
            file.unlink()
        (meld / folder).rmdir()
    with pytest.raises(CorpusLayoutError, match="train_sent_emo.csv is there but none of its media folders"):
        load_corpus("meld", meld)


def test_root_that_is_a_file(tmp_path):
    file = write_audio(tmp_path / "03a01Fa.wav")
    with pytest.raises(NotADirectoryError, match="Expected layout"):
        load_corpus("emodb", file)


# -- the real corpora in ../shared/data ------------------------------------------------------------


@pytest.mark.skipif(not (SHARED_DATA / "emodb").is_dir(), reason=f"no EmoDB copy at {SHARED_DATA / 'emodb'}")
def test_real_emodb():
    train = _only_train(load_corpus("emodb", SHARED_DATA / "emodb"))
    assert len(train) == 535
    assert len(set(train["speaker"])) == 10
    assert Counter(train["original_label"]) == {"W": 127, "L": 81, "N": 79, "F": 71, "A": 69, "T": 62, "E": 46}
    assert Counter(train["label"]) == {
        "angry": 127,
        "boredom": 81,
        "neutral": 79,
        "happy": 71,
        "fear": 69,
        "sad": 62,
        "disgust": 46,
    }
    assert set(train["gender"]) == {"male", "female"}
    samples = train[0]["audio"].get_all_samples()  # FLAC re-encode, 16 kHz
    assert samples.sample_rate == 16_000 and samples.data.shape[-1] > 16_000 // 2


@pytest.mark.skipif(not (SHARED_DATA / "ravdess").is_dir(), reason=f"no RAVDESS copy at {SHARED_DATA / 'ravdess'}")
def test_real_ravdess():
    train = _only_train(load_corpus("ravdess", SHARED_DATA / "ravdess"))
    assert len(train) == 1440
    assert len(set(train["speaker"])) == 24
    counts = Counter(train["label"])
    assert counts.pop("neutral") == 96 and set(counts.values()) == {192} and len(counts) == 7
    assert Counter(train["gender"]) == {"male": 720, "female": 720}
    four = load_corpus("ravdess", SHARED_DATA / "ravdess", labels=FOUR, calm_as_neutral=True)["train"]
    assert Counter(four["label"]) == {"neutral": 288, "happy": 192, "sad": 192, "angry": 192}
    assert four[0]["audio"].get_all_samples().sample_rate == 16_000
