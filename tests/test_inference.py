"""Trained students in use: pipeline("audio-classification") round trips, the predict command, plots, curves."""

import csv
import importlib.util
import json
import re
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
from transformers import (
    AutoFeatureExtractor,
    AutoModelForAudioClassification,
    Wav2Vec2FeatureExtractor,
    pipeline,
)

from testing_utils import LABELS, TINY_W2V2, save_tiny_classifier, tiny_recipe
from hf_mtkd.cli.predict import main as predict_main
from hf_mtkd.data.audio import AudioDecodeError, decode_audio
from hf_mtkd.metrics.single_runs import collect_runs
from hf_mtkd.hub import StudentCard
from hf_mtkd.inference import EmotionPredictor, predict_files
from hf_mtkd.inference.predict import check_model_source
from hf_mtkd.registry import get_method
from hf_mtkd.mtkd.plots import TEACHER_WEIGHTS_FILE
from hf_mtkd.plots import matplotlib_available, plot_summary
from hf_mtkd.run_summary import RunSummary
from hf_mtkd.training.run import run

HAS_TENSORBOARD = importlib.util.find_spec("tensorboard") is not None


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    """Tiny models run much faster on one intra-op thread than on two contended ones (shared CI machines)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def ft_student(tone_corpus, tmp_path_factory):
    """A fine-tuned student; its training curves go to TensorBoard when tensorboard is installed."""
    out = tmp_path_factory.mktemp("ft") / "student"
    report_to = "tensorboard" if HAS_TENSORBOARD else "none"
    run(get_method("finetune"), recipe=tiny_recipe(tone_corpus, out, report_to=report_to, logging_steps=1))
    return out


@pytest.fixture(scope="module")
def mtkd_student(tone_corpus, tmp_path_factory):
    root = tmp_path_factory.mktemp("mtkd")
    teachers = []
    for seed, language in enumerate(("en", "fi")):
        save_tiny_classifier(root / f"teacher_{language}", LABELS, seed=seed + 1)
        teachers.append({"model": str(root / f"teacher_{language}"), "language": language})
    out = root / "student"
    run(get_method("mtkd"), recipe=tiny_recipe(tone_corpus, out, method="mtkd", teachers=teachers, kd_lambda=0.5))
    return out


@pytest.fixture(scope="module")
def sd_student(tone_corpus, tmp_path_factory):
    """A self-distillation model (hf_mtkd's early-exit class: loads after `import hf_mtkd`) with exits after layers
    1 and 2, each also exported as a stock transformers model in exits/layer_<a>."""
    out = tmp_path_factory.mktemp("sd") / "student"
    run(get_method("self_distillation"), recipe=tiny_recipe(
        tone_corpus, out, method="self_distillation", config_overrides={**TINY_W2V2, "num_hidden_layers": 3},
        exit_layers=[1, 2], head_hidden_size=16))
    return out


@pytest.fixture(scope="module")
def sd_exit_student(sd_student):
    return sd_student / "exits" / "layer_1"


STUDENTS = ["ft_student", "mtkd_student", "sd_student", "sd_exit_student"]


def tone(seconds, rate=16000, freq=300.0, channels=1, seed=0):
    t = np.arange(int(seconds * rate)) / rate
    wave = 0.3 * np.sin(2 * np.pi * freq * t) + 0.01 * np.random.default_rng(seed).standard_normal(t.size)
    if channels > 1:
        wave = np.stack([wave * (1.0 - 0.3 * c) for c in range(channels)], axis=1)
    return wave.astype(np.float32)


def direct_probabilities(path, windows) -> dict[str, float]:
    """{label: probability}: the saved model and feature extractor called here, each window alone, logits
    averaged over the windows, softmax."""
    model = AutoModelForAudioClassification.from_pretrained(path).eval()
    feature_extractor = AutoFeatureExtractor.from_pretrained(path)
    with torch.no_grad():
        logits = torch.stack(
            [
                model(**feature_extractor(window, sampling_rate=16000, return_tensors="pt")).logits[0]
                for window in windows
            ]
        )
    probabilities = logits.mean(0).softmax(-1)
    return {model.config.id2label[i]: probabilities[i].item() for i in range(len(probabilities))}


@pytest.mark.parametrize("student", STUDENTS)
def test_pipeline_round_trip(student, request, tmp_path):
    path = request.getfixturevalue(student)
    classifier = pipeline("audio-classification", model=str(path))
    wav = tmp_path / "clip.wav"
    sf.write(wav, tone(0.8), 16000)
    reference = direct_probabilities(path, [tone(0.8)])  # the model called here on the extracted features
    for result in (classifier(str(wav), top_k=None), classifier(tone(0.8), top_k=None)):
        assert sorted(row["label"] for row in result) == sorted(LABELS)  # emotion names, not LABEL_0
        assert {row["label"]: row["score"] for row in result} == pytest.approx(reference, abs=1e-4)
    # A clip shorter than one window: predict gives the pipeline's scores.
    prediction = EmotionPredictor(path).predict(wav)
    expected = {row["label"]: row["score"] for row in classifier(str(wav), top_k=None)}
    assert prediction.num_chunks == 1
    assert prediction.scores == pytest.approx(expected, abs=1e-5)
    assert prediction.label == max(expected, key=expected.get)


def test_long_stereo_file_at_44k_is_chunked_and_averaged(ft_student, tmp_path):
    wav = tmp_path / "long.wav"
    # A pitch that changes every half second, so that the windows differ and the averaging rule matters.
    audio = np.concatenate(
        [tone(0.5, rate=44100, channels=2, freq=f, seed=i) for i, f in enumerate((200, 450, 300, 700, 250, 600, 350))]
    )
    sf.write(wav, audio, 44100)
    predictor = EmotionPredictor(ft_student, chunk_seconds=1.0, batch_size=3)
    prediction = predictor.predict(wav)
    assert prediction.num_chunks == 4  # 0-1, 1-2, 2-3 and the last second, 2.5-3.5
    assert prediction.duration_seconds == pytest.approx(3.5, abs=1e-3)
    mono = decode_audio(str(wav), 16000)
    windows = [mono[s : s + 16000] for s in (0, 16000, 32000, mono.size - 16000)]
    # Reference 1: the model called here on each feature-extracted window, logits averaged, softmax.
    assert prediction.scores == pytest.approx(direct_probabilities(ft_student, windows), abs=1e-5)
    # Reference 2: the pipeline on each window, log-probabilities averaged (they differ from the window logits
    # by a per-window constant, which the softmax removes), then softmax.
    classifier = pipeline("audio-classification", model=str(ft_student))
    log_p = np.zeros(len(LABELS))
    for window in windows:
        for row in classifier({"raw": window, "sampling_rate": 16000}, top_k=None):
            log_p[LABELS.index(row["label"])] += np.log(row["score"]) / len(windows)
    expected = np.exp(log_p) / np.exp(log_p).sum()
    assert prediction.scores == pytest.approx(dict(zip(LABELS, expected)), abs=1e-5)
    mean_of_probabilities = {label: 0.0 for label in LABELS}
    for window in windows:
        for row in classifier({"raw": window, "sampling_rate": 16000}, top_k=None):
            mean_of_probabilities[row["label"]] += row["score"] / len(windows)
    assert prediction.scores != pytest.approx(mean_of_probabilities, abs=1e-5)  # the test can tell the rules apart
    # The same clip as an in-memory (time, channels) array at its own rate.
    from_array = predictor.predict(audio, sampling_rate=44100)
    assert from_array.scores == pytest.approx(prediction.scores, abs=1e-3)


def test_long_file_is_read_to_its_end(ft_student, tmp_path):
    # Two minutes: a low tone for the first 70 s, a high one after, so the windows past the first minute count.
    rate, seconds = 16000, 120
    t = np.arange(seconds * rate) / rate
    wave = np.where(t < 70, 0.3 * np.sin(2 * np.pi * 150 * t), 0.3 * np.sin(2 * np.pi * 600 * t)).astype(np.float32)
    path = tmp_path / "two_minutes.wav"
    sf.write(path, wave, rate, subtype="FLOAT")  # float WAV at the model's rate: decoded sample for sample
    prediction = EmotionPredictor(ft_student, chunk_seconds=1.0, batch_size=8).predict(path)
    assert prediction.duration_seconds == seconds and prediction.num_chunks == seconds

    # Reference: the model on every second of the written signal, logits averaged, then softmax.
    model = AutoModelForAudioClassification.from_pretrained(ft_student).eval()
    fe = Wav2Vec2FeatureExtractor.from_pretrained(ft_student)
    windows = list(wave.reshape(seconds, rate))
    with torch.no_grad():
        logits = torch.cat([model(fe(windows[i : i + 40], sampling_rate=rate, return_tensors="pt").input_values).logits
                            for i in range(0, seconds, 40)])
    expected = dict(zip(LABELS, logits.mean(0).softmax(-1).tolist()))
    assert prediction.scores == pytest.approx(expected, abs=1e-5)
    first_minute = dict(zip(LABELS, logits[:60].mean(0).softmax(-1).tolist()))
    assert max(abs(prediction.scores[k] - first_minute[k]) for k in LABELS) > 1e-3  # the end of the file counts


def write_folder(root: Path) -> list[Path]:
    (root / "sub").mkdir(parents=True)
    files = [root / "a.wav", root / "sub" / "b.flac", root / "sub" / "c.wav"]
    sf.write(files[0], tone(0.5, freq=200), 16000)
    sf.write(files[1], tone(1.7, rate=22050, channels=2, freq=500), 22050)
    sf.write(files[2], tone(0.3, rate=8000, freq=700), 8000)
    (root / "notes.txt").write_text("not audio")
    return files


@pytest.mark.parametrize("student", ["mtkd_student", "sd_exit_student"])
def test_predict_folder_to_csv_and_json(student, request, tmp_path, capsys):
    model = request.getfixturevalue(student)
    files = write_folder(tmp_path / "in")
    predict_main(["--model", str(model), str(tmp_path / "in"), "--output", str(tmp_path / "out.csv"),
                  "--chunk_seconds", "1.0"])
    assert "predict" in capsys.readouterr().err  # the progress bar
    with open(tmp_path / "out.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert [row["path"] for row in rows] == [str(f) for f in files]
    assert set(rows[0]) == {"path", "label", "score", "duration_seconds", "num_chunks", "error",
                            *(f"score_{label}" for label in LABELS)}
    for row in rows:
        assert row["label"] in LABELS and row["error"] == ""
        assert sum(float(row[f"score_{label}"]) for label in LABELS) == pytest.approx(1.0, abs=1e-4)
    assert [int(row["num_chunks"]) for row in rows] == [1, 2, 1]

    predictions = predict_files(model, [files[2], tmp_path / "in"], output=tmp_path / "out.json",
                                chunk_seconds=1.0, progress=False)
    saved = json.loads((tmp_path / "out.json").read_text())
    assert [p["path"] for p in saved] == [str(files[2])] + [str(f) for f in files]
    assert saved[0]["scores"] == pytest.approx(saved[3]["scores"])
    assert saved[1]["scores"] == pytest.approx({label: float(rows[0][f"score_{label}"]) for label in LABELS}, abs=1e-5)
    assert [p.label for p in predictions] == [p["label"] for p in saved]
    assert not list(tmp_path.glob(".*.tmp"))  # written atomically


def test_predict_bad_input(ft_student, tmp_path):
    with pytest.raises(FileNotFoundError, match="neither a file nor a folder"):
        predict_files(ft_student, tmp_path / "missing.wav", output=tmp_path / "out.csv")
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="No audio files"):
        predict_files(ft_student, tmp_path / "empty")
    good, bad = tmp_path / "good.wav", tmp_path / "bad.wav"
    sf.write(good, tone(0.5), 16000)
    bad.write_bytes(b"RIFF not really a wav")
    with pytest.raises(ValueError, match="extension must be one of"):
        predict_files(ft_student, good, output=tmp_path / "out.txt")
    with pytest.raises(AudioDecodeError, match="bad.wav"):
        predict_files(ft_student, [good, bad], progress=False)
    predictions = predict_files(ft_student, [good, bad], on_error="skip", progress=False, output=tmp_path / "o.csv")
    assert predictions[0].error is None and predictions[1].label is None and "bad.wav" in predictions[1].error
    with open(tmp_path / "o.csv", newline="") as handle:
        assert list(csv.DictReader(handle))[1]["error"].startswith(str(bad))
    with pytest.raises(ValueError, match="chunk_seconds must be > 0"):
        EmotionPredictor(ft_student, chunk_seconds=0)


def test_predict_names_a_missing_model_folder_and_a_damaged_weights_file(tmp_path, monkeypatch):
    """`--model out/nope` is a folder that is not there (not a Hub id to look up), and a truncated
    model.safetensors is named in the error, for the command and for the Python API."""
    from hf_mtkd.audio_text.predict import AudioTextPredictor

    monkeypatch.chdir(tmp_path)
    (tmp_path / "out").mkdir()
    sf.write(tmp_path / "clip.wav", tone(0.5), 16000)
    for missing in ("out/nope", "./nope", str(tmp_path / "nope"), "out/nope/"):
        with pytest.raises(FileNotFoundError, match=rf"^--model '{re.escape(missing)}': no such folder"):
            predict_main(["--model", missing, "clip.wav", "--output", "p.csv", "--no_progress"])
    with pytest.raises(FileNotFoundError, match="'out/nope': no such folder"):
        EmotionPredictor("out/nope")
    with pytest.raises(FileNotFoundError, match="'out/nope': no such folder"):
        AudioTextPredictor("out/nope")
    with pytest.raises(NotADirectoryError, match="--model 'clip.wav' is a file"):
        predict_main(["--model", "clip.wav", "clip.wav", "--output", "p.csv", "--no_progress"])
    assert check_model_source("org/student") == "org/student"  # a Hub id: from_pretrained's to resolve

    save_tiny_classifier(tmp_path / "model", LABELS, seed=0)
    weights = tmp_path / "model" / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])  # a copy that stopped half-way
    with pytest.raises(OSError, match=re.escape(str(Path("model") / "model.safetensors")) + " is damaged"):
        predict_main(["--model", "model", "clip.wav", "--output", "p.csv", "--no_progress"])
    with pytest.raises(OSError, match=re.escape(str(weights)) + " is damaged"):
        EmotionPredictor(tmp_path / "model")
    assert not (tmp_path / "p.csv").exists()


def private_copy(folder: Path, tmp_path: Path) -> Path:
    """A copy of a module-scoped run for a test that writes into it (plots, cards): other tests share the original."""
    return Path(shutil.copytree(folder, tmp_path / folder.name))


@pytest.mark.skipif(not matplotlib_available(), reason="matplotlib (hf_mtkd[plots]) is not installed")
def test_plots_and_card_of_an_mtkd_run(mtkd_student, tmp_path):
    mtkd_student = private_copy(mtkd_student, tmp_path)
    summary = RunSummary.load(mtkd_student / "run_summary.json")
    written = {p.name for p in plot_summary(summary, mtkd_student) + get_method("mtkd").figures(summary, mtkd_student)}
    assert written == {"test_confusion_matrix_en.png", "test_confusion_matrix_fi.png",
                       "test_confusion_matrix_overall.png", TEACHER_WEIGHTS_FILE}
    for name in written:
        assert (mtkd_student / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    text = StudentCard.from_output_dir(mtkd_student, repo_id="org/mtkd-student").save(mtkd_student).read_text()
    assert "![teacher weights](teacher_weights.png)" in text and "## Teachers" in text
    assert "| en | en | local checkpoint `teacher_en` |" in text and "| kd_lambda | 0.5 |" in text


def test_cards_of_a_self_distillation_run_and_of_an_exported_exit(sd_student, tmp_path):
    sd_student = private_copy(sd_student, tmp_path)
    sd_exit_student = sd_student / "exits" / "layer_1"
    summary = json.loads((sd_student / "run_summary.json").read_text())
    full = StudentCard.from_output_dir(sd_student, repo_id="org/sd-student").save(sd_student).read_text()
    assert "import hf_mtkd" in full and "Every head of the self-distillation model" in full
    heads = [line.split(" | ")[0].lstrip("| ") for line in full.splitlines()
             if line.startswith(("| layer_", "| deepest", "| fusion"))]
    assert heads[:3] == ["layer_1", "layer_2", "deepest"] and "fusion" in heads
    # The run wrote the exit's own summary and card; pushing the folder remakes the card from that summary.
    written = (sd_exit_student / "README.md").read_text()
    assert "the exit after transformer layer 1" in written and "Every head" not in written
    assert summary["exported_exits"] == {"1": "exits/layer_1", "2": "exits/layer_2"}  # relative: no local paths
    exit_summary = json.loads((sd_exit_student / "run_summary.json").read_text())
    assert exit_summary["results"]["test"] == summary["exits"]["layer_1"]["metrics"]
    assert "exits" not in exit_summary and json.loads((sd_exit_student / "training_args.json").read_text())
    exit_card = StudentCard.from_output_dir(sd_exit_student, repo_id="org/sd-exit-1").save(sd_exit_student).read_text()
    assert "the exit after transformer layer 1" in exit_card and "import hf_mtkd" not in exit_card
    ur = summary["exits"]["layer_1"]["metrics"]["overall"]["UR"]
    assert f"| overall | {summary['sizes']['test']} | {100 * ur:.1f}" in exit_card
    assert "self-distillation with early exits" in exit_card
    # A committed results table of the run has a row per head, in depth order, with its latency ratio.
    rows = json.loads(collect_runs({"sd": sd_student}, tmp_path / "results").read_text())["rows"]
    assert [row["model"].split()[1] for row in rows][:3] == ["layer_1", "layer_2", "deepest"]
    assert "x the deepest's latency)" in rows[0]["model"] and "fusion" in rows[-1]["model"]
    assert rows[0]["test"]["UR"] == ur


def test_plots_without_matplotlib(mtkd_student, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib now raises ImportError
    monkeypatch.setitem(sys.modules, "matplotlib.figure", None)
    monkeypatch.setitem(sys.modules, "matplotlib.backends.backend_agg", None)
    summary = RunSummary.load(mtkd_student / "run_summary.json")
    assert plot_summary(summary, tmp_path, skip_without_matplotlib=True) == []
    with pytest.raises(ImportError, match=r"hf_mtkd\[plots\]"):
        plot_summary(summary, tmp_path)


@pytest.mark.skipif(not HAS_TENSORBOARD, reason="tensorboard (hf_mtkd[tensorboard]) is not installed")
def test_training_curves_reach_tensorboard(ft_student):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    event_files = list((ft_student / "runs").glob("*/events.out.tfevents.*"))
    assert event_files
    events = EventAccumulator(str(event_files[0].parent))
    events.Reload()
    assert {"train/loss", "train/learning_rate"} <= set(events.Tags()["scalars"])
    assert len(events.Scalars("train/loss")) == 2  # logging_steps=1, max_steps=2


def test_predict_honours_torch_num_threads(tmp_path, monkeypatch):
    import hf_mtkd.utils.threads as threads

    model = tmp_path / "model"
    saved = save_tiny_classifier(model, LABELS)
    assert threads.saved_parameter_count(model) == sum(p.numel() for p in saved.parameters())
    (tmp_path / "in").mkdir()
    sf.write(tmp_path / "in" / "a.wav", (0.1 * np.sin(np.arange(8000) / 5.0)).astype(np.float32), 16000)
    before = torch.get_num_threads()
    monkeypatch.setattr(threads, "_STARTING_THREADS", 2)
    try:
        args = ["--model", str(model), str(tmp_path / "in"), "--output", str(tmp_path / "out.csv"), "--no_progress",
                "--device", "cpu"]
        predict_main(args + ["--torch_num_threads", "2"])
        assert torch.get_num_threads() == 2
        predict_main(args)  # auto: a tiny model, one thread
        assert torch.get_num_threads() == 1
        with pytest.raises(SystemExit, match="torch_num_threads must be 'auto' or a whole number"):
            predict_main(args + ["--torch_num_threads", "many"])
    finally:
        torch.set_num_threads(before)
