"""The self-distillation method through the training entry: train, report every exit, export exits."""

import json

import numpy as np
from transformers import pipeline

from conftest import TINY_W2V2, tiny_recipe
from hf_mtkd.methods import get_method
from hf_mtkd.training.run import run


def test_self_distillation_run_reports_and_exports_exits(tone_corpus, tmp_path):
    # One torch thread: conftest's session fixture sets it (and restores it at the end).
    out = tmp_path / "sd"
    recipe = tiny_recipe(
        tone_corpus, out, method="self_distillation",
        config_overrides={**TINY_W2V2, "num_hidden_layers": 3}, exit_layers=[1, 2], head_hidden_size=16,
        logging_steps=1,
    )
    summary = run(get_method("self_distillation"), recipe=recipe)
    heads = summary["exits"]
    assert {"layer_1", "layer_2", "deepest", "fusion"} <= set(heads)
    assert heads["layer_1"]["num_parameters"] < heads["layer_2"]["num_parameters"] < heads["deepest"]["num_parameters"]
    per_exit = json.loads((out / "test_metrics_per_exit.json").read_text())
    assert set(per_exit["layer_1"]["per_language"]) == {"en", "fi"}
    logged = {k for entry in json.loads((out / "trainer_state.json").read_text())["log_history"] for k in entry}
    assert {"ce_exit_1", "ce_exit_2", "kl", "similarity"} <= logged
    # Each exit is a stock model that pipeline() loads by path and answers with emotion names.
    classifier = pipeline("audio-classification", model=str(out / "exits" / "layer_1"))
    scores = classifier(np.random.default_rng(0).standard_normal(8000).astype(np.float32), top_k=None)
    assert {s["label"] for s in scores} == {"angry", "happy", "neutral", "sad"}
    assert abs(sum(s["score"] for s in scores) - 1) < 1e-5
