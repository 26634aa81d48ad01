"""Logs a person can read: no pinned-memory warning without an accelerator, no checkpoint-mtime warning, and
nothing else of transformers' lost on the way."""

import inspect
import logging
import warnings
from unittest import mock

import pytest
import torch
import transformers.trainer_utils
from transformers.utils import logging as transformers_logging

from testing_utils import tiny_recipe
from hf_mtkd.registry import get_method
from hf_mtkd.training.args import SERTrainingArguments
from hf_mtkd.training.run import run
from hf_mtkd.training.trainer import _CHECKPOINT_MTIME_WARNING


@pytest.mark.parametrize("accelerator", [False, True])
def test_pin_memory_is_off_without_an_accelerator(monkeypatch, tmp_path, accelerator):
    monkeypatch.setattr(torch.accelerator, "is_available", lambda: accelerator)
    args = SERTrainingArguments(output_dir=str(tmp_path))
    assert args.dataloader_pin_memory is accelerator
    # Asked for explicitly it stays off (the user may turn it off on a GPU machine too).
    assert SERTrainingArguments(output_dir=str(tmp_path), dataloader_pin_memory=False).dataloader_pin_memory is False


class _Collect(logging.Handler):
    def __init__(self):
        super().__init__(logging.DEBUG)
        self.messages = []

    def emit(self, record):
        self.messages.append(record.getMessage())


def test_the_checkpoint_mtime_warning_is_dropped_and_nothing_else():
    # The text is transformers' own: if it changes, the filter no longer matches and this says so.
    assert _CHECKPOINT_MTIME_WARNING in inspect.getsource(transformers.trainer_utils.sort_checkpoints)
    logger = logging.getLogger("transformers.trainer_utils")
    handler = _Collect()
    logger.addHandler(handler)
    try:
        logger.warning(f"{_CHECKPOINT_MTIME_WARNING}, falling back to numerical ordering")
        logger.warning("Checkpoint destination directory has no mtime")  # other messages, even about mtime, pass
        logger.warning("Something else %s", "happened")
    finally:
        logger.removeHandler(handler)
    assert handler.messages == ["Checkpoint destination directory has no mtime", "Something else happened"]


def test_a_run_that_rotates_checkpoints_logs_neither_warning(tone_corpus, tmp_path):
    """Checkpoints a second apart or less (a tiny model) made transformers warn about the filesystem; the
    DataLoader warned about pinned memory at every iterator on a CPU machine."""
    recipe = tiny_recipe(tone_corpus, tmp_path / "run", max_steps=3, save_strategy="steps", save_steps=1,
                         save_total_limit=1, eval_strategy="steps", eval_steps=1, n_bootstrap=0)
    # transformers logs it with `warning_once` (an lru_cache): an earlier run in this process would hide it.
    transformers_logging.warning_once.cache_clear()
    handler = _Collect()
    logging.getLogger("transformers").addHandler(handler)  # its loggers' records, whatever stream they print to
    sorted_by = []
    original = transformers.trainer_utils.sort_checkpoints

    def spy(*args, **kwargs):  # rotate_checkpoints passes use_mtime as the third positional argument
        sorted_by.append(kwargs.get("use_mtime", args[2] if len(args) > 2 else False))
        return original(*args, **kwargs)

    try:
        with (
            warnings.catch_warnings(record=True) as caught,
            mock.patch.object(transformers.trainer_utils, "sort_checkpoints", spy),
        ):
            warnings.simplefilter("always")
            run(get_method("finetune"), recipe=recipe)
    finally:
        logging.getLogger("transformers").removeHandler(handler)
    assert True in sorted_by  # checkpoints were rotated by modification time: the warning had its chance
    assert not [message for message in handler.messages if "mtime" in message]
    if not torch.accelerator.is_available():
        assert not [w for w in caught if "pin_memory" in str(w.message)]


def test_each_log_is_one_short_line_on_the_console(tone_corpus, tmp_path, capsys):
    from hf_mtkd.training.console import concise_log_line

    logs = {"eval_UR": 0.565, "eval_WR": 0.6012, "eval_loss": 1.23456, "epoch": 3.0,
            **{f"eval_teacher_weight/{lang}/{t}": 0.5 for lang in ("de", "en") for t in range(5)}}
    assert concise_log_line(logs, 3.0, 30) == "epoch 3.00 step 30 | eval UR 56.5 WR 60.1 loss 1.235 (+10 more logged)"
    assert concise_log_line({"loss": 0.5, "learning_rate": 3e-5, "grad_norm": 1.0, "epoch": 0.5}, 0.5, 5) == (
        "epoch 0.50 step 5 | loss 0.5 lr 3e-05 grad_norm 1")
    out = tmp_path / "run"
    for disable_tqdm in (False, True):
        run(get_method("finetune"), recipe=tiny_recipe(tone_corpus, out / str(disable_tqdm), max_steps=2,
                                                       logging_steps=1, eval_strategy="steps", eval_steps=1,
                                                       disable_tqdm=disable_tqdm, n_bootstrap=0))
        printed = capsys.readouterr().out
        assert "{'loss'" not in printed and "{'eval_loss'" not in printed
        assert "step 2 | eval UR" in printed and "step 1 | loss" in printed
