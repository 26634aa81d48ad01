"""End-to-end runs of the training entry on a tiny model and audio written by the tests."""

import json

import pytest
import torch
from transformers import AutoModelForAudioClassification

from testing_utils import LABELS, TINY_W2V2, save_tiny_classifier, tiny_recipe
from hf_mtkd.config_parser import RecipeError, parse_config
from hf_mtkd.registry import get_method
from hf_mtkd.training.run import FINISHED_MARKER, run


def test_finetune_changes_parameters_and_writes_metrics(tone_corpus, tmp_path):
    out = tmp_path / "ft"
    recipe = tiny_recipe(tone_corpus, out, model_type=None, model_name_or_path=str(tmp_path / "init"))
    initial = save_tiny_classifier(tmp_path / "init", LABELS)
    summary = run(get_method("finetune"), recipe=recipe)
    trained = AutoModelForAudioClassification.from_pretrained(out)
    changed = [
        name for name, p in trained.named_parameters()
        if not torch.equal(p, initial.state_dict()[name])
    ]
    assert any("encoder.layers" in n for n in changed) and any("classifier" in n for n in changed)
    assert trained.config.id2label == dict(enumerate(LABELS))
    metrics = json.loads((out / "test_metrics.json").read_text())
    assert set(metrics["per_language"]) == {"en", "fi"}
    assert metrics["overall"]["n"] == 16 and len(metrics["overall"]["UR_ci"]) == 2
    assert summary["results"]["test"]["overall"]["WR"] == metrics["overall"]["WR"]
    assert (out / FINISHED_MARKER).exists() and (out / "preprocessor_config.json").exists()


def test_finished_run_is_not_overwritten(tone_corpus, tmp_path):
    out = tmp_path / "ft"
    run(get_method("finetune"), recipe=tiny_recipe(tone_corpus, out, max_steps=1))
    with pytest.raises(FileExistsError, match="finished run"):
        run(get_method("finetune"), recipe=tiny_recipe(tone_corpus, out, max_steps=1))
    run(get_method("finetune"), recipe=tiny_recipe(tone_corpus, out, max_steps=1, overwrite_output_dir=True))


def test_a_run_written_over_a_finished_run_keeps_nothing_of_it(tone_corpus, tmp_path):
    from hf_mtkd.hub import files_to_upload
    from hf_mtkd.mtkd.plots import TEACHER_WEIGHTS_FILE

    save_tiny_classifier(tmp_path / "t_en", LABELS, seed=1)
    out = tmp_path / "run"
    run(get_method("mtkd"), recipe=tiny_recipe(tone_corpus, out, method="mtkd", max_steps=1, save_strategy="steps",
                                               save_steps=1,
                                               teachers=[{"model": str(tmp_path / "t_en"), "language": "en"}]))
    assert (out / TEACHER_WEIGHTS_FILE).exists() and TEACHER_WEIGHTS_FILE in (out / "README.md").read_text()
    assert (out / "checkpoint-1" / "trainer_state.json").exists()
    run(get_method("finetune"), recipe=tiny_recipe(tone_corpus, out, max_steps=1, overwrite_output_dir=True))
    assert not (out / TEACHER_WEIGHTS_FILE).exists() and not (out / "checkpoint-1").exists()
    assert TEACHER_WEIGHTS_FILE not in (out / "README.md").read_text()
    assert TEACHER_WEIGHTS_FILE not in files_to_upload(out)
    assert json.loads((out / FINISHED_MARKER).read_text())["method"] == "finetune"


def test_mtkd_trains_student_only_and_logs_weights(tone_corpus, tmp_path):
    import hashlib

    teachers = []
    for i, lang in enumerate(("en", "fi")):
        # The fi teacher lists its labels in another order (test_teacher_alignment.py checks the targets).
        labels = LABELS if lang == "en" else ["happy", "neutral", "angry", "sad"]
        save_tiny_classifier(tmp_path / f"teacher_{lang}", labels, seed=i + 1)
        teachers.append({"model": str(tmp_path / f"teacher_{lang}"), "language": lang})
    teacher_files = {p: hashlib.sha256(p.read_bytes()).hexdigest() for p in tmp_path.glob("teacher_*/*")}
    initial = save_tiny_classifier(tmp_path / "init", LABELS, seed=0)
    recipe = tiny_recipe(
        tone_corpus, tmp_path / "mtkd", method="mtkd", teachers=teachers, model_type=None,
        model_name_or_path=str(tmp_path / "init"), teacher_weighting="language", kd_lambda=0.5, logging_steps=1,
    )
    summary = run(get_method("mtkd"), recipe=recipe)
    trained = AutoModelForAudioClassification.from_pretrained(tmp_path / "mtkd").state_dict()
    changed = [name for name, tensor in initial.state_dict().items() if not torch.equal(tensor, trained[name])]
    assert any("encoder.layers" in n for n in changed) and any("classifier" in n for n in changed)
    # The run writes nothing into the teachers' folders.
    assert {p: hashlib.sha256(p.read_bytes()).hexdigest() for p in tmp_path.glob("teacher_*/*")} == teacher_files
    weights = summary["teacher_weights_per_language"]
    # language routing: en samples go to the en teacher, fi samples to the fi teacher.
    assert weights == {"en": {"en": 1.0, "fi": 0.0}, "fi": {"en": 0.0, "fi": 1.0}}
    state = json.loads((tmp_path / "mtkd" / "trainer_state.json").read_text())
    logged = {k for entry in state["log_history"] for k in entry}
    assert {"ce_loss", "kd_loss", "teacher_weight/en", "teacher_weight/fi/fi"} <= logged


def test_mtkd_cache_gives_the_same_run_as_online_teachers(tone_corpus, tmp_path):
    # Clips cropped to one length, so online batches have no padding (which, without an attention
    # mask, changes a teacher's output; the cache runs each clip alone).
    save_tiny_classifier(tmp_path / "t_en", LABELS, seed=3)
    save_tiny_classifier(tmp_path / "t_fi", list(reversed(LABELS)), seed=4)
    teachers = [
        {"model": str(tmp_path / "t_en"), "language": "en"},
        {"model": str(tmp_path / "t_fi"), "language": "fi"},
    ]
    results = {}
    for cached in (False, True):
        out = tmp_path / f"mtkd_{cached}"
        recipe = tiny_recipe(tone_corpus, out, method="mtkd", teachers=teachers, use_teacher_logit_cache=cached,
                             max_steps=3, logging_steps=1, max_duration_seconds=0.3)
        run(get_method("mtkd"), recipe=recipe)
        results[cached] = AutoModelForAudioClassification.from_pretrained(out).state_dict()
    for name, tensor in results[False].items():
        assert torch.allclose(tensor, results[True][name], atol=1e-5), name


def test_mtkd_bad_teacher_inputs(tone_corpus, tmp_path):
    save_tiny_classifier(tmp_path / "t3", LABELS[:3])
    with pytest.raises(ValueError, match="missing from the teacher: \\['sad'\\]"):
        run(get_method("mtkd"), recipe=tiny_recipe(tone_corpus, tmp_path / "o1", method="mtkd",
                                                    teachers=[{"model": str(tmp_path / "t3"), "language": "en"}]))
    with pytest.raises(FileNotFoundError, match="does not exist"):
        run(get_method("mtkd"), recipe=tiny_recipe(tone_corpus, tmp_path / "o2", method="mtkd",
                                                    teachers=[{"model": str(tmp_path / "nope"), "language": "en"}]))
    with pytest.raises(ValueError, match="cannot be used with random_crop"):
        save_tiny_classifier(tmp_path / "t4", LABELS)
        run(get_method("mtkd"), recipe=tiny_recipe(tone_corpus, tmp_path / "o3", method="mtkd", random_crop=True,
                                                    train_window_seconds=0.3, use_teacher_logit_cache=True,
                                                    teachers=[{"model": str(tmp_path / "t4"), "language": "en"}]))


@pytest.mark.parametrize(
    "overrides, message",
    [
        ({"kd_lambda": 1.5}, "kd_lambda must be in"),
        ({"temperature": 0}, "temperature must be > 0"),
        ({"teachers": []}, "teachers is empty"),
        ({"teacher_weighting": "oracle"}, "teacher_weighting must be one of"),
        ({"teachers": [{"language": "en"}]}, "no `model` key"),
    ],
)
def test_mtkd_config_errors(overrides, message, tmp_path):
    recipe = tiny_recipe("x", tmp_path, method="mtkd", teachers=[{"model": "t", "language": "en"}])
    recipe.update(overrides)
    with pytest.raises(ValueError, match=message):
        parse_config(get_method("mtkd").dataclass_types(), recipe=recipe, config_path="r.yaml")


def test_recipe_unknown_key_and_wrong_type(tmp_path):
    with pytest.raises(RecipeError, match="unknown key\\(s\\) lerning_rate"):
        parse_config(
            get_method("finetune").dataclass_types(), recipe={**tiny_recipe("x", tmp_path), "lerning_rate": 1}
        )
    with pytest.raises(RecipeError):
        parse_config(
            get_method("finetune").dataclass_types(), recipe={**tiny_recipe("x", tmp_path), "max_steps": "many"}
        )


def test_cli_flags_override_recipe(tmp_path):
    path = tmp_path / "r.yaml"
    import yaml

    path.write_text(yaml.safe_dump(tiny_recipe("x", tmp_path)))
    _, data_args, training_args = parse_config(
        get_method("finetune").dataclass_types(), str(path), ["--max_steps", "7", "--max_duration_seconds", "2.5"]
    )
    assert training_args.max_steps == 7 and data_args.max_duration_seconds == 2.5


def test_dict_fields_parse_whatever_unions_typing_cached(tmp_path):
    # typing caches Unions: once Union[str, dict] exists, Union[dict, str] returns it, and a field
    # declared Union[dict, str] would become an argparse `dict` type. Our JSON fields are plain str.
    import typing

    typing.Union[str, dict]
    model_args, _, _ = parse_config(get_method("finetune").dataclass_types(), recipe=tiny_recipe("x", tmp_path))
    assert model_args.config_overrides == TINY_W2V2


def test_language_weighting_without_language_column_is_an_error(tone_corpus, tmp_path):
    save_tiny_classifier(tmp_path / "t", LABELS)
    recipe = tiny_recipe(tone_corpus, tmp_path / "o", method="mtkd", teacher_weighting="language",
                         language_column_name="no_such_column",
                         teachers=[{"model": str(tmp_path / "t"), "language": "en"}])
    with pytest.raises(ValueError, match="teacher_weighting=language needs a language column"):
        run(get_method("mtkd"), recipe=recipe)
