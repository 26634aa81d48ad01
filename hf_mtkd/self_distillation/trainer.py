"""`SelfDistillationTrainer`: a `Trainer` whose loss is SPEC section 2's self-distillation loss."""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping

import numpy as np
import torch

from ..registry import Paper
from ..training.trainer import SERTrainer
from .config import SelfDistillationConfig
from .losses import self_distillation_loss
from ..models.early_exit.exit_heads import fuse_by_margin
from ..models.early_exit.modeling_early_exit import EarlyExitClassifierOutput

# forward() arguments the trainer sets itself; batch keys with these names are not passed through.
_CONTROL_ARGUMENTS = {"self", "labels", "exit_layer", "output_exits", "output_hidden_states", "return_dict"}


class SelfDistillationTrainer(SERTrainer):
    """Fine-tunes an `EarlyExitForAudioClassification` and its exits together.

    Batch keys the model does not take (e.g. `language_id` from the data collator) are dropped before the
    forward. Each loss part ("ce", "ce_exits", "kl", "similarity") and each exit's CE ("ce_exit_<layer>") are
    averaged over the logging interval and logged (with an "eval_" prefix during evaluation; `SERTrainer.log`).
    In evaluation the predictions are `(deepest_logits, exit_logits_tuple)`: a compute_metrics that takes
    `predictions[0]` scores the deepest head; `make_exit_compute_metrics` scores every head.
    """

    _name = "self-distillation with early exits"
    _description = (
        "The model was fine-tuned together with shallower exits of itself (cross-entropy on every "
        "exit, KL from the deepest head to each exit, and a similarity term between their representations)."
    )
    _paper = Paper(
        title="Fast yet effective speech emotion recognition with self-distillation",
        authors="Zhao Ren, Thanh Tam Nguyen, Yi Chang and Björn W. Schuller",
    )
    _tag_names = ("self_distillation", "knowledge-distillation")

    # compute_loss returns a per-batch mean: the Trainer divides it by the gradient-accumulation steps.
    loss_is_scaled_for_ga = False

    def __init__(self, model=None, args: SelfDistillationConfig | None = None, **kwargs):
        if args is None:
            args = SelfDistillationConfig(output_dir="trainer_output")
        if not isinstance(args, SelfDistillationConfig):
            raise TypeError(f"args must be a SelfDistillationConfig, got {type(args).__name__}.")
        if model is None or not hasattr(model, "exit_heads"):
            raise TypeError("SelfDistillationTrainer needs an EarlyExitForAudioClassification model.")
        super().__init__(model=model, args=args, **kwargs)
        forward_params = inspect.signature(model.forward).parameters
        self._model_input_names = set(forward_params) - _CONTROL_ARGUMENTS
        self._exit_layers = list(model.config.exit_layers)

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        labels = inputs.get("labels")
        if labels is None:
            raise ValueError("Self-distillation needs `labels` in every batch.")
        model_inputs = {key: value for key, value in inputs.items() if key in self._model_input_names}
        outputs = model(**model_inputs, output_exits=True)
        if self.args.similarity_level == "embedding":
            deep_repr, exit_reprs = outputs.pooled_output, outputs.exit_pooled_outputs
        else:
            deep_repr, exit_reprs = outputs.projected_output, outputs.exit_projected_outputs
        loss, parts = self_distillation_loss(
            outputs.logits,
            outputs.exit_logits,
            labels,
            deep_repr,
            exit_reprs,
            gamma=self.args.gamma,
            alpha=self.args.alpha,
            beta=self.args.beta,
            similarity=self.args.similarity,
            temperature=self.args.kd_temperature,
            detach_deep_target=self.args.detach_deep_target,
            label_smoothing=self.args.label_smoothing_factor,
            centre_similarity=self.args.centre_similarity,
        )
        self._record(parts)
        if return_outputs:
            return loss, EarlyExitClassifierOutput(loss=loss, logits=outputs.logits, exit_logits=outputs.exit_logits)
        return loss

    def _record(self, parts: Mapping[str, torch.Tensor]) -> None:
        """One device sync per step for all parts; `log` averages them over steps and processes."""
        names = ["ce", "ce_exits", "kl", "similarity"] + [f"ce_exit_{layer}" for layer in self._exit_layers]
        values = torch.cat([torch.stack([parts[name] for name in names[:4]]), parts["ce_per_exit"]]).detach()
        for name, value in zip(names, values.float().tolist()):
            self.record(name, value)


def make_exit_compute_metrics(
    exit_layers: list[int],
    metric_fn: Callable[[np.ndarray, np.ndarray], Mapping[str, float]],
    fusion_space: str = "logits",
) -> Callable:
    """A `compute_metrics` for `SelfDistillationTrainer` scoring the deepest head, every exit and the fusion.

    `metric_fn(predictions, references)` returns flat numbers (e.g. {"UR": ..., "WR": ...}). The deepest head's
    keep their names (so `metric_for_best_model="UR"` selects on the deepest head); the others are
    "<head>_<key>" with head in "layer_<a>" and "fusion" (margin fusion of the exits, as the paper).
    """

    def compute_metrics(eval_pred) -> dict[str, float]:
        predictions, references = eval_pred.predictions, np.asarray(eval_pred.label_ids)
        if not isinstance(predictions, (tuple, list)) or len(predictions) != 2:
            raise ValueError("Expected predictions (deepest_logits, exit_logits) from SelfDistillationTrainer.")
        deep, exits = predictions
        heads = {"deepest": np.asarray(deep)}
        exits = list(exits) if exits is not None else []
        heads.update({f"layer_{layer}": np.asarray(logits) for layer, logits in zip(exit_layers, exits)})
        if exits:
            fused, _ = fuse_by_margin([torch.as_tensor(np.asarray(e)) for e in exits], space=fusion_space)
            heads["fusion"] = fused.numpy()
        results = {}
        for head, logits in heads.items():
            for key, value in metric_fn(logits.argmax(-1), references).items():
                results[key if head == "deepest" else f"{head}_{key}"] = value
        return results

    return compute_metrics


__all__ = ["SelfDistillationTrainer", "make_exit_compute_metrics"]
