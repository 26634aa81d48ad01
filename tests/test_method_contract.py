"""What every registered method owes its user, checked once for all of them (PEFT's common tester): a tiny recipe
runs to a finished run whose summary, metrics files, predictions and model card agree, and whose saved model reloads.

A new method adds one row to CASES (a tiny recipe, and how its saved model reloads), not a test file of copies;
`test_every_built_in_method_has_a_row` fails until it does.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import pytest
from huggingface_hub import ModelCard
from transformers import pipeline

from audio_text_fakes import WORDS, write_text_corpus
from hf_mtkd.config_parser import load_recipe
from hf_mtkd.registry import get_method, get_method_class, method_names, unregister_method
from hf_mtkd.run_summary import RunSummary
from hf_mtkd.training.run import run
from testing_utils import LABELS, RECIPES, TINY_W2V2, save_tiny_classifier, tiny_recipe, write_tone_corpus

CLIP = (0.3 * np.sin(2 * np.pi * 300.0 * np.arange(8000) / 16000)).astype(np.float32)


def _audio_classifier_reloads(out: Path) -> None:
    scores = pipeline("audio-classification", model=str(out))(CLIP, top_k=None)
    assert sorted(s["label"] for s in scores) == sorted(LABELS)


def _audio_text_reloads(out: Path) -> None:
    scores = pipeline("audio-text-classification", model=str(out))({"audio": CLIP, "text": WORDS["angry"]})
    assert sorted(s["label"] for s in scores) == sorted(LABELS)


def _classic_baseline_reloads(out: Path) -> None:
    from hf_mtkd.classic_baseline import load_classic_baseline

    loaded, extra = load_classic_baseline(out)
    assert loaded.label_names == LABELS and extra["feature_set"] == "mfcc"


@dataclass(frozen=True)
class Case:
    recipe: Callable[[Path, Path], dict]  # (scratch folder, output_dir) -> the recipe of a tiny run
    reload: Callable[[Path], None] = _audio_classifier_reloads
    languages: tuple[str, ...] = ("en", "fi")


def _corpus(root: Path, speakers: int = 3) -> Path:
    corpus = root / f"corpus_{speakers}"
    return corpus if (corpus / "metadata.csv").is_file() else write_tone_corpus(corpus, speakers_per_language=speakers)


def _finetune(root: Path, out: Path) -> dict:
    return tiny_recipe(_corpus(root), out)


def _mtkd(root: Path, out: Path) -> dict:
    save_tiny_classifier(root / "teacher_en", LABELS, seed=1)
    save_tiny_classifier(root / "teacher_fi", LABELS, seed=2)
    return tiny_recipe(_corpus(root), out, method="mtkd", teachers=[
        {"model": str(root / "teacher_en"), "language": "en"}, {"model": str(root / "teacher_fi"), "language": "fi"}])


def _self_distillation(root: Path, out: Path) -> dict:
    return tiny_recipe(_corpus(root), out, method="self_distillation", config_overrides=TINY_W2V2, exit_layers=[1],
                       head_hidden_size=8)


def _classic_baseline(root: Path, out: Path) -> dict:
    return {"method": "classic_baseline", "data_dir": str(_corpus(root)), "output_dir": str(out),
            "classic_c_grid": [1.0], "n_bootstrap": 10, "report_to": "none"}


def _meta_curriculum(root: Path, out: Path) -> dict:
    # The demo recipe's model and method settings, a little training; 4 speakers per language give the quiz split
    # a clip per label and language.
    corpus = _corpus(root, speakers=4)
    save_tiny_classifier(root / "teacher", LABELS, seed=1)
    recipe = {key: value for key, value in load_recipe(RECIPES / "demo" / "meta_curriculum.yaml").items()
              if key != "demo_corpus"}
    recipe.update(data_dir=str(corpus), output_dir=str(out), teacher_model_name_or_path=str(root / "teacher"),
                  num_train_epochs=1, meta_epochs=1, curriculum_episodes=1, curriculum_steps_per_episode=2,
                  per_device_train_batch_size=8, n_bootstrap=10, report_to="none")
    return recipe


def _audio_text(root: Path, out: Path) -> dict:
    corpus = root / "text_corpus"
    if not (corpus / "metadata.csv").is_file():
        write_text_corpus(corpus, clips_per_label=1)
    return {
        "method": "audio_text", "model_type": "hf_mtkd_audio_text", "data_dir": str(corpus), "output_dir": str(out),
        "text_column_name": "text", "max_duration_seconds": 0.5, "modalities": "text", "text_encoder_type": "bert",
        "text_encoder_config_overrides": {"hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 2,
                                          "intermediate_size": 64, "max_position_embeddings": 64},
        "config_overrides": {"fusion_num_attention_heads": 4}, "train_tokenizer_vocab_size": 100,
        "transfer_epochs": 0, "max_steps": 1, "per_device_train_batch_size": 4, "per_device_eval_batch_size": 8,
        "eval_strategy": "no", "save_strategy": "no", "load_best_model_at_end": False, "n_bootstrap": 10,
        "report_to": "none", "seed": 0,
    }


#: One row per built-in method.
CASES: dict[str, Case] = {
    "finetune": Case(_finetune),
    "mtkd": Case(_mtkd),
    "self_distillation": Case(_self_distillation),
    "classic_baseline": Case(_classic_baseline, reload=_classic_baseline_reloads),
    "meta_curriculum": Case(_meta_curriculum),
    "audio_text": Case(_audio_text, reload=_audio_text_reloads, languages=("en",)),
}


def test_every_built_in_method_has_a_row():
    built_in = {name for name in method_names() if get_method_class(name).__module__.startswith("hf_mtkd.")}
    assert built_in == set(CASES)


@pytest.fixture(scope="module")
def scratch(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("contract")


@pytest.mark.parametrize("name", sorted(CASES))
def test_a_tiny_run_leaves_what_every_method_owes(name, scratch):
    case = CASES[name]
    out = scratch / "runs" / name
    check_contract(name, case, out, run(get_method(name), recipe=case.recipe(scratch, out)))


def check_contract(name: str, case: Case, out: Path, summary: RunSummary) -> None:
    # The run summary: in memory and on disk, the same.
    saved = RunSummary.load(out / "run_summary.json")
    assert summary.method == saved.method == name
    assert saved.results == summary.results and set(saved.results) == {"validation", "test"}
    # The metrics files are the summary's results; every clip of the split is counted, per language too.
    for split in ("validation", "test"):
        metrics = json.loads((out / f"{split}_metrics.json").read_text())
        assert metrics == saved.results[split], split
        overall = metrics["overall"]
        assert overall["n"] == saved.sizes[split] == int(np.sum(overall["confusion_matrix"])) > 0, split
        assert len(overall["UR_ci"]) == 2 and set(metrics["per_language"]) <= set(case.languages), split
        assert sum(block["n"] for block in metrics["per_language"].values()) == overall["n"], split
        predictions = json.loads((out / f"{split}_predictions.json").read_text())
        assert len(predictions["predictions"]) == overall["n"], split
    # The card: the method's tag, and the test results in its model-index.
    card = ModelCard.load(out / "README.md")
    assert name in card.data.tags
    test = saved.results["test"]["overall"]
    results = {r.metric_type: r.metric_value for r in card.data.eval_results if r.dataset_config is None}
    assert results["recall"] == pytest.approx(100 * test["UR"], abs=0.01)
    assert results["accuracy"] == pytest.approx(100 * test["WR"], abs=0.01)
    # The saved model reloads and names the emotions.
    case.reload(out)


def test_a_methods_own_data_checks_run_in_the_shared_flow_before_anything_trains(tmp_path):
    """audio_text's transcript check is its `data_checks` hook, not the shared data layer's: a run of it on data
    with a clip that has no transcript fails naming the clip, and no model is written."""
    corpus = write_text_corpus(tmp_path / "text_corpus", clips_per_label=1, missing_text=("en_spk2_sad_0.wav",))
    out = tmp_path / "run"
    recipe = {**_audio_text(tmp_path, out), "data_dir": str(corpus)}
    with pytest.raises(ValueError, match=r"no transcript in column 'text'.*en_spk2_sad_0\.wav"):
        run(get_method("audio_text"), recipe=recipe)
    assert not list(out.glob("*.safetensors")) and not (out / "run_summary.json").exists()


def test_a_method_from_another_package_meets_the_contract(tmp_path, monkeypatch):
    """A method another package registers under the entry-point group runs and reports like a built-in one."""
    (tmp_path / "outside_method.py").write_text(
        "from hf_mtkd.training.method import Method\n\n\nclass OutsideMethod(Method):\n    name = 'outside_method'\n"
    )
    dist = tmp_path / "outside_method-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: outside-method\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text("[hf_mtkd.methods]\noutside_method = outside_method:OutsideMethod\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "outside_method", raising=False)
    try:
        out = tmp_path / "run"
        recipe = {**_finetune(tmp_path, out), "method": "outside_method"}
        check_contract("outside_method", Case(_finetune), out, run(get_method("outside_method"), recipe=recipe))
    finally:
        unregister_method("outside_method")
