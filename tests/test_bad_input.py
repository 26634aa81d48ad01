"""Bad input gets an error of ours naming the culprit, before any training, or a warning kept in the run summary.

One test (or a few) per row of the README table "bad input -> what you get". Runs that must fail early
point data_dir at a folder that does not exist: an error that came after data preparation would be
about that folder instead.
"""

import csv
import json
import os
import warnings
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
from safetensors.torch import save_file

from testing_utils import LABELS, tiny_recipe, write_tone_corpus
from hf_mtkd.arguments import DataArguments
from hf_mtkd.config_parser import RecipeError, load_recipe, parse_config
from hf_mtkd.data import TruncatedAudioWarning, decode_audio, prepare_data
from hf_mtkd.distillation.teachers import check_teacher_languages
from hf_mtkd.data.audio import as_sampling_rate
from hf_mtkd.data.wav_header import wav_shortfall
from hf_mtkd.registry import get_method
from hf_mtkd.training import SERTrainingArguments
from hf_mtkd.training.run import check_output_dir, run


def read_rows(root: Path) -> list[dict]:
    with open(root / "metadata.csv", newline="") as handle:
        return list(csv.DictReader(handle))


def write_rows(root: Path, rows: list[dict]) -> None:
    with open(root / "metadata.csv", "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


@pytest.fixture
def corpus(tmp_path) -> Path:
    """A fresh, editable copy of the two-language tone corpus (train/validation/test by a split column)."""
    return write_tone_corpus(tmp_path / "corpus")


def prepare(root, **kw):
    return prepare_data(DataArguments(data_dir=str(root), **kw), 16000)


# ------------------------------------------------------------------------------- training arguments


@pytest.mark.parametrize("override, key", [
    ({"max_steps": 0}, "max_steps"),
    ({"max_steps": -1, "num_train_epochs": 0}, "num_train_epochs"),
    ({"learning_rate": -0.001}, "learning_rate"),
    ({"weight_decay": -5}, "weight_decay"),
    ({"per_device_train_batch_size": 0}, "per_device_train_batch_size"),
    ({"per_device_eval_batch_size": 0}, "per_device_eval_batch_size"),
    ({"gradient_accumulation_steps": 0}, "gradient_accumulation_steps"),
])
def test_training_arguments_that_train_nothing_or_crash_later_are_refused_first(tmp_path, override, key):
    recipe = tiny_recipe(tmp_path / "no_such_data", tmp_path / "out", **override)
    with pytest.raises(ValueError, match=rf"^{key} must be"):
        run(get_method("finetune"), recipe=recipe)
    assert not (tmp_path / "out").exists()  # nothing written


# ---------------------------------------------------------------------------------------------- labels


def test_labels_given_as_a_string_is_refused(tmp_path):
    types = get_method("finetune").dataclass_types()
    with pytest.raises(ValueError, match=r"labels names 1 class\(es\) \['angry'\].*write a list"):
        parse_config(types, recipe=tiny_recipe(tmp_path, tmp_path / "o", labels="angry"))
    with pytest.raises(ValueError, match="labels must be a list of emotion names, got the string 'angry'"):
        DataArguments(data_dir="x", labels="angry")


def test_a_single_emotion_in_the_data_is_refused(corpus):
    rows = [row for row in read_rows(corpus) if row["label"] == "angry"]
    write_rows(corpus, rows)
    with pytest.raises(ValueError, match=r"single emotion \['angry'\]"):
        prepare(corpus)


def test_labels_with_surrounding_spaces_join_their_class_with_a_warning(corpus):
    rows = read_rows(corpus)
    for row in rows[::3]:
        row["label"] = f" {row['label']} "
    write_rows(corpus, rows)
    prepared = prepare(corpus)
    assert prepared.label_names == LABELS
    assert sum(len(ds) for ds in prepared.splits.values()) == len(rows)
    assert any("' angry '" in w and "spaces" in w for w in prepared.report.warnings)


def test_labels_differing_only_by_case_are_an_error_until_mapped(corpus):
    rows = read_rows(corpus)
    for row in rows[::4]:
        if row["label"] == "angry":
            row["label"] = "Angry"
    write_rows(corpus, rows)
    with pytest.raises(ValueError, match=r"differ only by case: 'Angry' \(\d+ rows\) vs 'angry'.*label_map"):
        prepare(corpus)
    assert prepare(corpus, label_map='{"Angry": "angry"}').label_names == LABELS


# ------------------------------------------------------------------------------------- classes and splits


def test_a_class_without_training_clips_is_an_error(corpus):
    write_rows(corpus, [row for row in read_rows(corpus) if not (row["split"] == "train" and row["label"] == "sad")])
    with pytest.raises(ValueError, match=r"Class\(es\) \['sad'\] have no training clips.*train: angry 4.*sad 0"):
        prepare(corpus)


def test_a_class_missing_from_test_is_a_warning_in_the_report(corpus):
    write_rows(corpus, [row for row in read_rows(corpus) if not (row["split"] == "test" and row["label"] == "sad")])
    prepared = prepare(corpus)
    assert prepared.label_names == LABELS
    assert [w for w in prepared.report.warnings if "['sad'] have no clips in the test split" in w]


def test_duplicate_rows_are_an_error_listing_them(corpus):
    rows = read_rows(corpus)
    twice = [rows[0], rows[20]]
    write_rows(corpus, rows + [dict(row, split="test") for row in twice])
    with pytest.raises(ValueError, match=r"lists 2 audio file\(s\) more than once") as err:
        prepare(corpus)
    for row in twice:
        assert row["file_name"] in str(err.value)


def test_test_speakers_in_training_warn_or_fail(corpus):
    rows = read_rows(corpus)
    for row in rows:
        if row["split"] == "test" and row["speaker"] == "en_spk0":
            row["speaker"] = "en_spk2"  # a training speaker
    write_rows(corpus, rows)
    prepared = prepare(corpus)
    assert [w for w in prepared.report.warnings if "1 of the 2 test speakers are also in train (en_spk2)" in w]
    with pytest.raises(ValueError, match=r"test speakers are also in train \(en_spk2\).*on_speaker_overlap: fail"):
        prepare(corpus, on_speaker_overlap="fail")


# ---------------------------------------------------------------------------------------------- audio


def _truncate(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: 44 + (len(data) - 44) // 2])  # header + half the samples


def test_truncated_wav_is_read_with_a_warning_naming_it(corpus):
    rows = read_rows(corpus)
    name = next(row["file_name"] for row in rows if row["split"] == "train")
    full = sf.info(corpus / name).duration
    _truncate(corpus / name)
    shortfall = wav_shortfall(corpus / name)
    assert shortfall is not None and shortfall.declared_bytes == 2 * round(full * 16000)
    assert wav_shortfall((corpus / rows[1]["file_name"]).read_bytes()) is None  # a whole file
    with pytest.warns(TruncatedAudioWarning, match=name):
        decode_audio(str(corpus / name), 16000)
    for _ in range(2):  # the second time the decoded audio comes from the datasets cache
        report = prepare(corpus).report
        assert len(report.truncated_clips["train"]) == 1 and name in report.truncated_clips["train"][0]
        assert [w for w in report.warnings if name in w and "less audio than their header declares" in w]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        decode_audio(str(corpus / rows[1]["file_name"]), 16000)  # a complete file
    assert not [w for w in caught if issubclass(w.category, TruncatedAudioWarning)]


def test_skipped_clips_are_counted_per_split_in_the_report(corpus):
    rows = read_rows(corpus)
    bad = [next(row["file_name"] for row in rows if row["split"] == split) for split in ("train", "test")]
    for name in bad:
        (corpus / name).write_bytes(b"not audio")
    report = prepare(corpus, on_bad_audio="skip").report
    assert report.to_dict()["skipped_clips"] == {"train": 1, "validation": 0, "test": 1}
    assert bad[0] in report.skipped_clips["train"][0] and bad[1] in report.skipped_clips["test"][0]
    assert [w for w in report.warnings if w.startswith("test: skipped 1 of 16 clips") and bad[1] in w]


# ---------------------------------------------------------------------------- errors from inside libraries


def test_empty_or_header_only_metadata_csv_is_named(corpus):
    (corpus / "metadata.csv").write_text("")
    with pytest.raises(ValueError, match=r"metadata.csv is empty"):
        prepare(corpus)
    (corpus / "metadata.csv").write_text("file_name,label,language,speaker,split\n")
    with pytest.raises(ValueError, match=r"metadata.csv has a header \(file_name,label,language,speaker,split\) but "
                                         r"no rows"):
        prepare(corpus)


@pytest.mark.parametrize("delimiter, shown", [(";", "';'"), ("\t", "tab")])
def test_metadata_csv_with_another_delimiter_is_named(corpus, delimiter, shown):
    rows = read_rows(corpus)
    with open(corpus / "metadata.csv", "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]), delimiter=delimiter)
        writer.writeheader()
        writer.writerows(rows)
    separated = rf"metadata.csv: its header .* is one column: the fields are separated by {shown}"
    with pytest.raises(ValueError, match=separated) as error:
        prepare(corpus)
    assert str(corpus / "metadata.csv") in str(error.value)


def test_duplicate_yaml_keys_are_an_error_naming_the_key_and_lines(tmp_path):
    path = tmp_path / "recipe.yaml"
    path.write_text("method: finetune\nlearning_rate: 0.1\nseed: 1\nlearning_rate: 0.2\n")
    with pytest.raises(RecipeError, match=r"recipe.yaml: key 'learning_rate' is given twice \(lines 2 and 4\)"):
        load_recipe(path)
    path.write_text("stages:\n  a: {method: finetune}\n  a: {method: mtkd}\n")
    with pytest.raises(RecipeError, match=r"key 'a' is given twice \(lines 2 and 3\)"):
        load_recipe(path)
    path.write_text("config_overrides: {hidden_size: 32, hidden_size: 64}\n")
    with pytest.raises(RecipeError, match=r"key 'hidden_size' is given twice \(lines 1 and 1\)"):
        load_recipe(path)
    path.write_text("base: &b {seed: 1}\nstage:\n  <<: *b\n  seed: 2\n")  # YAML merge keys stay allowed
    assert load_recipe(path)["stage"] == {"seed": 2}


def test_non_integer_sampling_rate_passed_to_the_predictor_is_named(tmp_path):
    from hf_mtkd.inference import EmotionPredictor
    from testing_utils import save_tiny_classifier

    save_tiny_classifier(tmp_path / "model", LABELS)
    predictor = EmotionPredictor(tmp_path / "model")
    clip = np.zeros(8000, dtype=np.float32)
    for rate in (22050.5, "16000", True, 0):
        with pytest.raises(ValueError, match=r"predict\(sampling_rate=\.\.\.\) must be a positive whole number of Hz"):
            predictor.predict(clip, sampling_rate=rate)
    assert predictor.predict(clip, sampling_rate=8000.0).num_chunks == 1  # a float holding a whole number is fine
    assert as_sampling_rate(np.int64(16000)) == 16000


def _half_written_checkpoint(folder: Path, with_state: bool) -> Path:
    path = folder / "checkpoint-4"
    path.mkdir(parents=True)
    save_file({"w": torch.zeros(256)}, path / "model.safetensors")
    data = (path / "model.safetensors").read_bytes()
    (path / "model.safetensors").write_bytes(data[: len(data) // 2])
    if with_state:
        (path / "trainer_state.json").write_text('{"global_step": 4}')
    return path


def test_resume_from_a_half_written_checkpoint_is_refused_naming_it(tmp_path):
    complete = tmp_path / "out" / "checkpoint-2"
    complete.mkdir(parents=True)
    (complete / "trainer_state.json").write_text('{"global_step": 2}')
    killed = _half_written_checkpoint(tmp_path / "out", with_state=False)
    args = SERTrainingArguments(output_dir=str(tmp_path / "out"), resume_from_checkpoint=str(killed), report_to="none")
    with pytest.raises(ValueError, match=r"checkpoint-4' is incomplete: no readable trainer_state.json.*checkpoint-2"):
        check_output_dir(args, {})
    damaged = _half_written_checkpoint(tmp_path / "other", with_state=True)
    args = SERTrainingArguments(
        output_dir=str(tmp_path / "other"), resume_from_checkpoint=str(damaged), report_to="none"
    )
    with pytest.raises(ValueError, match=r"model.safetensors is damaged"):
        check_output_dir(args, {})
    # Through the run: refused before the data (which does not exist) is touched.
    recipe = tiny_recipe(tmp_path / "no_such_data", tmp_path / "out", resume_from_checkpoint=str(killed))
    with pytest.raises(ValueError, match="is incomplete"):
        run(get_method("finetune"), recipe=recipe)


def test_output_folder_that_cannot_be_written_fails_before_data_and_training(tmp_path):
    # Tests run as root, for whom permission bits change nothing; these two fail for root too.
    blocker = tmp_path / "a_file"
    blocker.write_text("not a folder")
    for output_dir in (blocker / "run", tmp_path / ("x" * 300)):
        recipe = tiny_recipe(tmp_path / "no_such_data", output_dir)
        with pytest.raises(PermissionError, match=r"output_dir .* cannot be written"):
            run(get_method("finetune"), recipe=recipe)


# ----------------------------------------------------------------------------------------------- teachers


def test_teacher_of_a_language_absent_from_the_data_is_an_error(tone_corpus, tmp_path):
    with pytest.raises(ValueError, match=r"'fr' \(language 'fr'\) match no language of the training data "
                                         r"\(languages: \['en', 'fi'\]\)"):
        check_teacher_languages({"en": "en", "fr": "fr"}, ["en", "fi"])
    check_teacher_languages({"en": "en", "fi": "fi"}, ["en", "fi", "fr"])  # a language without teacher is fine
    # Through the run, before any teacher loads (these teacher paths do not exist).
    teachers = [
        {"model": str(tmp_path / "none_en"), "language": "en"},
        {"model": str(tmp_path / "none_de"), "language": "de"},
    ]
    recipe = tiny_recipe(tone_corpus, tmp_path / "out", method="mtkd", teachers=teachers, teacher_weighting="language")
    with pytest.raises(ValueError, match=r"'de' \(language 'de'\) match no language"):
        run(get_method("mtkd"), recipe=recipe)


# ------------------------------------------------------------------------------------- into the run summary


def test_data_report_reaches_the_run_summary_the_metrics_and_the_card(corpus, tmp_path):
    rows = read_rows(corpus)
    bad = next(row["file_name"] for row in rows if row["split"] == "train")
    bad_test = [row["file_name"] for row in rows if row["split"] == "test"][:2]
    for name in (bad, *bad_test):
        (corpus / name).write_bytes(b"not audio")
    write_rows(corpus, [row for row in rows if not (row["split"] == "validation" and row["label"] == "sad")])
    out = tmp_path / "run"
    summary = run(
        get_method("finetune"), recipe=tiny_recipe(corpus, out, on_bad_audio="skip", max_steps=1, n_bootstrap=0)
    )
    written = json.loads((out / "run_summary.json").read_text())
    assert written["data_report"] == json.loads(json.dumps(summary.data_report.to_dict()))
    report = written["data_report"]
    assert report["skipped_clips"] == {"train": 1, "validation": 0, "test": 2}
    assert bad in report["skipped_files"]["train"][0]
    assert any("no clips in the validation split" in w for w in report["warnings"])
    assert os.path.isfile(out / "model.safetensors")
    # Each split's metrics file: the data's warnings and that split's skipped clips.
    for split, skipped in (("validation", 0), ("test", 2)):
        metrics = json.loads((out / f"{split}_metrics.json").read_text())
        assert metrics["data_warnings"] == report["warnings"] and metrics["skipped_clips"] == skipped
        assert metrics == json.loads(json.dumps(summary.results[split]))  # the summary's results are the files
    # The model card: the skipped training clip beside the split's size, and the warnings.
    card = (out / "README.md").read_text()
    sizes = summary.sizes
    assert (f"- Clips: train {sizes['train']} (1 clip skipped), validation {sizes['validation']}, "
            f"test {sizes['test']} (2 clips skipped)") in card
    assert "## Data warnings" in card and "no clips in the validation split" in card.split("## Data warnings")[1]
    assert Path(bad).name in card and str(corpus) not in card
