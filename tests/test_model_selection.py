"""Selection that does not pick noise, and warnings for what it cannot prevent (issue 21, item 3), and the thread
count a run trains with (item 6)."""

import json
import os
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from transformers import AutoConfig, AutoModelForAudioClassification

from testing_utils import LABELS, TINY_W2V2, tiny_recipe
from hf_mtkd.registry import get_method
from hf_mtkd.training.args import SERTrainingArguments
from hf_mtkd.training.evaluation import prediction_collapse_warning
from hf_mtkd.training.run import run
from hf_mtkd.training.trainer import SERTrainer, early_checkpoint_warning, smoothed_metric
from hf_mtkd.utils.threads import SMALL_MODEL_PARAMETERS, parse_num_threads, resolve_num_threads

VALIDATION_UR = [0.2, 0.9, 0.3, 0.6, 0.7, 0.65]  # one lucky evaluation at step 2


def _best_step(tmp_path, smoothing: int) -> int:
    config = AutoConfig.for_model("wav2vec2", **TINY_W2V2, num_labels=len(LABELS))
    args = SERTrainingArguments(output_dir=str(tmp_path / f"k{smoothing}"), report_to="none",
                                best_model_smoothing=smoothing)
    trainer = SERTrainer(model=AutoModelForAudioClassification.from_config(config), args=args, eval_dataset=[0])
    for step, value in enumerate(VALIDATION_UR, start=1):
        trainer.state.global_step = step
        trainer.state.log_history.append({"eval_UR": value, "step": step})  # the Trainer logs before it judges
        trainer._determine_best_metric({"eval_UR": value}, None)
    return trainer.state.best_global_step


def test_best_model_smoothing_selects_on_the_mean_of_consecutive_evaluations(tmp_path):
    assert _best_step(tmp_path, 1) == 2  # the lucky evaluation
    # Means of 3: 0.2, 0.55, 0.467, 0.6, 0.533, 0.65 -> the last window is best.
    assert _best_step(tmp_path, 3) == 6
    assert smoothed_metric([{"eval_UR": 0.2}, {"eval_UR": 0.9}, {"eval_UR": 0.3}], "eval_UR", 2, 0.3) == pytest.approx(
        0.6
    )
    assert smoothed_metric([], "eval_UR", 5, 0.4) == pytest.approx(0.4)
    with pytest.raises(ValueError, match="best_model_smoothing must be >= 1"):
        SERTrainingArguments(output_dir=str(tmp_path), best_model_smoothing=0)


def test_a_checkpoint_from_the_first_fifth_of_training_is_a_warning():
    args = SimpleNamespace(early_checkpoint_fraction=0.2, load_best_model_at_end=True, metric_for_best_model="UR")
    state = SimpleNamespace(best_global_step=6, max_steps=30, best_metric=0.565)
    warning = early_checkpoint_warning(state, args)
    assert "step 6 of 30 (20% of training" in warning and "UR 0.565" in warning
    assert early_checkpoint_warning(SimpleNamespace(best_global_step=7, max_steps=30, best_metric=0.5), args) is None
    assert early_checkpoint_warning(state, SimpleNamespace(**{**vars(args), "load_best_model_at_end": False})) is None
    assert early_checkpoint_warning(state, SimpleNamespace(**{**vars(args), "early_checkpoint_fraction": 0.0})) is None


def test_prediction_collapse_fires_at_half_of_the_classes_or_fewer():
    labels = ["angry", "happy", "neutral", "sad"]
    warning = prediction_collapse_warning(np.array([0, 3, 3, 0]), labels, "test")
    assert warning == ("Prediction collapse on test: the model predicts only 2 of 4 classes (angry, sad); it never "
                       "predicts happy, neutral.")
    assert prediction_collapse_warning(np.array([0, 1, 2, 2]), labels, "test") is None
    assert prediction_collapse_warning(np.array([1, 1]), ["a", "b"], "validation") is not None
    assert prediction_collapse_warning(np.array([0, 1, 2]), list("abcdefg"), "test") is not None  # 3 of 7
    assert prediction_collapse_warning(np.array([0, 1, 2, 3]), list("abcdefg"), "test") is None


def test_a_collapsed_run_says_so_in_summary_metrics_and_card(tone_corpus, tmp_path):
    out = tmp_path / "out"
    # A learning rate of almost nothing after a seed whose untrained head favours one class: a collapsed model.
    summary = run(get_method("finetune"), recipe=tiny_recipe(tone_corpus, out, n_bootstrap=0, learning_rate=1e-9))
    predicted = json.loads((out / "test_metrics.json").read_text())
    collapse = [w for w in summary.training_warnings if w.startswith("Prediction collapse on")]
    assert collapse, summary.training_warnings
    assert any(w.startswith("Prediction collapse on test") for w in predicted["training_warnings"])
    assert collapse[0] in (out / "README.md").read_text()
    assert collapse[0] in json.loads((out / "run_summary.json").read_text())["training_warnings"]
    # Cross-check with the confusion matrix the metrics file holds: the predicted classes are its non-empty columns.
    matrix = np.array(predicted["overall"]["confusion_matrix"])
    assert (matrix.sum(axis=0) > 0).sum() <= len(LABELS) / 2


def test_thread_count_auto_gives_small_models_one_thread(tone_corpus, tmp_path):
    assert parse_num_threads("auto") is None and parse_num_threads("3") == 3 and parse_num_threads(2) == 2
    for bad in ("0", "-1", "two", "1.5"):
        with pytest.raises(ValueError, match="torch_num_threads must be 'auto' or a whole number"):
            parse_num_threads(bad)
    assert resolve_num_threads("auto", SMALL_MODEL_PARAMETERS - 1, default=2) == 1
    assert resolve_num_threads("auto", SMALL_MODEL_PARAMETERS, default=2) == 2
    assert resolve_num_threads("auto", None, default=2) == 2
    assert resolve_num_threads("2", 10, default=1) == 2
    with pytest.raises(ValueError, match="torch_num_threads"):
        SERTrainingArguments(output_dir=str(tmp_path), torch_num_threads="many")
    before = torch.get_num_threads()
    try:
        summary = run(get_method("finetune"), recipe=tiny_recipe(tone_corpus, tmp_path / "a", n_bootstrap=0,
                                                                   torch_num_threads="2"))
        assert summary.torch_num_threads == 2 and torch.get_num_threads() == 2
        summary = run(get_method("finetune"), recipe=tiny_recipe(tone_corpus, tmp_path / "b", n_bootstrap=0))
        assert summary.torch_num_threads == 1 and torch.get_num_threads() == 1  # auto: a tiny model
        summary = run(
            get_method("classic_baseline"),
            recipe=tiny_recipe(
                tone_corpus, tmp_path / "c", n_bootstrap=0, method="classic_baseline", torch_num_threads="2"
            ),
        )
        assert summary.torch_num_threads == 2
        summary = run(get_method("classic_baseline"), recipe=tiny_recipe(tone_corpus, tmp_path / "d", n_bootstrap=0,
                                                                         method="classic_baseline"))
        assert summary.torch_num_threads == 1  # auto: no torch model, features clip by clip
    finally:
        torch.set_num_threads(before)


def test_auto_threads_for_a_method_without_a_torch_model_is_one(monkeypatch):
    import hf_mtkd.utils.threads as threads

    before = torch.get_num_threads()
    monkeypatch.setattr(threads, "_STARTING_THREADS", 2)
    monkeypatch.setattr(threads, "idle_cores", lambda interval=0.25: 2.0)  # a quiet machine, whatever this one is
    try:
        assert threads.apply_num_threads("auto", None) == 1  # the classic floor: features clip by clip
        assert threads.apply_num_threads("auto", object()) == 2  # something of unknown size: torch's default
        big = torch.nn.Linear(4000, 3000)  # 12 M parameters
        assert threads.apply_num_threads("auto", big) == 2
    finally:
        torch.set_num_threads(before)


def test_auto_threads_for_a_large_model_follow_the_idle_cores(monkeypatch):
    import hf_mtkd.utils.threads as threads

    big = threads.SMALL_MODEL_PARAMETERS
    assert threads.resolve_num_threads("auto", big, default=2, idle=2.0) == 2  # a quiet 2-core machine
    assert threads.resolve_num_threads("auto", big, default=2, idle=1.1) == 1  # a busy neighbour on one core
    assert threads.resolve_num_threads("auto", big, default=2, idle=0.0) == 1  # never fewer than one
    assert threads.resolve_num_threads("auto", big, default=4, idle=2.6) == 3
    assert threads.resolve_num_threads("auto", big - 1, default=2, idle=2.0) == 1  # small: one thread, idle or not
    assert threads.resolve_num_threads("2", big, default=2, idle=0.0) == 2  # an explicit count is kept
    idle = threads.idle_cores(0.05)
    assert idle is None or 0.0 <= idle <= (os.cpu_count() or 1) + 1e-6
    before = torch.get_num_threads()
    monkeypatch.setattr(threads, "_STARTING_THREADS", 2)
    monkeypatch.setattr(threads, "idle_cores", lambda interval=0.25: 0.9)
    try:
        assert threads.apply_num_threads("auto", torch.nn.Linear(4000, 3000)) == 1
    finally:
        torch.set_num_threads(before)
