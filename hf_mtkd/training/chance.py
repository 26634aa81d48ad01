"""A warning when validation UR stays at chance level for several evaluations in a row.

A model that learns nothing (a collapsed representation, a learning rate far too high, labels that do not
match the audio) otherwise shows up only as a table of 25.0s at the end. `ChanceLevelCallback` logs a warning
as soon as the streak is long enough; the trainer reads the finished streaks back from `state.log_history`
(`chance_level_warnings`), so a resumed run counts the evaluations it made before the interruption, and the
training entry puts them into the run summary, the metrics files and the model card beside the data warnings.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from itertools import groupby

from transformers import TrainerCallback

logger = logging.getLogger("hf_mtkd")

__all__ = ["ChanceLevelCallback", "ChanceStreak", "chance_level_streaks", "chance_level_warnings"]

#: The validation metric watched: UR (balanced accuracy), whose chance level is 1 / number of classes.
METRIC_KEY = "eval_UR"


@dataclass(frozen=True)
class ChanceStreak:
    """Consecutive evaluations at chance level: their count, the epochs of the first and the last, and whether
    the last is the latest evaluation of the run."""

    evaluations: int
    first_epoch: float
    last_epoch: float
    ongoing: bool


def chance_level_streaks(
    values: Sequence[tuple[float, float]], num_labels: int, tolerance: float, patience: int
) -> list[ChanceStreak]:
    """The runs of at least `patience` consecutive `(epoch, UR)` values within `tolerance` of 1 / `num_labels`."""
    if num_labels < 2:
        raise ValueError(f"num_labels must be >= 2, got {num_labels}.")
    if patience < 1:
        raise ValueError(f"patience must be >= 1, got {patience}.")
    chance = 1.0 / num_labels
    at_chance = [abs(value - chance) <= tolerance + 1e-12 for _, value in values]  # NaN: not at chance
    streaks, start = [], 0
    for at, group in groupby(at_chance):
        count = len(list(group))
        if at and count >= patience:
            streaks.append(ChanceStreak(count, values[start][0], values[start + count - 1][0],
                                        ongoing=start + count == len(values)))
        start += count
    return streaks


def evaluations(log_history: Sequence[Mapping], key: str = METRIC_KEY) -> list[tuple[float, float]]:
    """`(epoch, value)` of every evaluation logged in a Trainer's `state.log_history` that holds `key`."""
    return [
        (float(entry.get("epoch", entry.get("step", 0))), float(entry[key])) for entry in log_history if key in entry
    ]


def chance_level_message(streak: ChanceStreak, num_labels: int, tolerance: float, total: int,
                         during_training: bool = False) -> str:
    """The warning for one streak, in words a reader of the log, the summary or the card understands
    (`during_training`: logged while the streak may still grow)."""
    epochs = f"epoch {streak.first_epoch:g}" if streak.evaluations == 1 else \
        f"epochs {streak.first_epoch:g} to {streak.last_epoch:g}"
    last = (" so far" if during_training else ", up to the end of training") if streak.ongoing else ""
    return (
        f"Validation UR was at chance level ({100 / num_labels:.1f}% for {num_labels} classes, within "
        f"{100 * tolerance:.1f} points) at {streak.evaluations} evaluations in a row ({epochs}{last}; {total} "
        "evaluations in all): the model did not learn to tell the classes apart there. Check the learning rate, "
        "the loss weights and the labels."
    )


def chance_level_warnings(
    log_history: Sequence[Mapping], num_labels: int, tolerance: float, patience: int
) -> list[str]:
    """One message per streak of at least `patience` chance-level evaluations in `log_history`."""
    values = evaluations(log_history)
    return [chance_level_message(streak, num_labels, tolerance, len(values))
            for streak in chance_level_streaks(values, num_labels, tolerance, patience)]


class ChanceLevelCallback(TrainerCallback):
    """Logs a warning when validation UR (`eval_UR`) has been within `tolerance` of 1 / `num_labels` for
    `patience` evaluations in a row (once per streak; the run's summary gets the whole streak)."""

    def __init__(self, num_labels: int, patience: int = 3, tolerance: float = 0.02):
        if num_labels < 2:
            raise ValueError(f"num_labels must be >= 2, got {num_labels}.")
        if patience < 1:
            raise ValueError(f"patience must be >= 1, got {patience}.")
        if not 0.0 <= tolerance < 1.0:
            raise ValueError(f"tolerance must be in [0, 1), got {tolerance}.")
        self.num_labels, self.patience, self.tolerance = num_labels, patience, tolerance

    def warnings(self, log_history: Sequence[Mapping]) -> list[str]:
        return chance_level_warnings(log_history, self.num_labels, self.tolerance, self.patience)

    def on_evaluate(self, args, state, control, metrics=None, **kwargs):
        # The Trainer logs the metrics (into state.log_history) before it calls on_evaluate.
        if not metrics or METRIC_KEY not in metrics or not state.is_world_process_zero:
            return
        values = evaluations(state.log_history)
        streaks = chance_level_streaks(values, self.num_labels, self.tolerance, self.patience)
        if streaks and streaks[-1].ongoing and streaks[-1].evaluations == self.patience:
            logger.warning(chance_level_message(streaks[-1], self.num_labels, self.tolerance, len(values),
                                                during_training=True))
