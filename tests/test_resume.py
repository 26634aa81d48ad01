"""A run killed with SIGKILL mid-epoch resumes from its last complete checkpoint and ends with the
weights of an uninterrupted run of the same seed (fine-tuning here; MTKD and self-distillation: slow).

The killed run is a real train CLI process (`tests/kill_at_step.py`: the CLI with a callback that SIGKILLs it at
step KILL_AT_STEP, so the kill always falls at the same step, in the second epoch: a resume that counted epochs
from the ones begun in the new process, not from the restored state, would crop differently); the uninterrupted
reference and the resumed run go through the same `run()` in this process (the CLI only parses).
"""

import glob
import json
import logging
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml
from safetensors.torch import load_file

from testing_utils import LABELS, TINY_W2V2, save_tiny_classifier, tiny_recipe
from hf_mtkd.registry import get_method
from hf_mtkd.training.outputs import checkpoint_is_complete
from hf_mtkd.training.run import FINISHED_MARKER, run


SAVE_STEPS = 2
MAX_STEPS = 16  # 16 training clips, batch 4: 4 steps per epoch
KILL_AT_STEP = 7  # in the second epoch (steps 5-8); the run resumes from checkpoint-6, mid-epoch
KILLER = Path(__file__).with_name("kill_at_step.py")


def resume_recipe(corpus, out, **overrides) -> dict:
    return tiny_recipe(
        corpus, out, save_strategy="steps", save_steps=SAVE_STEPS, max_steps=MAX_STEPS,
        logging_steps=1, n_bootstrap=0, **overrides,
    )


def complete_checkpoints(out) -> list[str]:
    found = [path for path in glob.glob(os.path.join(out, "checkpoint-*")) if checkpoint_is_complete(path)]
    return sorted(found, key=lambda path: int(path.rsplit("-", 1)[1]))


def train_and_kill(config_path, out, timeout=600.0) -> str:
    """Run the train CLI, killed by SIGKILL at the end of step KILL_AT_STEP; return its log."""
    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", HF_HUB_OFFLINE="1", HF_DATASETS_OFFLINE="1")
    log_path = f"{out}.log"
    with open(log_path, "w") as log:
        done = subprocess.run([sys.executable, str(KILLER), str(KILL_AT_STEP), "--config", str(config_path)],
                              stdout=log, stderr=subprocess.STDOUT, env=env, timeout=timeout)
    text = open(log_path).read()
    assert done.returncode == -signal.SIGKILL, (
        f"the run was not killed mid-training (rc {done.returncode}):\n{text[-3000:]}"
    )
    assert not os.path.exists(os.path.join(out, FINISHED_MARKER))
    return text


def add_incomplete_checkpoint(out) -> str:
    """What a kill during a checkpoint write leaves: a later checkpoint without trainer_state.json
    and with truncated weights. The resume must ignore it."""
    last = complete_checkpoints(out)[-1]
    step = int(last.rsplit("-", 1)[1]) + SAVE_STEPS
    partial = os.path.join(out, f"checkpoint-{step}")
    if not os.path.exists(partial):
        shutil.copytree(last, partial)
        os.remove(os.path.join(partial, "trainer_state.json"))
        weights = os.path.join(partial, "model.safetensors")
        with open(weights, "r+b") as handle:
            handle.truncate(os.path.getsize(weights) // 2)
    return partial


def weights(path) -> dict:
    return load_file(os.path.join(path, "model.safetensors"))


def check_resume(corpus, tmp_path, caplog, method, **overrides):
    overrides["method"] = method
    recipe = resume_recipe(corpus, tmp_path / "reference", **overrides)
    run(get_method(method), recipe=recipe)
    reference = weights(tmp_path / "reference")

    out = tmp_path / "killed"
    recipe = resume_recipe(corpus, out, log_level="info", **overrides)
    config = tmp_path / "recipe.yaml"
    config.write_text(yaml.safe_dump(recipe))
    train_and_kill(config, out)
    resumed_from = complete_checkpoints(out)[-1]
    assert resumed_from.endswith(f"checkpoint-{KILL_AT_STEP - KILL_AT_STEP % SAVE_STEPS}")  # checkpoint-6
    at_kill = weights(resumed_from)
    partial = add_incomplete_checkpoint(out)

    # The same command again: it resumes, skipping the checkpoint the kill left half-written.
    with caplog.at_level(logging.INFO, logger="hf_mtkd"):
        run(get_method(method), recipe=recipe)
    assert f"from {resumed_from}" in caplog.text, caplog.text[-2000:]
    assert f"Ignoring {partial}: incomplete" in caplog.text
    state = json.loads((out / "trainer_state.json").read_text())
    assert state["global_step"] == MAX_STEPS
    logged_steps = [entry["step"] for entry in state["log_history"] if "loss" in entry]
    assert logged_steps == list(range(1, MAX_STEPS + 1))  # steps before the kill come from the checkpoint
    assert (out / FINISHED_MARKER).exists()

    resumed = weights(out)
    assert resumed.keys() == reference.keys()
    for name, tensor in reference.items():
        assert torch.allclose(resumed[name], tensor, atol=1e-5), name
    # Training went on after the checkpoint (so the equality above is not trivial).
    assert any(not torch.equal(at_kill[name], tensor) for name, tensor in reference.items())
    return out


def test_finetune_resumes_after_sigkill_to_identical_weights(tone_corpus, tmp_path, caplog):
    # Random 0.3 s training windows and dropout on: the data order, the windows and the dropout masks must all be
    # restored.
    check_resume(tone_corpus, tmp_path, caplog, "finetune", train_window_seconds=0.3)


def _teachers(tmp_path) -> list[dict]:
    save_tiny_classifier(tmp_path / "t_en", LABELS, seed=3)
    save_tiny_classifier(tmp_path / "t_fi", list(reversed(LABELS)), seed=4)
    return [{"model": str(tmp_path / "t_en"), "language": "en"}, {"model": str(tmp_path / "t_fi"), "language": "fi"}]


@pytest.mark.slow
def test_mtkd_online_resumes_after_sigkill_to_identical_weights(tone_corpus, tmp_path, caplog):
    check_resume(tone_corpus, tmp_path, caplog, "mtkd", teachers=_teachers(tmp_path),
                 teacher_weighting="cosine", train_window_seconds=0.3)


@pytest.mark.slow
def test_mtkd_cached_resumes_after_sigkill_to_identical_weights(tone_corpus, tmp_path, caplog):
    check_resume(tone_corpus, tmp_path, caplog, "mtkd", teachers=_teachers(tmp_path),
                 use_teacher_logit_cache=True, max_duration_seconds=0.3)


@pytest.mark.slow
def test_self_distillation_resumes_after_sigkill_to_identical_weights(tone_corpus, tmp_path, caplog):
    out = check_resume(tone_corpus, tmp_path, caplog, "self_distillation",
                       config_overrides={**TINY_W2V2, "num_hidden_layers": 3}, exit_layers=[1, 2],
                       head_hidden_size=16, train_window_seconds=0.3)
    assert (out / "exits" / "layer_1" / "model.safetensors").exists()
