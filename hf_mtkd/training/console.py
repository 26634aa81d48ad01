"""One short console line per log: what a person watching a run reads.

transformers prints every logged number as a Python dict; MTKD logs a weight per teacher and language, so an
evaluation line ran to 20 keys. The console gets the headline numbers (loss, learning rate, UR, WR) and a
count of the rest; every number still goes to `trainer_state.json` (log_history) and to the loggers of `report_to`
(TensorBoard, ...).
"""

from __future__ import annotations

from transformers.trainer_callback import PrinterCallback, ProgressCallback

__all__ = ["ConcisePrinterCallback", "ConciseProgressCallback", "concise_log_line"]

#: (key, shown as, format): the numbers a log line shows, in this order.
_SHOWN = (
    ("eval_UR", "UR", "pct"), ("eval_WR", "WR", "pct"), ("eval_loss", "loss", "num"),
    ("loss", "loss", "num"), ("learning_rate", "lr", "num"), ("grad_norm", "grad_norm", "num"),
)
_NOT_COUNTED = {"epoch", "step", "total_flos"}


def _format(value, kind: str) -> str:
    if not isinstance(value, (int, float)):
        return str(value)
    return f"{value * 100:.1f}" if kind == "pct" else f"{value:.4g}"


def concise_log_line(logs: dict, epoch=None, step=None) -> str:
    """`epoch 3.00 step 30 | eval UR 56.5 WR 60.1 loss 1.234 (+12 more logged)`: the headline numbers of `logs`."""
    evaluation = any(key.startswith("eval_") for key in logs)
    parts = [f"{name} {_format(logs[key], kind)}" for key, name, kind in _SHOWN
             if key in logs and key.startswith("eval_") == evaluation]
    rest = [key for key in logs if key not in _NOT_COUNTED and key not in {k for k, _, _ in _SHOWN}]
    where = " ".join(part for part in (f"epoch {epoch:.2f}" if epoch is not None else "",
                                       f"step {step}" if step is not None else "") if part)
    line = f"{where} | {'eval ' if evaluation else ''}" + " ".join(parts)
    return line + (f" (+{len(rest)} more logged)" if rest else "")


class ConciseProgressCallback(ProgressCallback):
    """transformers' progress bars, with `concise_log_line` under them instead of the whole log dict."""

    def on_log(self, args, state, control, logs=None, **kwargs):
        if state.is_world_process_zero and self.training_bar is not None and logs:
            self.training_bar.write(concise_log_line(logs, state.epoch, state.global_step))


class ConcisePrinterCallback(PrinterCallback):
    """With `disable_tqdm`: `concise_log_line` printed instead of the whole log dict."""

    def on_log(self, args, state, control, logs=None, **kwargs):
        if state.is_local_process_zero and logs:
            print(concise_log_line(logs, state.epoch, state.global_step))
