"""Export one head of an early-exit model as a model of its own.

- Block "none": a stock `<Backbone>ForSequenceClassification` (Wav2Vec2ForSequenceClassification,
  HubertForSequenceClassification, WavLMForSequenceClassification, Data2VecAudioForSequenceClassification)
  with `num_hidden_layers = exit layer`, `projector` = L1_a, `classifier` = L2_a. It loads with
  `pipeline("audio-classification")` without hf_mtkd and without remote code, and gives the exit's logits:
  the stock head projects then mean-pools (over the same frame mask) then classifies, which equals
  pool -> L1 -> L2 because pooling commutes with an affine map; with `do_stable_layer_norm=True` the
  stock encoder applies its final `layer_norm` after its last (here: the exit's) layer, as the exit does.
- Any other block: a saved `EarlyExitForAudioClassification` truncated to the exit (no exits left, the exit's
  block and linears as its deepest head). Loading it needs `import hf_mtkd` (which registers the Auto classes).
"""

from __future__ import annotations

import os

from transformers import MODEL_FOR_AUDIO_CLASSIFICATION_MAPPING, PreTrainedModel

from ..models.early_exit.configuration_early_exit import EarlyExitAudioConfig
from ..models.early_exit.modeling_early_exit import EarlyExitForAudioClassification


def _truncated_backbone_config(model: EarlyExitForAudioClassification, layers: int):
    config = model.config.backbone_config
    config = config.__class__.from_dict(config.to_dict())
    config.num_hidden_layers = layers
    return config


def _backbone_state(model: EarlyExitForAudioClassification, layers: int, prefix: str) -> dict:
    state = {}
    for key, value in model.backbone.state_dict().items():
        if key.startswith("encoder.layers."):
            if int(key.split(".")[2]) >= layers:
                continue
        state[prefix + key] = value
    return state


def build_exit_model(model: EarlyExitForAudioClassification, exit_layer: int) -> PreTrainedModel:
    """The standalone model of the head after `exit_layer` (an exit, or `num_hidden_layers` for the deepest
    head), in memory; see the module docstring for which class it is."""
    stop = model._resolve_exit_layer(exit_layer)
    deepest = stop == model.num_hidden_layers
    head = model.head if deepest else model.exit_heads[model.config.exit_layers.index(stop)]
    block = model.config.final_block if deepest else model.config.exit_block
    backbone_config = _truncated_backbone_config(model, stop)
    id2label = dict(model.config.id2label)
    label2id = dict(model.config.label2id or {label: index for index, label in id2label.items()})

    if block == "none":
        model_class = MODEL_FOR_AUDIO_CLASSIFICATION_MAPPING[type(backbone_config)]
        backbone_config.classifier_proj_size = model.config.head_hidden_size
        backbone_config.use_weighted_layer_sum = False
        backbone_config.id2label = id2label
        backbone_config.label2id = label2id
        backbone_config.architectures = [model_class.__name__]
        exported = model_class(backbone_config)
        state = _backbone_state(model, stop, exported.base_model_prefix + ".")
        state.update({f"projector.{k}": v for k, v in head.projector.state_dict().items()})
        state.update({f"classifier.{k}": v for k, v in head.classifier.state_dict().items()})
    else:
        config = EarlyExitAudioConfig(
            backbone_config=backbone_config,
            exit_layers=[],
            exit_block=model.config.exit_block,
            final_block=block,
            head_hidden_size=model.config.head_hidden_size,
            pooling=model.config.pooling,
            id2label=id2label,
            label2id=label2id,
        )
        exported = EarlyExitForAudioClassification(config)
        state = _backbone_state(model, stop, "backbone.")
        state.update({f"head.{k}": v for k, v in head.state_dict().items()})
    exported.load_state_dict(state, strict=True)
    reference = next(model.parameters())
    return exported.to(device=reference.device, dtype=reference.dtype).eval()


def export_exit(
    model: EarlyExitForAudioClassification,
    exit_layer: int,
    output_dir: str | os.PathLike,
    feature_extractor=None,
    **save_kwargs,
) -> PreTrainedModel:
    """Save the head after `exit_layer` as a model of its own in `output_dir` (with `feature_extractor`, which
    `pipeline("audio-classification")` needs next to the model). Returns the exported model."""
    exported = build_exit_model(model, exit_layer)
    exported.save_pretrained(output_dir, **save_kwargs)
    if feature_extractor is not None:
        feature_extractor.save_pretrained(output_dir)
    return exported


__all__ = ["build_exit_model", "export_exit"]
