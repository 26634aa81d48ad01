"""The warning when validation UR stays at chance level: streaks on synthetic log histories, the callback's log
line (once per streak, resumed histories counted), and a real run's summary, metrics file and card carrying it."""

import csv
import json
import logging
import math
import shutil

import numpy as np
import pytest
import soundfile as sf
from transformers import TrainerControl, TrainerState

from testing_utils import tiny_recipe
from hf_mtkd.registry import get_method
from hf_mtkd.run_summary import RunSummary
from hf_mtkd.training.args import SERTrainingArguments
from hf_mtkd.training.chance import ChanceLevelCallback, ChanceStreak, chance_level_streaks, chance_level_warnings
from hf_mtkd.training.run import run


def history(*urs, start_epoch=1):
    """A Trainer log history: a training log line and an evaluation per epoch with these validation URs."""
    entries = []
    for i, ur in enumerate(urs):
        epoch = float(start_epoch + i)
        entries += [{"loss": 1.3, "epoch": epoch, "step": 10 * (i + 1)},
                    {"eval_UR": ur, "eval_WR": ur, "epoch": epoch, "step": 10 * (i + 1)}]
    return entries


def values(*urs):
    return [(float(i + 1), ur) for i, ur in enumerate(urs)]


def test_streaks_need_patience_evaluations_in_a_row_within_the_tolerance():
    urs = values(0.25, 0.26, 0.24, 0.50, 0.25, 0.25)
    assert chance_level_streaks(urs, 4, tolerance=0.02, patience=3) == [ChanceStreak(3, 1.0, 3.0, ongoing=False)]
    assert chance_level_streaks(urs, 4, tolerance=0.02, patience=4) == []
    assert chance_level_streaks(urs, 4, tolerance=0.02, patience=2) == [
        ChanceStreak(3, 1.0, 3.0, ongoing=False), ChanceStreak(2, 5.0, 6.0, ongoing=True)]
    # 0.27 is 2 points off chance: at chance with a tolerance of 0.02, not with 0.01 (an exact tolerance counts).
    assert chance_level_streaks(values(0.27, 0.23, 0.25), 4, tolerance=0.02, patience=3)[0].evaluations == 3
    assert chance_level_streaks(values(0.27, 0.23, 0.25), 4, tolerance=0.01, patience=3) == []
    # Chance is 1 / number of classes.
    assert chance_level_streaks(values(1 / 3, 0.34, 0.33), 3, tolerance=0.02, patience=3)[0].evaluations == 3
    assert chance_level_streaks(values(0.25, 0.25, 0.25), 3, tolerance=0.02, patience=3) == []
    # A NaN evaluation breaks a streak instead of counting as chance.
    assert chance_level_streaks(values(0.25, math.nan, 0.25, 0.25), 4, tolerance=0.02, patience=3) == []
    assert chance_level_streaks(values(0.6, 0.25, 0.25, 0.25), 4, 0.02, 3) == [ChanceStreak(3, 2.0, 4.0, ongoing=True)]
    with pytest.raises(ValueError, match="patience must be >= 1"):
        chance_level_streaks(urs, 4, 0.02, 0)
    with pytest.raises(ValueError, match="num_labels must be >= 2"):
        chance_level_streaks(urs, 1, 0.02, 3)


def test_warnings_read_the_log_history_and_say_where_the_streak_was():
    (warning,) = chance_level_warnings(history(0.50, 0.25, 0.25, 0.25), num_labels=4, tolerance=0.02, patience=3)
    assert "25.0% for 4 classes" in warning and "3 evaluations in a row" in warning
    assert "epochs 2 to 4, up to the end of training; 4 evaluations in all" in warning
    (ended,) = chance_level_warnings(history(0.25, 0.25, 0.25, 0.60), num_labels=4, tolerance=0.02, patience=3)
    assert "epochs 1 to 3;" in ended and "end of training" not in ended
    assert chance_level_warnings(history(0.25, 0.25, 0.40, 0.25), 4, 0.02, 3) == []
    assert chance_level_warnings([{"loss": 1.0, "epoch": 1.0}], 4, 0.02, 1) == []  # no evaluation yet


class _Evaluations:
    """Drives a ChanceLevelCallback as the Trainer does: the metrics go into log_history, then on_evaluate."""

    def __init__(self, callback, state=None):
        self.callback, self.state = callback, state or TrainerState()

    def evaluate(self, ur):
        epoch = float(len([e for e in self.state.log_history if "eval_UR" in e]) + 1)
        metrics = {"eval_UR": ur, "epoch": epoch}
        self.state.log_history.append(metrics)
        self.callback.on_evaluate(None, self.state, TrainerControl(), metrics=metrics)


def test_callback_warns_once_per_streak_as_soon_as_it_is_long_enough(caplog):
    evaluations = _Evaluations(ChanceLevelCallback(num_labels=4, patience=3, tolerance=0.02))
    with caplog.at_level(logging.WARNING, logger="hf_mtkd"):
        for ur in (0.25, 0.25):
            evaluations.evaluate(ur)
        assert "chance level" not in caplog.text
        evaluations.evaluate(0.25)
        assert caplog.text.count("chance level") == 1 and "epochs 1 to 3 so far" in caplog.text
        evaluations.evaluate(0.25)  # the same streak grows: no second line
        evaluations.evaluate(0.7)
        assert caplog.text.count("chance level") == 1
        for ur in (0.25, 0.25, 0.25):  # a new streak: a new line
            evaluations.evaluate(ur)
    assert caplog.text.count("chance level") == 2 and "epochs 6 to 8 so far" in caplog.text
    assert len(evaluations.callback.warnings(evaluations.state.log_history)) == 2


def test_a_resumed_run_counts_the_evaluations_before_the_interruption(caplog):
    # The checkpoint's trainer_state.json holds two chance-level evaluations; the resumed run makes a third.
    resumed = TrainerState(log_history=history(0.25, 0.25))
    evaluations = _Evaluations(ChanceLevelCallback(num_labels=4, patience=3, tolerance=0.02), resumed)
    with caplog.at_level(logging.WARNING, logger="hf_mtkd"):
        evaluations.evaluate(0.25)
    assert caplog.text.count("chance level") == 1 and "epochs 1 to 3 so far" in caplog.text


def test_callback_and_argument_checks():
    with pytest.raises(ValueError, match="patience must be >= 1"):
        ChanceLevelCallback(4, patience=0)
    with pytest.raises(ValueError, match="tolerance must be in"):
        ChanceLevelCallback(4, tolerance=1.0)
    with pytest.raises(ValueError, match="chance_level_patience must be >= 0"):
        SERTrainingArguments(output_dir="unused", chance_level_patience=-1)
    with pytest.raises(ValueError, match="chance_level_tolerance must be in"):
        SERTrainingArguments(output_dir="unused", chance_level_tolerance=-0.1)


def write_unlearnable_corpus(root, source):
    """The tone corpus's metadata (speakers, languages, splits, labels) over one and the same clip: no model can
    tell the classes apart, so every prediction is one class and validation UR is exactly chance (4 labels: 25%)."""
    root.mkdir()
    with open(source / "metadata.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    clip = 0.3 * np.sin(2 * np.pi * 300 * np.arange(8000) / 16000).astype(np.float32)
    for row in rows:
        sf.write(root / row["file_name"], clip, 16000)
    shutil.copy(source / "metadata.csv", root / "metadata.csv")
    return root


def test_a_run_at_chance_carries_the_warning_into_summary_metrics_and_card(tone_corpus, tmp_path):
    corpus = write_unlearnable_corpus(tmp_path / "same_clip", tone_corpus)
    out = tmp_path / "run"
    recipe = tiny_recipe(corpus, out, max_steps=3, eval_strategy="steps", eval_steps=1, n_bootstrap=0)
    summary = run(get_method("finetune"), recipe=recipe)
    urs = [e["eval_UR"] for e in json.loads((out / "trainer_state.json").read_text())["log_history"] if "eval_UR" in e]
    assert urs == [0.25, 0.25, 0.25]
    # Every prediction is one class, so each split also reports a prediction collapse (test_model_selection.py).
    (warning, *collapse) = summary.training_warnings
    assert "at 3 evaluations in a row" in warning and "up to the end of training" in warning
    assert [w.split(":")[0] for w in collapse] == ["Prediction collapse on validation", "Prediction collapse on test"]
    assert RunSummary.load(out / "run_summary.json").training_warnings == [warning, *collapse]
    for split, collapsed in zip(("validation", "test"), collapse):
        assert json.loads((out / f"{split}_metrics.json").read_text())["training_warnings"] == [warning, collapsed]
    card = (out / "README.md").read_text()
    assert "## Training warnings" in card and f"- {warning}" in card

    # The same run with the warning turned off: nothing in the summary, the metrics or the card.
    quiet = tmp_path / "quiet"
    summary = run(get_method("finetune"), recipe={**recipe, "output_dir": str(quiet), "chance_level_patience": 0})
    assert summary.training_warnings == collapse and warning not in (quiet / "README.md").read_text()
    assert json.loads((quiet / "test_metrics.json").read_text())["training_warnings"] == collapse[1:]

