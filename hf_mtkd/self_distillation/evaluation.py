"""Evaluating an early-exit model: predictions per exit, fusion and early exit, parameters and latency.

Clips are scored by the one window rule of `hf_mtkd.windowing` (windows of the training length, logits averaged
per clip), the rule of the standard report; fusion and early exit decide on those clip logits."""

from __future__ import annotations

import math
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from ..windowing import CONFIG_KEY, WindowRule, average_by_clip, window_seconds_from_config
from ..models.early_exit.exit_heads import fuse_by_margin
from ..models.early_exit.modeling_early_exit import EarlyExitForAudioClassification


# ----------------------------------------------------------------------------------------------
# Evaluation helpers
# ----------------------------------------------------------------------------------------------
def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


@torch.no_grad()
def measure_exit_latency(
    model: EarlyExitForAudioClassification,
    input_values: torch.Tensor,
    attention_mask: torch.Tensor | None = None,
    *,
    repeats: int = 10,
    warmup: int = 2,
) -> dict[int, float]:
    """Median wall-clock seconds of one forward pass at each head (exits, then the deepest head with no exits
    computed), interleaved so that drifts in machine load hit every head alike."""
    was_training = model.training
    model.eval()
    device = input_values.device
    layers = model.head_layers
    times: dict[int, list[float]] = {layer: [] for layer in layers}
    for step in range(warmup + repeats):
        for layer in layers:
            _sync(device)
            start = time.perf_counter()
            model(input_values, attention_mask=attention_mask, exit_layer=layer, output_exits=False)
            _sync(device)
            if step >= warmup:
                times[layer].append(time.perf_counter() - start)
    model.train(was_training)
    return {layer: float(np.median(values)) for layer, values in times.items()}


def pad_batch(examples: list[dict], input_name: str = "input_values") -> dict[str, Any]:
    """Zero-pad raw waveforms to the longest one, with an attention mask; labels from "labels" or "label";
    a "language" field is passed through as a list."""
    arrays = [torch.as_tensor(np.asarray(example[input_name]), dtype=torch.float32).flatten() for example in examples]
    length = max(array.shape[0] for array in arrays)
    values = torch.zeros(len(arrays), length)
    mask = torch.zeros(len(arrays), length, dtype=torch.long)
    for row, array in enumerate(arrays):
        values[row, : array.shape[0]] = array
        mask[row, : array.shape[0]] = 1
    batch = {input_name: values, "attention_mask": mask}
    key = "labels" if "labels" in examples[0] else "label" if "label" in examples[0] else None
    if key is not None:
        batch["labels"] = torch.as_tensor([int(example[key]) for example in examples])
    if "language" in examples[0]:
        batch["language"] = [example["language"] for example in examples]
    return batch


@dataclass
class ExitEvaluation:
    """Predictions of every head of one evaluation run, with sizes and latencies.

    `predictions` keys: "layer_<a>" per exit, "deepest", "fusion" (margin fusion of the exits, as the paper),
    "fusion_all" (exits + deepest) and, when a threshold was given, "early_exit" (with `exit_layer_used`), one
    row per clip. `latency_s` is the median seconds of one forward pass of one batch at each head (which batch:
    `evaluate_exits` / `evaluate_exits_with_trainer`); empty when not timed.
    """

    references: np.ndarray
    predictions: dict[str, np.ndarray]
    num_parameters: dict[str, int]
    latency_s: dict[str, float]
    head_layers: dict[str, int]
    exit_layer_used: np.ndarray | None = None
    languages: list | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def metrics(self, label_names: Sequence[str], languages: Sequence[str] | None = None, **kwargs) -> dict[str, dict]:
        """`hf_mtkd.metrics.compute_ser_metrics` (UR, WR, F1s, CIs, per language) for every head; `kwargs` go to
        it (e.g. `n_bootstrap=0`)."""
        from ..metrics import compute_ser_metrics

        languages = languages if languages is not None else self.languages
        return {
            name: compute_ser_metrics(preds, self.references, list(label_names), languages, **kwargs)
            for name, preds in self.predictions.items()
        }

    def summary(self) -> dict[str, dict[str, Any]]:
        """Per head: layer, parameters, latency and plain accuracy (WR) -- no metrics module needed."""
        rows = {}
        for name, preds in self.predictions.items():
            rows[name] = {
                "layer": self.head_layers.get(name),
                "num_parameters": self.num_parameters.get(name),
                "latency_s": self.latency_s.get(name),
                "accuracy": float((preds == self.references).mean()) if len(preds) else math.nan,
            }
        return rows


def early_exit_from_logits(
    exit_logits: Sequence[torch.Tensor], deepest_logits: torch.Tensor, exit_layers: Sequence[int], deepest_layer: int,
    threshold: float,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Confidence early exit decided on given logits: per row, the first head (exits in depth order, then the
    deepest) whose max softmax probability is >= `threshold`; returns its predictions and its layers.

    On the logits of single inputs this is `EarlyExitForAudioClassification.predict_early_exit`'s rule; on clip
    logits (window logits averaged per clip) a clip stops at the first head where the clip is confident."""
    if not 0.0 <= threshold <= 1.0:
        raise ValueError(f"threshold must be in [0, 1], got {threshold}.")
    rows = deepest_logits.shape[0]
    predictions = deepest_logits.argmax(-1)
    layers = torch.full((rows,), int(deepest_layer), dtype=torch.long)
    going = torch.ones(rows, dtype=torch.bool)
    for layer, logits in zip(exit_layers, exit_logits):
        stop = going & (logits.softmax(-1).max(-1).values >= threshold)
        predictions = torch.where(stop, logits.argmax(-1), predictions)
        layers[stop] = int(layer)
        going &= ~stop
    return predictions, layers


def exits_from_logits(
    model: EarlyExitForAudioClassification,
    exit_logits: Sequence[Any],
    deepest_logits: Any,
    references: Any,
    *,
    threshold: float | None = None,
    fusion_space: str = "logits",
    latency_s: dict[str, float] | None = None,
    languages: list | None = None,
) -> ExitEvaluation:
    """An `ExitEvaluation` from one row of logits per clip and head: predictions of every head, the margin fusions
    and, with `threshold`, confidence early exit (`early_exit_from_logits`), all on the same clip logits."""
    names = [f"layer_{layer}" for layer in model.config.exit_layers]
    if len(exit_logits) != len(names):
        raise ValueError(f"{len(exit_logits)} exit logits for the model's {len(names)} exits "
                         f"{model.config.exit_layers}.")
    heads = {name: torch.as_tensor(np.asarray(values)).float() for name, values in zip(names, exit_logits)}
    heads["deepest"] = torch.as_tensor(np.asarray(deepest_logits)).float()
    predictions = {name: values.argmax(-1).numpy() for name, values in heads.items()}
    head_layers = {name: layer for name, layer in zip(names, model.config.exit_layers)}
    head_layers["deepest"] = model.num_hidden_layers
    exit_list = [heads[name] for name in names]
    if names:
        predictions["fusion"] = fuse_by_margin(exit_list, fusion_space)[0].argmax(-1).numpy()
        predictions["fusion_all"] = fuse_by_margin(exit_list + [heads["deepest"]], fusion_space)[0].argmax(-1).numpy()
    exit_layer_used = None
    if threshold is not None:
        early, used = early_exit_from_logits(exit_list, heads["deepest"], model.config.exit_layers,
                                             model.num_hidden_layers, threshold)
        predictions["early_exit"], exit_layer_used = early.numpy(), used.numpy()
    return ExitEvaluation(
        references=np.asarray(references),
        predictions=predictions,
        num_parameters={name: model.num_parameters_at_exit(layer) for name, layer in head_layers.items()},
        latency_s=dict(latency_s or {}),
        head_layers=head_layers,
        exit_layer_used=exit_layer_used,
        languages=list(languages) if languages is not None else None,
        extra={"threshold": threshold, "fusion_space": fusion_space},
    )


def _head_latency(model: EarlyExitForAudioClassification, batch: dict, device, repeats: int) -> dict[str, float]:
    """`measure_exit_latency` on one batch, keyed by head name."""
    mask = batch.get("attention_mask")
    measured = measure_exit_latency(model, batch["input_values"].to(device),
                                    mask.to(device) if mask is not None else None, repeats=repeats)
    return {(f"layer_{layer}" if layer != model.num_hidden_layers else "deepest"): seconds
            for layer, seconds in measured.items()}


@torch.no_grad()
def evaluate_exits(
    model: EarlyExitForAudioClassification,
    data: Iterable,
    *,
    batch_size: int = 8,
    collate_fn=None,
    threshold: float | None = None,
    fusion_space: str = "logits",
    latency_repeats: int = 5,
    device: str | torch.device | None = None,
    language_key: str = "language",
    sampling_rate: int | None = None,
) -> ExitEvaluation:
    """Run every head over `data` and return predictions per clip for every exit, the fusions and the deepest
    head, plus parameters per head and the latency of each head.

    Clips are scored by the window rule of `hf_mtkd.windowing` that training recorded in the model's config
    (`train_window_seconds`): each clip is cut into windows of the training length and every head's logits are
    averaged over a clip's windows; fusion and early exit then decide on those clip logits. A model whose
    config has no window scores each clip whole. (A run's own report goes through the trainer instead,
    `evaluate_exits_with_trainer`, so that its batches are those of the standard report.)

    Args:
        data: a dataset / list of examples (`input_values`, `label(s)`) batched here with `collate_fn` (default:
            `pad_batch`, zero padding + attention mask), or, for a model without a window only, a
            `torch.utils.data.DataLoader` (or any iterable of batches with `input_values`, optional
            `attention_mask`, `labels`).
        threshold: also run confidence-based early exit (`early_exit_from_logits`) with this threshold.
        latency_repeats: timed passes per head (0 skips timing). What is timed: one forward pass, stopped at each
            head in turn, of the first batch of `data` as given (whole clips, not windows); the median is kept.
        sampling_rate: of `input_values`; needed when the model's config has a window (to turn seconds into samples).
    """
    device = torch.device(device) if device is not None else next(model.parameters()).device
    rule = None
    if window_seconds_from_config(model.config) is not None:
        if sampling_rate is None:
            raise ValueError(
                f"The model was trained on windows of {window_seconds_from_config(model.config)} s "
                f"({CONFIG_KEY} in its config): pass sampling_rate= (the feature extractor's) so that evaluate_exits "
                "scores clips by the same window rule."
            )
        if isinstance(data, torch.utils.data.DataLoader) or not hasattr(data, "__getitem__"):
            raise ValueError("A model trained on windows needs a dataset or list of examples (clips to cut into "
                             "windows), not a DataLoader or an iterable of batches.")
        rule = WindowRule.from_config(model.config, int(sampling_rate))
    collate = collate_fn or pad_batch
    if isinstance(data, torch.utils.data.DataLoader) or not hasattr(data, "__getitem__"):
        batches = data
    else:
        batches = torch.utils.data.DataLoader(data, batch_size=batch_size, shuffle=False, collate_fn=collate)
    was_training = model.training
    model.eval()
    num_exits = len(model.config.exit_layers)
    logits: list[list[torch.Tensor]] = [[] for _ in range(num_exits + 1)]  # exits, then the deepest head

    def run_heads(batch: dict) -> None:
        mask = batch.get("attention_mask")
        output = model(batch["input_values"].to(device), attention_mask=mask.to(device) if mask is not None else None,
                       output_exits=True)
        for chunks, values in zip(logits, [*output.exit_logits, output.logits]):
            chunks.append(values.float().cpu())

    references, languages, latency = [], [], {}
    for batch in batches:
        labels = batch.get("labels", batch.get("label"))
        if labels is None:
            raise ValueError("evaluate_exits needs labels in every batch ('labels' or 'label').")
        references.append(torch.as_tensor(labels).cpu())
        if language_key in batch:
            languages.extend(list(batch[language_key]))
        if latency_repeats and not latency:
            latency = _head_latency(model, batch, device, latency_repeats)
        if rule is None:
            run_heads(batch)
    if rule is not None:
        windows, clip_index = [], []
        for clip, example in enumerate(data):
            for window in rule.windows(np.asarray(example["input_values"], dtype=np.float32).reshape(-1)):
                windows.append({**example, "input_values": window})
                clip_index.append(clip)
        for batch in torch.utils.data.DataLoader(windows, batch_size=batch_size, shuffle=False, collate_fn=collate):
            run_heads(batch)
        heads = average_by_clip([torch.cat(chunks).numpy() for chunks in logits], clip_index, len(data))
    else:
        heads = [torch.cat(chunks).numpy() for chunks in logits]
    model.train(was_training)
    return exits_from_logits(model, heads[:-1], heads[-1], torch.cat(references).numpy(), threshold=threshold,
                             fusion_space=fusion_space, latency_s=latency, languages=languages or None)


def evaluate_exits_with_trainer(
    trainer,
    dataset,
    *,
    threshold: float | None = None,
    fusion_space: str = "logits",
    latency_loader: Iterable | None = None,
    latency_repeats: int = 3,
    languages: list | None = None,
) -> ExitEvaluation:
    """Every head of a `SelfDistillationTrainer`'s model on `dataset`, scored as the standard report scores it:
    `trainer.predict` (the windowed evaluation of `hf_mtkd.windowing`: windows of the training length, every
    head's logits averaged per clip) returns the deepest and the exit logits per clip, so the deepest head's
    predictions are the standard report's. `trainer.predict` is a collective: call this on every process.

    Latency (with `latency_loader` and `latency_repeats` > 0): one forward pass, stopped at each head in turn, of
    the first batch of `latency_loader` (the caller's whole-clip batches, not windows); the median is kept."""
    output = trainer.predict(dataset, metric_key_prefix="exits")
    predictions = output.predictions
    if not isinstance(predictions, (tuple, list)) or len(predictions) != 2:
        raise ValueError("Expected predictions (deepest_logits, exit_logits) from SelfDistillationTrainer.predict.")
    deepest, exits = predictions
    model = trainer.accelerator.unwrap_model(trainer.model)
    latency = {}
    if latency_loader is not None and latency_repeats:
        latency = _head_latency(model, next(iter(latency_loader)), next(model.parameters()).device, latency_repeats)
    return exits_from_logits(model, list(exits or ()), deepest, output.label_ids, threshold=threshold,
                             fusion_space=fusion_space, latency_s=latency, languages=languages)



__all__ = [
    "ExitEvaluation",
    "early_exit_from_logits",
    "evaluate_exits",
    "evaluate_exits_with_trainer",
    "exits_from_logits",
    "measure_exit_latency",
    "pad_batch",
]
