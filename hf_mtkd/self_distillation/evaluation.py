"""Evaluating an early-exit model: predictions per exit, fusion and early exit, parameters and latency."""

from __future__ import annotations

import math
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from .modeling_early_exit import EarlyExitForAudioClassification, fuse_by_margin


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
    "fusion_all" (exits + deepest) and, when a threshold was given, "early_exit" (with `exit_layer_used`).
    `latency_s` is the median seconds of one forward pass of the first batch at each head.
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
) -> ExitEvaluation:
    """Run every head over `data` and return predictions per exit, for fusion and for the deepest head, plus
    parameters per head and the latency of each head measured on the first batch.

    Args:
        data: a `torch.utils.data.DataLoader` (or any iterable of batches: dicts with `input_values`, optional
            `attention_mask`, `labels`), or a dataset / list of examples (`input_values`, `label(s)`) that is
            batched here with `collate_fn` (default: `pad_batch`, zero padding + attention mask).
        threshold: also run confidence-based early exit (`predict_early_exit`) with this threshold.
        latency_repeats: timed passes per head (0 skips timing).
    """
    device = torch.device(device) if device is not None else next(model.parameters()).device
    was_training = model.training
    model.eval()
    if isinstance(data, torch.utils.data.DataLoader):
        batches = data
    else:
        batches = torch.utils.data.DataLoader(
            data, batch_size=batch_size, shuffle=False, collate_fn=collate_fn or pad_batch
        )
    names = [f"layer_{layer}" for layer in model.config.exit_layers]
    logits: dict[str, list[torch.Tensor]] = {name: [] for name in [*names, "deepest"]}
    references, early_preds, early_layers, languages = [], [], [], []
    latency: dict[str, float] = {}
    for batch in batches:
        input_values = batch["input_values"].to(device)
        attention_mask = batch.get("attention_mask")
        attention_mask = attention_mask.to(device) if attention_mask is not None else None
        labels = batch.get("labels", batch.get("label"))
        if labels is None:
            raise ValueError("evaluate_exits needs labels in every batch ('labels' or 'label').")
        references.append(torch.as_tensor(labels).cpu())
        if language_key in batch:
            languages.extend(list(batch[language_key]))
        if latency_repeats and not latency:
            measured = measure_exit_latency(model, input_values, attention_mask, repeats=latency_repeats)
            latency = {
                (f"layer_{layer}" if layer != model.num_hidden_layers else "deepest"): seconds
                for layer, seconds in measured.items()
            }
        output = model(input_values, attention_mask=attention_mask, output_exits=True)
        for name, exit_logits in zip(names, output.exit_logits):
            logits[name].append(exit_logits.float().cpu())
        logits["deepest"].append(output.logits.float().cpu())
        if threshold is not None:
            early = model.predict_early_exit(input_values, attention_mask, threshold=threshold)
            early_preds.append(early.predictions.cpu())
            early_layers.append(early.exit_layer.cpu())
    model.train(was_training)

    all_logits = {name: torch.cat(chunks) for name, chunks in logits.items()}
    predictions = {name: values.argmax(-1).numpy() for name, values in all_logits.items()}
    head_layers = {name: layer for name, layer in zip(names, model.config.exit_layers)}
    head_layers["deepest"] = model.num_hidden_layers
    if names:
        exit_list = [all_logits[name] for name in names]
        predictions["fusion"] = fuse_by_margin(exit_list, fusion_space)[0].argmax(-1).numpy()
        predictions["fusion_all"] = fuse_by_margin(exit_list + [all_logits["deepest"]], fusion_space)[0].argmax(-1).numpy()
    exit_layer_used = None
    if threshold is not None:
        predictions["early_exit"] = torch.cat(early_preds).numpy()
        exit_layer_used = torch.cat(early_layers).numpy()
    num_parameters = {name: model.num_parameters_at_exit(layer) for name, layer in head_layers.items()}
    return ExitEvaluation(
        references=torch.cat(references).numpy(),
        predictions=predictions,
        num_parameters=num_parameters,
        latency_s=latency,
        head_layers=head_layers,
        exit_layer_used=exit_layer_used,
        languages=languages or None,
        extra={"threshold": threshold, "fusion_space": fusion_space},
    )



__all__ = ["ExitEvaluation", "evaluate_exits", "measure_exit_latency", "pad_batch"]
