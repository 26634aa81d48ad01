"""Every recipe under recipes/ parses with no unknown keys and smoke-runs (tiny model, max_steps=1)
on small corpora written here in the recipe's own data layout (SpeechBrain-style recipe tests)."""

import json
from pathlib import Path

import pytest

from testing_utils import (
    LABELS,
    RECIPES,
    SMOKE,
    TINY_W2V2,
    assert_promised_outputs,
    save_tiny_classifier,
    write_tone_corpus,
)
from corpora_fakes import make_cafe, make_fesc, make_iemocap, write_emodb, write_ravdess
from hf_mtkd.config_parser import load_recipe, parse_config
from hf_mtkd.registry import get_method
from hf_mtkd.metrics.axes import FOLDS
from hf_mtkd.multi_stage import (
    axis_recipes,
    check_fold_recipes,
    check_stage_references,
    pipeline_axis,
    run_pipeline,
)
from hf_mtkd.training.run import run

# A pipeline is a YAML with stages (pipeline.yaml, or e.g. iemocap/meta_curriculum_all_folds.yaml); the rest are flat.
RECIPE_FILES = sorted(p for p in RECIPES.rglob("*.yaml") if "accelerate_configs" not in p.parts)
PIPELINES = [p for p in RECIPE_FILES if "stages" in load_recipe(p)]
FLAT_RECIPES = [p for p in RECIPE_FILES if p not in PIPELINES]

# The fake corpora hold 0.1 s clips: shorter than SpecAugment's mask span, so masking is off.
TINY = {"model_type": "wav2vec2", "model_name_or_path": None, "config_overrides": {**TINY_W2V2, "mask_time_prob": 0.0},
        "freeze_feature_encoder": False}
SMOKE_FLAGS = [
    token for key, value in {**SMOKE, "load_best_model_at_end": "false"}.items() for token in (f"--{key}", str(value))
]


def test_recipes_exist():
    assert len(FLAT_RECIPES) >= 5 and len(PIPELINES) >= 2
    assert {p.name for p in PIPELINES} >= {"pipeline.yaml", "meta_curriculum_all_folds.yaml",
                                           "mtkd_mono_all_folds.yaml"}


@pytest.mark.parametrize("path", FLAT_RECIPES, ids=lambda p: str(p.relative_to(RECIPES)))
def test_flat_recipe_parses(path):
    recipe = load_recipe(path)
    # The teachers named by a recipe are trained by other recipes, so only the parse is checked here.
    parse_config(get_method(recipe["method"]).dataclass_types(), str(path), recipe=recipe)


@pytest.mark.parametrize("path", PIPELINES, ids=lambda p: str(p.relative_to(RECIPES)))
def test_pipeline_stages_parse(path, tmp_path):
    """Every stage of the first seed, or of every fold (each its own test fold), parses, and every {output_dir}/...
    names an earlier stage of the same run."""
    spec = load_recipe(path)
    axis, values = pipeline_axis(spec, None, None, str(path))
    values = values if axis is FOLDS else values[:1]
    for value, recipes in axis_recipes(spec, str(tmp_path), axis, values).items():
        if axis is FOLDS:
            check_fold_recipes({value: recipes}, str(path), [])
        for name, recipe in recipes.items():
            parse_config(get_method(recipe["method"]).dataclass_types(), f"{path}:{name}", recipe=recipe)
        folder = str(tmp_path) if axis is None else str(tmp_path / axis.folder(value))
        check_stage_references(recipes, folder, str(path), [])


#: The all-folds pipelines and the flat recipe each of their stages runs, key for key.
ALL_FOLDS = {
    "iemocap/meta_curriculum_all_folds.yaml": {"teacher": "iemocap/teacher.yaml",
                                               "meta_curriculum": "iemocap/meta_curriculum.yaml"},
    "iemocap_fesc_cafe/mtkd_mono_all_folds.yaml": {"ft_mono_en": "iemocap_fesc_cafe/ft_mono.yaml",
                                                   "mtkd_mono": "iemocap_fesc_cafe/mtkd_mono.yaml"},
}


@pytest.mark.parametrize("pipeline", sorted(ALL_FOLDS))
def test_all_folds_pipelines_run_their_flat_recipes_on_every_session(pipeline, tmp_path):
    """The all-folds pipelines copy their flat recipes (a pipeline cannot include a file): the copies must not drift.
    What a fold changes: its test session, its folder, validation drawn from its training sessions (never a fixed
    session that another fold tests on), and the teacher of its own fold."""
    spec = load_recipe(RECIPES / pipeline)
    sessions = [f"Session{n}" for n in range(1, 6)]
    assert spec["folds"] == sessions
    for fold, recipes in axis_recipes(spec, str(tmp_path), FOLDS, sessions).items():
        folder = tmp_path / f"fold-{fold}"
        assert list(recipes) == list(ALL_FOLDS[pipeline])
        for name, flat_path in ALL_FOLDS[pipeline].items():
            flat, recipe = load_recipe(RECIPES / flat_path), recipes[name]
            assert recipe["test_fold"] == [fold] and recipe["output_dir"] == str(folder / name)
            if "teacher_model_name_or_path" in flat:
                assert recipe.pop("teacher_model_name_or_path") == str(folder / "teacher")
                flat.pop("teacher_model_name_or_path")
            if "teachers" in flat:  # the English teacher is this fold's FT-Mono; the others are trained once
                english = recipe["teachers"][0]
                assert english == {"model": str(folder / "ft_mono_en"), "language": "en"}
                assert recipe["teachers"][1:] == flat["teachers"][1:]
                recipe.pop("teachers"), flat.pop("teachers")
            unchanged = ("test_fold", "validation_fold", "output_dir")
            assert {k: v for k, v in recipe.items() if k not in unchanged} == {
                k: v for k, v in flat.items() if k not in unchanged}, name
            assert "validation_fold" not in recipe


def _stages(path: Path, tmp_path: Path) -> dict:
    if path in PIPELINES:  # the stages of its first seed or fold (the others differ in the seed or fold only)
        spec = load_recipe(path)
        axis, values = pipeline_axis(spec, None, None, str(path))
        runs = axis_recipes(spec, str(tmp_path), axis, values[:1])
        return {f"{path}:{name}": recipe for stages in runs.values() for name, recipe in stages.items()}
    return {str(path): load_recipe(path)}


@pytest.mark.parametrize("path", FLAT_RECIPES + PIPELINES, ids=lambda p: str(p.relative_to(RECIPES)))
def test_every_recipe_chooses_its_model_selection_explicitly(path, tmp_path):
    """A recipe that keeps the Trainer's best checkpoint says how: `best_model_smoothing: k` or
    `load_best_model_at_end: false` (a default would leave one lucky evaluation in charge unnoticed)."""
    for where, recipe in _stages(path, tmp_path).items():
        if not get_method(recipe["method"]).selects_best_checkpoint:
            continue
        assert "best_model_smoothing" in recipe or recipe.get("load_best_model_at_end") is False, (
            f"{where} leaves model selection to the defaults: set best_model_smoothing or load_best_model_at_end")


def test_the_methods_that_keep_the_trainers_best_checkpoint_say_so():
    selecting = {name for name in ("finetune", "mtkd", "self_distillation", "audio_text", "classic_baseline",
                                   "meta_curriculum") if get_method(name).selects_best_checkpoint}
    assert selecting == {"finetune", "mtkd", "self_distillation", "audio_text"}


def test_demo_pipeline_smoke(tmp_path):
    # All three languages: with teacher_weighting: language, a teacher whose language is not in the data is an error.
    # Two of the recipe's three seeds (the paired verdicts need no more).
    pytest.importorskip("resemblyzer", reason="the demo's teachers are the GE2E pretrained floor (hf_mtkd[ge2e])")
    corpus = write_tone_corpus(tmp_path / "corpus", languages=("en", "fi", "fr"), clips_per_label=1)
    summaries = run_pipeline(
        str(RECIPES / "demo" / "pipeline.yaml"), str(tmp_path / "out"),
        ["--demo_corpus", "false", "--data_dir", str(corpus), *SMOKE_FLAGS], seeds=[0, 1],
    )
    out = tmp_path / "out" / "seed-1"
    assert summaries["seed-1/mtkd_multi"]["teacher_weights_per_language"]
    for stage, language in [("teacher_en", "en"), ("teacher_fi", "fi"), ("teacher_fr", "fr")]:
        assert summaries[f"seed-1/{stage}"]["languages"] == [language]
        assert (out / stage / "model.safetensors").is_file()  # the pretrained floor exported as the teacher
    assert_promised_outputs(out / "ft_multi", ["en", "fi", "fr"], "finetune")
    for stage in ("mtkd_multi", "mtkd_multi_language"):
        assert_promised_outputs(out / stage, ["en", "fi", "fr"], "mtkd")
    verdicts = json.loads((tmp_path / "out" / "paired_verdicts.json").read_text())
    assert verdicts["baseline"] == "ft_multi"
    assert set(verdicts["verdicts"]) == {"classic_floor", "ge2e_floor", "mtkd_multi", "mtkd_multi_language"}


def test_emodb_ravdess_pretrained_teachers_pipeline_smoke(tmp_path):
    pytest.importorskip("resemblyzer", reason="the teachers are the GE2E pretrained floor (hf_mtkd[ge2e])")
    emodb, ravdess = write_emodb(tmp_path / "emodb"), write_ravdess(tmp_path / "ravdess")
    summaries = run_pipeline(
        str(RECIPES / "emodb_ravdess" / "pretrained_teachers" / "pipeline.yaml"), str(tmp_path / "out"),
        ["--corpus_root", str(emodb), str(ravdess), *SMOKE_FLAGS], seeds=[0],
    )
    assert summaries["seed-0/ge2e_de"]["languages"] == ["de"] and summaries["seed-0/ge2e_en"]["languages"] == ["en"]
    for stage in ("mtkd_multi", "mtkd_multi_language"):
        assert_promised_outputs(tmp_path / "out" / "seed-0" / stage, ["de", "en"], "mtkd")


def test_emodb_ravdess_pipeline_smoke(tmp_path):
    emodb, ravdess = write_emodb(tmp_path / "emodb"), write_ravdess(tmp_path / "ravdess")
    summaries = run_pipeline(
        str(RECIPES / "emodb_ravdess" / "pipeline.yaml"), str(tmp_path / "out"),
        ["--corpus_root", str(emodb), str(ravdess), *SMOKE_FLAGS],
    )
    assert set(summaries["mtkd_multi"]["languages"]) == {"de", "en"}
    assert summaries["teacher_de"]["languages"] == ["de"]
    for stage, languages, method in [("teacher_de", ["de"], "finetune"), ("teacher_en", ["en"], "finetune"),
                                     ("ft_multi", ["de", "en"], "finetune"), ("mtkd_multi", ["de", "en"], "mtkd")]:
        assert_promised_outputs(tmp_path / "out" / stage, languages, method)


def test_emodb_ravdess_self_distillation_smoke(tmp_path):
    emodb, ravdess = write_emodb(tmp_path / "emodb"), write_ravdess(tmp_path / "ravdess")
    recipe = load_recipe(RECIPES / "emodb_ravdess" / "self_distillation.yaml")
    recipe.update(**SMOKE, corpus_root=[str(emodb), str(ravdess)],
                  output_dir=str(tmp_path / "sd"))
    summary = run(get_method("self_distillation"), recipe=recipe)
    assert set(summary["exits"]) >= {"layer_1", "layer_2", "layer_3", "deepest"}
    assert_promised_outputs(tmp_path / "sd", ["de", "en"], "self_distillation")
    for layer in (1, 2, 3):
        assert (tmp_path / "sd" / "exits" / f"layer_{layer}" / "README.md").is_file()


@pytest.fixture(scope="module")
def paper_corpora(tmp_path_factory):
    root = tmp_path_factory.mktemp("paper")
    return [str(make_iemocap(root / "iemocap")), str(make_fesc(root / "fesc")), str(make_cafe(root / "cafe"))]


@pytest.fixture(scope="module")
def paper_teachers(tmp_path_factory):
    root = tmp_path_factory.mktemp("teachers")
    for name in ("ft_multi", "ft_mono_en", "ft_mono_fi", "ft_mono_fr"):
        save_tiny_classifier(root / name, LABELS)
        save_tiny_classifier(root / "no_sad" / name, ENGLISH_TRAIN_LABELS)
    return root


# The English fake has no sad clip outside the test session, and a class without training clips is an error.
ENGLISH_TRAIN_LABELS = ["angry", "happy", "neutral"]


@pytest.mark.parametrize("name", ["ft_mono", "ft_multi", "kd_mono", "mtkd_mono", "mtkd_multi"])
def test_paper_recipe_smoke(name, paper_corpora, paper_teachers, tmp_path):
    recipe = load_recipe(RECIPES / "iemocap_fesc_cafe" / f"{name}.yaml")
    recipe.update(TINY, **SMOKE, corpus_root=paper_corpora, output_dir=str(tmp_path / name))
    # The fakes hold IEMOCAP sessions 1-2, FESC speakers TIRE/JARA and CaFE actors 01, 02, 07.
    recipe.update(test_fold=["Session2", "JARA", "cafe_07"], validation_fold=None)
    teachers = paper_teachers
    if "mono" in name:
        recipe["labels"], teachers = ENGLISH_TRAIN_LABELS, paper_teachers / "no_sad"
    if "teachers" in recipe:
        for teacher in recipe["teachers"]:
            teacher["model"] = str(teachers / Path(teacher["model"]).name)
    summary = run(get_method(recipe["method"]), recipe=recipe)
    expected = ["en"] if "mono" in name else ["en", "fi", "fr"]
    test = summary["results"]["test"]
    assert test["overall"]["n"] > 0 and set(test["per_language"]) <= set(expected)
    if "mono" in name:
        assert list(test["per_language"]) == ["en"]
    assert_promised_outputs(tmp_path / name, expected, recipe["method"])
