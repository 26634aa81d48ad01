"""Faults: crash-safe outputs, bad and odd inputs, safety (remote code, pickles, Hub tokens), loss numerics.

Resuming a killed run is in test_resume.py.
"""

import csv
import json
import logging
import os
import re
import signal
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
import yaml
from datasets import Dataset, Features, List, Value, load_from_disk
from safetensors.torch import load_file
from transformers import (
    ASTFeatureExtractor,
    AutoModelForAudioClassification,
    Wav2Vec2FeatureExtractor,
)

import hf_mtkd
from testing_utils import (
    LABELS,
    TINY_W2V2,
    save_tiny_classifier,
    tiny_audio_classifier,
    tiny_recipe,
    write_tone_corpus,
)
from hf_mtkd.arguments import DataArguments, ModelArguments
from hf_mtkd.config_parser import RecipeError, load_recipe, parse_config
from hf_mtkd.data import AudioClassificationCollator, AudioDecodeError, decode_audio
from hf_mtkd.registry import get_method
from hf_mtkd.distillation.cache import add_teacher_logits
from hf_mtkd.distillation.teachers import TeacherSpec
from hf_mtkd.mtkd.losses import cosine_teacher_weights, language_teacher_weights, multi_teacher_kd_loss
from hf_mtkd.distillation.teachers import load_teacher, teacher_label_index
from hf_mtkd.self_distillation.losses import SIMILARITIES, self_distillation_loss
from hf_mtkd.training import SERTrainer, SERTrainingArguments
from hf_mtkd.training.outputs import STAGING_DIR, last_complete_checkpoint
from hf_mtkd.utils.atomic import write_json_atomic
from hf_mtkd.data import prepare_data
from hf_mtkd.training.run import FINISHED_MARKER, check_output_dir, run
from hf_mtkd.training.run_record import RUN_RECORD, RunMismatchError, finish_record, start_record



# ------------------------------------------------------------------------------------------ atomic outputs


class Killed(BaseException):
    """Stands for the process dying: nothing after it runs, no except clause catches it."""


def test_final_model_save_is_atomic(tmp_path):
    out = tmp_path / "out"
    model = tiny_audio_classifier()
    args = SERTrainingArguments(
        output_dir=str(out), report_to="none", eval_strategy="no", load_best_model_at_end=False
    )
    trainer = SERTrainer(
        model=model, args=args, processing_class=Wav2Vec2FeatureExtractor(return_attention_mask=False)
    )
    trainer.save_model()
    first = load_file(out / "model.safetensors")

    # Death in the middle of writing the weights: output_dir keeps the previous, complete save.
    original = model.save_pretrained

    def dies_half_way(save_directory, **kwargs):
        Path(save_directory, "model.safetensors").write_bytes(b"half a file")
        raise Killed

    model.save_pretrained = dies_half_way
    with torch.no_grad():
        model.classifier.weight.add_(1.0)
    with pytest.raises(Killed):
        trainer.save_model(_internal_call=True)  # what run() calls (no push): staged as well
    assert all(torch.equal(load_file(out / "model.safetensors")[k], v) for k, v in first.items())
    assert AutoModelForAudioClassification.from_pretrained(out).config.id2label == dict(enumerate(LABELS))
    assert (out / STAGING_DIR).exists()  # what the dead process left, out of the way

    # The next save replaces everything, removes weight shards of an older save and the staging folder.
    (out / "model-00001-of-00002.safetensors").write_bytes(b"stale shard")
    (out / "model.safetensors.index.json").write_text("{}")
    model.save_pretrained = original
    trainer.save_model()
    saved = load_file(out / "model.safetensors")
    assert torch.equal(saved["classifier.weight"], model.classifier.weight.detach())
    assert not (out / STAGING_DIR).exists()
    assert (
        not (out / "model-00001-of-00002.safetensors").exists() and not (out / "model.safetensors.index.json").exists()
    )
    assert {"config.json", "preprocessor_config.json", "training_args.bin"} <= {p.name for p in out.iterdir()}


def test_json_outputs_are_replaced_whole(tmp_path, monkeypatch):
    path = tmp_path / "train_results.json"
    write_json_atomic({"loss": 1.0}, path)
    import hf_mtkd.training.outputs as outputs

    def dies(*args):
        raise Killed

    monkeypatch.setattr(outputs.os, "replace", dies)
    with pytest.raises(Killed):
        write_json_atomic({"loss": 2.0, "more": list(range(1000))}, path)
    assert json.loads(path.read_text()) == {"loss": 1.0}


#: A run's recorded state (hf_mtkd.training.run_record.run_state) as these tests fake it.
STATE = {
    "recipe_sha256": "r",
    "data_sha256": "d",
    "recipe": {"learning_rate": 0.1},
    "data": {"source": "x", "files": 1},
}


def _checkpoint(out: Path, step: int, state: str | None = '{"global_step": 0}') -> Path:
    folder = out / f"checkpoint-{step}"
    folder.mkdir(parents=True)
    (folder / RUN_RECORD).write_text(json.dumps(STATE))
    (folder / "model.safetensors").write_bytes(b"x")
    if state is not None:
        (folder / "trainer_state.json").write_text(state)
    return folder


def test_checkpoint_being_written_when_killed_is_ignored(tmp_path, caplog):
    out = tmp_path / "run"
    good = _checkpoint(out, 2)
    _checkpoint(out, 4, state=None)  # killed before trainer_state.json
    _checkpoint(out, 6, state='{"global_st')  # killed while writing it
    with caplog.at_level(logging.WARNING, logger="hf_mtkd"):
        assert last_complete_checkpoint(str(out)) == str(good)
    assert "checkpoint-4: incomplete" in caplog.text and "checkpoint-6: incomplete" in caplog.text
    args = SERTrainingArguments(output_dir=str(out), report_to="none")
    assert check_output_dir(args, STATE) == str(good)


def test_overwriting_a_finished_run_removes_its_files_and_only_those(tmp_path):
    out = tmp_path / "run"
    out.mkdir()
    (out / "precious.txt").write_text("the user's")  # there before the run: never hf_mtkd's to delete
    start_record(str(out), STATE)
    _checkpoint(out, 8)
    (out / "sub").mkdir()
    (out / "sub" / "figure.png").write_bytes(b"png")
    (out / "model.safetensors").write_bytes(b"w")
    finish_record(str(out))
    (out / FINISHED_MARKER).write_text("{}")
    (out / "notes.md").write_text("added by the user after the run")
    with pytest.raises(FileExistsError, match="finished run"):
        check_output_dir(SERTrainingArguments(output_dir=str(out), report_to="none"), STATE)
    assert check_output_dir(SERTrainingArguments(output_dir=str(out), report_to="none", overwrite_output_dir=True),
                            STATE) is None
    # The run's files are gone (a crash of the new run leaves an unfinished folder, never the old marker over new
    # files); the user's stay.
    assert not (out / FINISHED_MARKER).exists() and not (out / "checkpoint-8").exists()
    assert not (out / "sub").exists() and not (out / "model.safetensors").exists()
    assert (out / "precious.txt").read_text() == "the user's" and (out / "notes.md").exists()
    # The new run's record lists the files it found as foreign.
    assert json.loads((out / RUN_RECORD).read_text())["foreign"] == ["notes.md", "precious.txt"]


def test_a_finished_run_without_a_file_list_is_not_overwritten(tmp_path):
    out = tmp_path / "run"
    out.mkdir()
    (out / "precious.txt").write_text("x")
    (out / FINISHED_MARKER).write_text("{}")
    args = SERTrainingArguments(output_dir=str(out), report_to="none", overwrite_output_dir=True)
    with pytest.raises(FileExistsError, match="without the record of the files it wrote"):
        check_output_dir(args, STATE)
    assert (out / "precious.txt").exists() and (out / FINISHED_MARKER).exists()


def test_a_checkpoint_of_another_run_is_refused_naming_what_differs(tmp_path):
    out = tmp_path / "run"
    other = _checkpoint(out, 3)
    args = SERTrainingArguments(output_dir=str(out), report_to="none")
    changed = {**STATE, "recipe_sha256": "r2", "recipe": {"learning_rate": 0.5}}
    with pytest.raises(RunMismatchError, match=r"checkpoint-3 was written by another run.*learning_rate: 0.1 -> 0.5"):
        check_output_dir(args, changed)
    with pytest.raises(RunMismatchError, match=r"checkpoint-3 was written by another run: its data"):
        check_output_dir(args, {**STATE, "data_sha256": "d2"})
    (other / RUN_RECORD).unlink()  # copied from a Trainer outside hf_mtkd
    with pytest.raises(RunMismatchError, match=r"checkpoint-3 records no recipe or data"):
        check_output_dir(args, STATE)
    # Explicitly named: the same check.
    from safetensors.torch import save_file

    save_file({"w": torch.zeros(2)}, other / "model.safetensors")
    explicit = SERTrainingArguments(
        output_dir=str(tmp_path / "b"), report_to="none", resume_from_checkpoint=str(other)
    )
    with pytest.raises(RunMismatchError, match="records no recipe"):
        check_output_dir(explicit, STATE)
    # Nothing was written while refusing.
    assert not (out / RUN_RECORD).exists() and not (tmp_path / "b" / RUN_RECORD).exists()


def test_an_unfinished_run_of_another_recipe_is_refused_then_overwritten_without_foreign_files(tmp_path):
    out = tmp_path / "run"
    out.mkdir()
    (out / "precious.txt").write_text("x")
    start_record(str(out), STATE)
    _checkpoint(out, 2)
    changed = {**STATE, "recipe_sha256": "r2", "recipe": {"learning_rate": 0.5}}
    with pytest.raises(RunMismatchError, match="unfinished run of another recipe"):
        check_output_dir(SERTrainingArguments(output_dir=str(out), report_to="none"), changed)
    args = SERTrainingArguments(output_dir=str(out), report_to="none", overwrite_output_dir=True)
    assert check_output_dir(args, changed) is None
    assert not (out / "checkpoint-2").exists() and (out / "precious.txt").exists()
    assert json.loads((out / RUN_RECORD).read_text())["recipe_sha256"] == "r2"


# The child process of the test below: builds the cache and dies by SIGKILL in its second batch. A fresh
# interpreter, not a fork: forking a process whose torch threads are running can deadlock the child.
CACHE_BUILD_KILLED = """
import os, signal, sys
from datasets import load_from_disk
from transformers import Wav2Vec2FeatureExtractor
import hf_mtkd.distillation.cache as cache
from hf_mtkd.distillation.teachers import TeacherSpec
from hf_mtkd.distillation.teachers import load_teacher

labels, teacher_dir, dataset_dir = sys.argv[1].split(","), sys.argv[2], sys.argv[3]
fe = Wav2Vec2FeatureExtractor(return_attention_mask=False)
teacher = load_teacher(TeacherSpec(model=teacher_dir, language="en"), labels, fe)
calls, original = [], cache.teacher_logits_for_batch

def dies_on_fifth_clip(*args, **kwargs):
    calls.append(1)
    if len(calls) == 5:
        os.kill(os.getpid(), signal.SIGKILL)
    return original(*args, **kwargs)

cache.teacher_logits_for_batch = dies_on_fifth_clip
cache.add_teacher_logits(load_from_disk(dataset_dir), [teacher], fe, max_samples=16000, batch_size=4)
"""


def test_teacher_logit_cache_killed_mid_build_leaves_no_cache_file(tmp_path):
    import subprocess
    import sys

    teacher_dir = tmp_path / "teacher"
    # student class j = its [2, 0, 1, 3][j]
    save_tiny_classifier(teacher_dir, ["happy", "neutral", "angry", "sad"], seed=5)
    fe = Wav2Vec2FeatureExtractor(return_attention_mask=False)
    rng = np.random.default_rng(0)
    features = Features({"waveform": List(Value("float32")), "labels": Value("int64")})
    data = {
        "waveform": [rng.standard_normal(1600 + 80 * i).astype(np.float32) for i in range(12)],
        "labels": [i % 4 for i in range(12)],
    }
    Dataset.from_dict(data, features=features).save_to_disk(str(tmp_path / "ds"))
    ds = load_from_disk(str(tmp_path / "ds"))
    teacher = load_teacher(TeacherSpec(model=str(teacher_dir), language="en"), LABELS, fe)

    env = dict(os.environ, OMP_NUM_THREADS="1", HF_DATASETS_OFFLINE="1", HF_HUB_OFFLINE="1")
    child = subprocess.run([sys.executable, "-c", CACHE_BUILD_KILLED, ",".join(LABELS), str(teacher_dir),
                            str(tmp_path / "ds")], env=env, capture_output=True, text=True, timeout=300)
    assert child.returncode == -signal.SIGKILL, child.stderr[-3000:]
    # datasets writes a map's output to a temporary file and renames it when complete: the kill leaves that
    # tmp file in the fill's own folder, and no cache file.
    folders = list((tmp_path / "ds").glob("hf_mtkd-teacher-logits-*"))
    assert len(folders) == 1 and not list(folders[0].glob("*.arrow"))
    assert len([p for p in folders[0].iterdir() if p.name.startswith("tmp")]) == 1

    cached = add_teacher_logits(ds, [teacher], fe, max_samples=16000, batch_size=4)
    assert [Path(f["filename"]) for f in cached.cache_files] == [folders[0] / "teacher_logits.arrow"]
    assert not [p for p in folders[0].iterdir() if p.name.startswith("tmp")]  # the next fill removed it
    with torch.no_grad():
        for i in (0, 7, 11):
            inputs = fe(data["waveform"][i], sampling_rate=16000, return_tensors="pt")
            expected = teacher.model(inputs["input_values"]).logits[0, [2, 0, 1, 3]]
            assert np.allclose(cached[i]["teacher_logits"][0], expected.numpy(), atol=1e-5)


# ------------------------------------------------------------------------------------ bad and odd inputs

HOUR_RATE = 8000


@pytest.fixture(scope="module")
def hour_long_clip(tmp_path_factory) -> Path:
    """One hour at 8 kHz (16-bit PCM, 58 MB): ten seconds of tone, then silence."""
    path = tmp_path_factory.mktemp("hour") / "hour.wav"
    t = np.arange(10 * HOUR_RATE) / HOUR_RATE
    with sf.SoundFile(path, "w", samplerate=HOUR_RATE, channels=1, subtype="PCM_16") as handle:
        handle.write((0.3 * np.sin(2 * np.pi * 300 * t)).astype(np.float32))
        silence = np.zeros(60 * HOUR_RATE, dtype=np.float32)
        for _ in range(60):
            handle.write(silence)
    return path


def test_hour_long_clip_decodes_only_what_is_kept(hour_long_clip, monkeypatch):
    from torchcodec.decoders import AudioDecoder

    def whole_file(self):
        raise AssertionError("decoded the whole hour")

    monkeypatch.setattr(AudioDecoder, "get_all_samples", whole_file)
    waveform = decode_audio(str(hour_long_clip), 16000, max_seconds=6.0)
    assert waveform.shape == (96000,)
    spectrum = np.abs(np.fft.rfft(waveform[:16000]))
    assert abs(np.argmax(spectrum) - 300) <= 2  # the tone at the start, resampled to 16 kHz


def write_odd_corpus(root: Path, hour_clip: Path) -> Path:
    """Valid but awkward audio in one audiofolder: 8 kHz, 16 kHz, 48 kHz stereo, all-zero clips, and one hour."""
    root.mkdir(parents=True)
    kinds = [("8k", 8000, 1), ("16k", 16000, 1), ("48k_stereo", 48000, 2), ("silent", 16000, 1)]
    rows = []
    for split in ("train", "validation", "test"):
        for k, label in enumerate(LABELS):
            for kind, rate, channels in kinds:
                t = np.arange(int(0.5 * rate)) / rate
                wave = np.zeros_like(t) if kind == "silent" else 0.3 * np.sin(2 * np.pi * 150 * (k + 1) * t)
                if channels == 2:
                    wave = np.stack([wave, 0.5 * wave], axis=1)
                # no split name in file names: audiofolder would split on it
                name = f"spk_{split[:2]}_{label}_{kind}.wav"
                sf.write(root / name, wave.astype(np.float32), rate)
                rows.append({"file_name": name, "label": label, "speaker": f"{split}_spk", "split": split})
    os.symlink(hour_clip, root / "long.wav")
    rows.append({"file_name": "long.wav", "label": "angry", "speaker": "train_spk", "split": "train"})
    with open(root / "metadata.csv", "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return root


def test_odd_but_valid_audio_is_decoded_and_trains(tmp_path, hour_long_clip):
    root = write_odd_corpus(tmp_path / "odd", hour_long_clip)
    args = DataArguments(data_dir=str(root), max_duration_seconds=1.0)
    train = prepare_data(args, 16000).splits["train"]
    waveforms = list(train["waveform"])
    lengths = [len(w) for w in waveforms]
    # 0.5 s clips at 8, 16 and 48 kHz are all 8000 samples at 16 kHz; the hour is cropped to max_duration_seconds.
    assert len(train) == 17 and sorted(set(lengths)) == [8000, 16000] and lengths.count(16000) == 1
    assert sum(1 for w in waveforms if not np.abs(w).any()) == 4  # silent clips are kept: they are valid audio
    stereo = [w for w in waveforms if 0 < np.abs(w).max() < 0.24]  # channels averaged: (0.3 + 0.15) / 2
    assert len(stereo) == 4

    # Silent clips through the feature extractor (x - mean) / sqrt(var + 1e-7) and the model: finite.
    batch = AudioClassificationCollator(Wav2Vec2FeatureExtractor(return_attention_mask=False), 16000)(
        [train[i] for i in range(len(train))])
    assert torch.isfinite(batch["input_values"]).all()
    assert torch.isfinite(tiny_audio_classifier()(**batch).loss)

    out = tmp_path / "run"
    run(
        get_method("finetune"),
        recipe=tiny_recipe(root, out, logging_steps=1, max_steps=3, per_device_train_batch_size=8, n_bootstrap=0),
    )
    losses = [
        entry["loss"]
        for entry in json.loads((out / "trainer_state.json").read_text())["log_history"]
        if "loss" in entry
    ]
    assert len(losses) == 3 and np.isfinite(losses).all()


def test_non_finite_samples_in_a_float_wav_are_named_or_skipped(tmp_path, caplog):
    root = write_tone_corpus(tmp_path / "c", languages=("en",))
    rows = list(csv.DictReader(open(root / "metadata.csv")))
    train = [row["file_name"] for row in rows if row["split"] == "train"]
    bad = train[0], train[2]  # angry and happy: skipping both clips of one class would leave it untrained (an error)
    for name, value in zip(bad, (np.nan, np.inf)):
        wave, rate = sf.read(root / name, dtype="float32")
        wave[len(wave) // 2] = value
        sf.write(root / name, wave, rate, subtype="FLOAT")  # a float WAV can hold NaN and inf
    with pytest.raises(AudioDecodeError, match=re.escape(bad[0]) + ".*NaN or infinite"):
        prepare_data(DataArguments(data_dir=str(root)), 16000)
    with caplog.at_level(logging.WARNING):
        prepared = prepare_data(DataArguments(data_dir=str(root), on_bad_audio="skip"), 16000)
    assert len(prepared.splits["train"]) == len(train) - 2
    assert "skipped 2 of 8" in caplog.text and bad[1] in caplog.text
    assert prepared.report.to_dict()["skipped_clips"]["train"] == 2


def test_corrupt_and_empty_files_are_named_when_cropping_on_decode(tmp_path):
    corrupt, empty, header_only = tmp_path / "corrupt.wav", tmp_path / "empty.flac", tmp_path / "header_only.wav"
    corrupt.write_bytes(b"RIFF\x00\x00\x00\x00WAVEgarbage")
    empty.write_bytes(b"")
    sf.write(header_only, np.zeros(0, dtype=np.float32), 16000)
    for path in (corrupt, empty, header_only):
        with pytest.raises(AudioDecodeError, match=path.name):
            decode_audio(str(path), 16000, max_seconds=6.0)


def test_teacher_with_labels_outside_the_students_is_refused():
    with pytest.raises(ValueError, match=r"not in the student's label set: \['fear'\]"):
        teacher_label_index([*LABELS, "fear"], LABELS, "en")
    assert teacher_label_index(list(reversed(LABELS)), LABELS, "fi").tolist() == [3, 2, 1, 0]


@pytest.mark.parametrize("cached", [False, True], ids=["online", "cache"])
def test_teachers_of_other_architectures_get_their_own_inputs(tone_corpus, tmp_path, monkeypatch, cached):
    # A spectrogram transformer (AST) and a HuBERT fed at 8 kHz with an attention mask teach a wav2vec2 student.
    save_tiny_classifier(
        tmp_path / "ast",
        list(reversed(LABELS)),
        seed=1,
        feature_extractor=ASTFeatureExtractor(max_length=64, num_mel_bins=32),
        model_type="audio-spectrogram-transformer",
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        patch_size=16,
        frequency_stride=16,
        time_stride=16,
        max_length=64,
        num_mel_bins=32,
    )
    save_tiny_classifier(tmp_path / "hubert", LABELS, seed=2, model_type="hubert", **TINY_W2V2,
                         feature_extractor=Wav2Vec2FeatureExtractor(sampling_rate=8000, return_attention_mask=True))
    import hf_mtkd.distillation.cache as cache
    import hf_mtkd.mtkd.trainer as trainer

    seen = []
    for module in (trainer, cache):
        original = module.teacher_logits_for_batch

        def spy(teachers, model_inputs, teacher_inputs, original=original, **kwargs):
            seen.append((tuple(model_inputs["input_values"].shape),
                         [{k: tuple(v.shape) for k, v in inputs.items()} for inputs in teacher_inputs]))
            return original(teachers, model_inputs, teacher_inputs, **kwargs)

        monkeypatch.setattr(module, "teacher_logits_for_batch", spy)
    out = tmp_path / "mtkd"
    teachers = [
        {"model": str(tmp_path / "ast"), "language": "en"},
        {"model": str(tmp_path / "hubert"), "language": "fi"},
    ]
    summary = run(
        get_method("mtkd"),
        recipe=tiny_recipe(
            tone_corpus,
            out,
            method="mtkd",
            teachers=teachers,
            use_teacher_logit_cache=cached,
            logging_steps=1,
            n_bootstrap=0,
        ),
    )
    assert seen
    for student_shape, (ast_inputs, hubert_inputs) in seen:
        assert ast_inputs == {"input_values": (student_shape[0], 64, 32)}  # (batch, frames, mel bins)
        # HuBERT hears the same clips at half the rate, with its own attention mask.
        assert hubert_inputs["attention_mask"] == hubert_inputs["input_values"]
        assert abs(hubert_inputs["input_values"][1] * 2 - student_shape[1]) <= 2
    state = json.loads((out / "trainer_state.json").read_text())
    losses = [entry["kd_loss"] for entry in state["log_history"] if "kd_loss" in entry]
    assert losses and np.isfinite(losses).all() and min(losses) > 0
    assert set(summary["teacher_weights_per_language"]["en"]) == {"en", "fi"}


def test_wrong_yaml_types_name_the_key(tmp_path):
    types = get_method("finetune").dataclass_types()
    path = tmp_path / "r.yaml"
    base = tiny_recipe("x", tmp_path / "o")
    cases = {
        "max_steps: ten": r"key 'max_steps': invalid int value: 'ten'",
        "learning_rate: [0.1, 0.2]": r"key 'learning_rate' takes a single value",
        "random_crop: maybe": r"key 'random_crop': Truthy value expected",
        "per_device_train_batch_size: 2.5": r"key 'per_device_train_batch_size': invalid int value",
        "max_duration_seconds: {a: 1}": r"key 'max_duration_seconds': invalid float value",
        "labels: [{a: 1}]": r"key 'labels' takes a list of plain values",
        "seed: true": r"key 'seed': invalid int value: 'true'",
        "lerning_rate: 0.1": r"unknown key\(s\) lerning_rate",
    }
    for line, message in cases.items():
        key = line.split(":")[0]  # replaces the recipe's own value (a key given twice is an error of its own)
        path.write_text(yaml.safe_dump({k: v for k, v in base.items() if k != key}) + line + "\n")
        with pytest.raises(RecipeError, match=message):
            parse_config(types, str(path))
    # YAML reads 1e-3 as a string; as a flag value it is a float like any other.
    path.write_text(yaml.safe_dump({k: v for k, v in base.items() if k != "learning_rate"}) + "learning_rate: 1e-3\n")
    assert load_recipe(path)["learning_rate"] == "1e-3"
    assert parse_config(types, str(path))[2].learning_rate == pytest.approx(1e-3)
    with pytest.raises(ValueError, match="config_overrides must be a mapping"):
        parse_config(types, recipe={**base, "config_overrides": [1, 2]})


# ------------------------------------------------------------------------------------------------- safety


def test_remote_code_is_off_by_default_and_passed_through(tmp_path, monkeypatch):
    assert ModelArguments(model_type="wav2vec2").trust_remote_code is False
    source = Path(hf_mtkd.__file__).parent
    offenders = [str(p) for p in source.rglob("*.py") if re.search(r"trust_remote_code\s*=\s*True", p.read_text())]
    assert not offenders

    save_tiny_classifier(tmp_path / "m", LABELS)
    import hf_mtkd.modeling_utils as modeling_utils
    import hf_mtkd.distillation.teachers as teachers

    calls = []
    original = modeling_utils.load_pretrained

    def spy(cls, name, what, **kwargs):
        calls.append((what, kwargs.get("trust_remote_code", False)))
        return original(cls, name, what, **kwargs)

    monkeypatch.setattr(modeling_utils, "load_pretrained", spy)
    monkeypatch.setattr(teachers, "load_pretrained", spy)
    for trust in (False, True):
        calls.clear()
        model_args = ModelArguments(model_name_or_path=str(tmp_path / "m"), trust_remote_code=trust)
        _, fe = modeling_utils.build_audio_classifier(model_args, LABELS)
        load_teacher(
            TeacherSpec(model=str(tmp_path / "m")), LABELS, fe, trust_remote_code=model_args.trust_remote_code
        )
        assert {what for what, _ in calls} >= {"student", "student config", "feature extractor", "teacher 'm'"}
        assert all(flag is trust for _, flag in calls), calls


# torch.load / pickle calls allowed to read pickles: (file, reason). Everything else must be weights_only=True.
# None: cards are built from training_args.json (see test_hub's malicious-pickle push).
PICKLE_ALLOWED: dict[str, str] = {}


def test_no_pickle_is_loaded_from_files():
    source = Path(hf_mtkd.__file__).parent
    found = []
    for path in source.rglob("*.py"):
        for line in path.read_text().splitlines():
            if re.search(r"\b(torch\.load|pickle\.loads?|dill\.loads?)\(", line) and "weights_only=True" not in line:
                found.append(path.relative_to(source).as_posix())
    assert set(found) <= set(PICKLE_ALLOWED), found


def test_hub_token_never_written_or_logged(tone_corpus, tmp_path, monkeypatch, caplog, capfd):
    token = "hf_FaultsTestToken0123456789abcdefABCDEFxyz"
    monkeypatch.setenv("HF_TOKEN", token)
    out = tmp_path / "run"
    # Also given as hub_token: the Trainer pickles its arguments next to the weights (training_args.bin).
    recipe = tiny_recipe(tone_corpus, out, hub_token=token, log_level="info", save_strategy="steps", save_steps=1,
                         n_bootstrap=0)
    with caplog.at_level(logging.INFO):
        run(get_method("finetune"), recipe=recipe)
    from hf_mtkd.hub.card import StudentCard

    StudentCard.from_output_dir(out, repo_id="someone/student").save(out)
    captured = capfd.readouterr()
    assert token not in captured.out + captured.err + caplog.text
    files = [p for p in out.rglob("*") if p.is_file()]
    assert any(p.name == "README.md" for p in files) and any(p.name == "training_args.bin" for p in files)
    assert [str(p) for p in files if token.encode() in p.read_bytes()] == []
    # Weights as safetensors only, in the final folder and in every checkpoint.
    model_dirs = [out, *sorted(out.glob("checkpoint-*"))]
    assert len(model_dirs) == 3
    for folder in model_dirs:
        assert (folder / "model.safetensors").exists()
        assert {p.name for p in folder.glob("*.bin")} == {"training_args.bin"}  # arguments, not weights


# ----------------------------------------------------------------------------------------------- numerics

LOW_PRECISION = [torch.bfloat16, torch.float16]


@pytest.mark.parametrize("dtype", LOW_PRECISION, ids=["bf16", "fp16"])
def test_mtkd_loss_finite_with_huge_logits_and_an_absent_class(dtype):
    torch.manual_seed(0)
    batch, classes = 16, 4
    student = (torch.randn(batch, classes) * 1e4).to(dtype).requires_grad_()
    teachers = (torch.randn(3, batch, classes) * 1e4).to(dtype)
    labels = torch.randint(0, classes - 1, (batch,))  # the last class is absent from the batch
    languages = torch.randint(-1, 2, (batch,))  # -1: a language with no teacher
    for per_sample in (False, True):
        cosine = cosine_teacher_weights(student, teachers, 0.25, per_sample=per_sample)
        for weights in (cosine, language_teacher_weights(languages, torch.tensor([0, 1, 5]), cosine)):
            assert torch.isfinite(weights).all()
            for direction in ("forward", "reverse"):
                for reduction in ("batchmean", "mean"):
                    for temperature in (1.0, 5.0):
                        student.grad = None
                        loss, parts = multi_teacher_kd_loss(student, teachers, labels, weights, kd_lambda=0.25,
                                                            temperature=temperature, direction=direction,
                                                            reduction=reduction)
                        loss.backward()
                        assert torch.isfinite(loss) and torch.isfinite(parts["ce"]) and torch.isfinite(parts["kl"])
                        assert torch.isfinite(student.grad).all()


@pytest.mark.parametrize("dtype", [*LOW_PRECISION, torch.float32], ids=["bf16", "fp16", "fp32"])
def test_cosine_weights_of_an_all_zero_student_row(dtype):
    teachers = torch.randn(3, 4, 5).to(dtype)
    student = torch.randn(4, 5).to(dtype)
    student[1] = 0
    per_sample = cosine_teacher_weights(student, teachers, 0.25, per_sample=True)
    assert torch.isfinite(per_sample).all()
    assert torch.allclose(per_sample[1], torch.full((3,), 1 / 3))  # cosine with a zero vector is 0 for every teacher
    assert torch.isfinite(cosine_teacher_weights(torch.zeros(4, 5, dtype=dtype), teachers, 0.25)).all()
    zero_teacher = teachers.clone()
    zero_teacher[0] = 0
    assert torch.isfinite(cosine_teacher_weights(student, zero_teacher, 0.25, per_sample=True)).all()


@pytest.mark.parametrize("dtype", LOW_PRECISION, ids=["bf16", "fp16"])
@pytest.mark.parametrize("similarity", SIMILARITIES)
def test_self_distillation_loss_finite_with_huge_values_and_an_absent_class(dtype, similarity):
    torch.manual_seed(0)
    batch, classes, dim = 16, 4, 32
    deep = (torch.randn(batch, classes) * 1e4).to(dtype).requires_grad_()
    exits = [(torch.randn(batch, classes) * 1e4).to(dtype).requires_grad_() for _ in range(3)]
    labels = torch.randint(0, classes - 1, (batch,))  # the last class is absent
    for scale in (1e4, 0.0):  # huge embeddings, and all-zero ones (cosine of zero vectors)
        deep_repr = (torch.randn(batch, dim) * scale).to(dtype)
        exit_reprs = [(torch.randn(batch, dim) * scale).to(dtype).requires_grad_() for _ in range(3)]
        loss, parts = self_distillation_loss(deep, exits, labels, deep_repr, exit_reprs, similarity=similarity,
                                             temperature=2.0, detach_deep_target=False)
        loss.backward()
        assert torch.isfinite(loss), (similarity, scale, {k: v for k, v in parts.items() if v.dim() == 0})
        assert all(torch.isfinite(v).all() for v in parts.values())
        assert all(torch.isfinite(t.grad).all() for t in (deep, *exits, *exit_reprs))
