"""The synthetic demo corpus: layout, contents, splits, caching, atomic builds, errors."""

from __future__ import annotations

import csv
import dataclasses
import math
import os
import shutil

import numpy as np
import pytest
import soundfile as sf

from hf_mtkd.corpora import synthetic_demo as demo_corpus
from hf_mtkd.corpora.synthetic_demo import DEMO_LABELS, DEMO_LANGUAGES, build_demo_corpus

pytestmark = pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="needs the espeak-ng program")


@pytest.fixture(scope="session")
def corpus(tmp_path_factory):
    return build_demo_corpus(tmp_path_factory.mktemp("demo") / "corpus", seed=0)


@pytest.fixture(scope="session")
def rows(corpus):
    with open(corpus / "metadata.csv", newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def test_metadata_columns_and_coverage(corpus, rows):
    with open(corpus / "metadata.csv", encoding="utf-8") as f:
        assert f.readline().strip() == "file_name,label,language,speaker,split"
    assert len(rows) == 3 * 8 * 8 * 4  # languages x speakers x sentences x emotions
    assert {(r["language"], r["label"]) for r in rows} == {(la, lb) for la in DEMO_LANGUAGES for lb in DEMO_LABELS}
    assert {r["split"] for r in rows} == {"train", "validation", "test"}
    assert len({r["file_name"] for r in rows}) == len(rows)
    for r in rows:
        assert not os.path.isabs(r["file_name"]) and r["file_name"].startswith("audio/")
        assert r["speaker"].startswith(r["language"] + "_")


def test_speakers_disjoint_across_splits_in_every_language(rows):
    for language in DEMO_LANGUAGES:
        speakers = {
            split: {r["speaker"] for r in rows if r["language"] == language and r["split"] == split}
            for split in ("train", "validation", "test")
        }
        assert all(speakers.values()), speakers
        assert not speakers["train"] & speakers["validation"]
        assert not speakers["train"] & speakers["test"]
        assert not speakers["validation"] & speakers["test"]
        # every held-out speaker has all four emotions
        for split in ("validation", "test"):
            labels = {r["label"] for r in rows if r["language"] == language and r["split"] == split}
            assert labels == set(DEMO_LABELS)


def test_audio_is_16k_mono_finite_nonzero(corpus, rows):
    durations = []
    for r in rows:
        info = sf.info(corpus / r["file_name"])
        assert (info.samplerate, info.channels, info.subtype) == (16_000, 1, "PCM_16")
        durations.append(info.duration)
    assert 0.8 < min(durations) and max(durations) < 6.0
    for r in rows[::17]:
        audio, sr = sf.read(corpus / r["file_name"], dtype="float32")
        assert audio.ndim == 1 and np.isfinite(audio).all()
        assert np.sqrt(np.mean(audio**2)) > 1e-3


def test_second_call_is_a_cache_hit(corpus, monkeypatch):
    files = [corpus / "metadata.csv", *sorted((corpus / "audio").rglob("*.wav"))[:20]]
    mtimes = [p.stat().st_mtime_ns for p in files]

    def no_synthesis(*args, **kwargs):
        raise AssertionError("a cache hit synthesised audio")

    monkeypatch.setattr(demo_corpus, "_generate", no_synthesis)
    monkeypatch.setattr(demo_corpus, "_synthesize", no_synthesis)
    assert build_demo_corpus(corpus, seed=0) == corpus
    assert [p.stat().st_mtime_ns for p in files] == mtimes
    assert not [p for p in corpus.parent.iterdir() if p.name.startswith(".")]  # no temp folders left


def test_datasets_audiofolder_reads_metadata_columns(corpus, rows, tmp_path):
    datasets = pytest.importorskip("datasets")
    ds = datasets.load_dataset("audiofolder", data_dir=str(corpus), cache_dir=str(tmp_path))
    # One split (no folder is named after a split); the metadata file switches off
    # label inference from folder names, so there is no extra column.
    assert list(ds) == ["train"]
    assert ds["train"].column_names == ["audio", "label", "language", "speaker", "split"]
    assert ds["train"].num_rows == len(rows)
    sample = ds["train"].cast_column("audio", datasets.Audio(sampling_rate=16_000, decode=False))[0]
    assert sample["label"] in DEMO_LABELS and sample["language"] in DEMO_LANGUAGES


def test_default_root_uses_cache_env_and_version_key(monkeypatch, tmp_path):
    monkeypatch.setenv("HF_MTKD_CACHE", str(tmp_path))
    root = demo_corpus._default_root(0)
    assert root.parent == tmp_path / "demo_corpus"
    assert root.name == demo_corpus._version_key(0) != demo_corpus._version_key(1)
    monkeypatch.delenv("HF_MTKD_CACHE")
    assert demo_corpus._default_root(0).parent == demo_corpus.pathlib.Path.home() / ".cache/hf_mtkd/demo_corpus"


def test_version_key_follows_generation_parameters(monkeypatch):
    key = demo_corpus._version_key(0)
    monkeypatch.setattr(demo_corpus, "_SNR_DB", (10.0, 20.0))
    assert demo_corpus._version_key(0) != key


def test_plan_and_synthesis_are_deterministic():
    plan = demo_corpus._plan(3)
    assert plan == demo_corpus._plan(3)
    assert plan != demo_corpus._plan(4)
    assert [c.split for c in plan] == [c.split for c in demo_corpus._plan(4)]  # splits do not depend on the seed
    clip = plan[0]
    np.testing.assert_array_equal(demo_corpus._synthesize(clip), demo_corpus._synthesize(clip))


@pytest.fixture
def small_plan(monkeypatch):
    """Shrink the corpus to a few clips, for tests that build several times."""
    real = demo_corpus._plan
    monkeypatch.setattr(demo_corpus, "_plan", lambda seed: real(seed)[:6])


def test_force_and_new_parameters_rebuild_in_place(small_plan, tmp_path):
    target = tmp_path / "corpus"
    assert build_demo_corpus(target, seed=0) == target
    stamp = (target / ".demo_corpus.json").stat().st_mtime_ns
    build_demo_corpus(target, seed=0, force=True)
    assert (target / ".demo_corpus.json").stat().st_mtime_ns != stamp
    build_demo_corpus(target, seed=1)  # another seed: another key, so the corpus is replaced
    assert demo_corpus._read_stamp(target)["seed"] == 1
    assert len((target / "metadata.csv").read_text().splitlines()) == 1 + 6
    assert [p.name for p in tmp_path.iterdir()] == ["corpus"]  # no temp or old folders left


def test_builds_into_an_existing_empty_folder(small_plan, tmp_path):
    assert build_demo_corpus(tmp_path, seed=0) == tmp_path
    assert (tmp_path / "metadata.csv").is_file()


def test_failed_build_leaves_nothing_behind(monkeypatch, tmp_path):
    real = demo_corpus._synthesize
    calls = []

    def flaky(clip):
        calls.append(clip)
        if len(calls) == 5:
            raise RuntimeError("boom")
        return real(clip)

    monkeypatch.setattr(demo_corpus, "_synthesize", flaky)
    target = tmp_path / "corpus"
    with pytest.raises(RuntimeError, match="boom"):
        build_demo_corpus(target)
    assert list(tmp_path.iterdir()) == []


def test_refuses_to_overwrite_a_foreign_folder(tmp_path):
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(FileExistsError, match="refusing"):
        build_demo_corpus(tmp_path)
    assert (tmp_path / "notes.txt").read_text() == "mine"


def test_missing_espeak_gives_install_hint(monkeypatch, tmp_path):
    monkeypatch.setattr(demo_corpus, "_ESPEAK", "espeak-ng-that-does-not-exist")
    with pytest.raises(RuntimeError, match="apt-get install espeak-ng"):
        build_demo_corpus(tmp_path / "corpus")
    assert list(tmp_path.iterdir()) == []


def test_espeak_failure_names_voice_language_and_text():
    clip = demo_corpus._plan(0)[0]
    bad = dataclasses.replace(clip, voice="xx+nosuchvoice")
    with pytest.raises(RuntimeError, match=r"xx\+nosuchvoice.*'en'.*" + clip.text.split()[0]):
        demo_corpus._synthesize(bad)


def test_sad_is_slower_and_quieter_than_angry(corpus, rows):
    """Coarse check that the prosody reaches the audio (averaged over all speakers)."""

    def mean_stat(label, stat):
        values = []
        for r in rows:
            if r["label"] == label:
                audio, _ = sf.read(corpus / r["file_name"], dtype="float32")
                values.append(stat(audio))
        return float(np.mean(values))

    assert mean_stat("sad", len) > mean_stat("angry", len)
    rms = lambda a: math.sqrt(float(np.mean(a**2)))  # noqa: E731
    assert mean_stat("sad", rms) < mean_stat("angry", rms)
