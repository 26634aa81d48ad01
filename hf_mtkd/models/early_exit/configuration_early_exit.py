"""Model configuration of a wav2vec2-family classifier with early exits (self-distillation).

The architecture follows Ren et al., "Fast yet effective speech emotion recognition with
self-distillation" (SPEC section 2):

- deepest head: mean-pool(T_N output) -> L1 (``head_hidden_size``) -> L2 (``num_labels``);
- one exit after each transformer layer ``a`` in ``exit_layers``: block M_a on the unpooled
  layer output (``exit_block``) -> mean-pool -> L1_a -> L2_a.

There is no nonlinearity between L1 and L2 (as in the authors' code and in the stock
``Wav2Vec2ForSequenceClassification`` head), which is what lets an exit with block ``"none"``
be exported as a stock ``<Backbone>ForSequenceClassification`` that computes the same logits.
"""

from __future__ import annotations

from typing import ClassVar

from transformers import AutoConfig, PretrainedConfig
from transformers.configuration_utils import SubConfigSpec

from ...auto_classes import LazyAutoModelsMixin

#: Backbone ``model_type`` values whose layer loop :class:`EarlyExitForAudioClassification` re-implements.
SUPPORTED_BACKBONES = ("wav2vec2", "hubert", "wavlm", "data2vec-audio")
#: Blocks M_a that may sit between an exit's transformer layer and its pooling.
EXIT_BLOCKS = ("none", "cnn", "lstm", "gru")
POOLING_MODES = ("mean",)


def validate_exit_layers(exit_layers, num_hidden_layers: int | None = None) -> list[int]:
    """Check and normalise exit layers; errors say what is wrong and what is allowed."""
    if isinstance(exit_layers, (int, str)):
        raise ValueError(f"exit_layers must be a list of layer numbers, got {exit_layers!r}.")
    layers = list(exit_layers)
    for layer in layers:
        if isinstance(layer, bool) or not isinstance(layer, int):
            raise ValueError(f"exit_layers must hold integers (1-based transformer layers), got {layer!r}.")
    duplicates = sorted({layer for layer in layers if layers.count(layer) > 1})
    if duplicates:
        raise ValueError(f"exit_layers has duplicates: {duplicates} (in {layers}).")
    if num_hidden_layers is not None:
        bad = [layer for layer in layers if not 1 <= layer <= num_hidden_layers - 1]
        if bad:
            raise ValueError(
                f"exit_layers {bad} are outside 1..{num_hidden_layers - 1}: an exit sits after transformer layer a "
                f"with 1 <= a < num_hidden_layers (= {num_hidden_layers}; the last layer is the deepest head)."
            )
    else:
        bad = [layer for layer in layers if layer < 1]
        if bad:
            raise ValueError(f"exit_layers {bad} must be >= 1 (1-based transformer layer numbers).")
    return sorted(layers)


def validate_block(name: str, field_name: str = "exit_block") -> str:
    if name not in EXIT_BLOCKS:
        raise ValueError(f"Unknown {field_name} {name!r}; choose one of {', '.join(EXIT_BLOCKS)}.")
    return name


class EarlyExitAudioConfig(LazyAutoModelsMixin, PretrainedConfig):
    r"""
    backbone_config (`dict` or `PretrainedConfig`, *optional*):
        Config of the wav2vec2-family encoder (model_type wav2vec2, hubert, wavlm or data2vec-audio).
        Defaults to a wav2vec2-base config.
    exit_layers (`list[int]`, *optional*, defaults to `[3, 8, 10]`):
        1-based transformer layers after which an exit sits (the paper's {3, 8, 10}); each in
        1..num_hidden_layers-1, no duplicates; stored sorted. May be empty (plain fine-tuning).
    exit_block (`str`, *optional*, defaults to `"none"`):
        Block M_a of every exit: "none", "cnn" (pointwise Conv1d, hidden -> hidden), "lstm" or "gru"
        (unidirectional, hidden -> hidden). Non-"none" blocks are followed by LayerNorm and SELU (the authors'
        RNN block). Only "none" exits export as stock transformers models.
    final_block (`str`, *optional*, defaults to `"none"`):
        Block in front of the deepest head. The paper has none; an exit with a block exported as a model of its
        own becomes a truncated model whose final block is that exit's block.
    head_hidden_size (`int`, *optional*, defaults to 256):
        Output size D1 of L1 (and of every L1_a).
    pooling (`str`, *optional*, defaults to `"mean"`):
        Temporal pooling: mean over the frames the attention mask keeps (all frames without a mask).
    initializer_range (`float`, *optional*, defaults to 0.02):
        Std of the normal init of the heads' linear layers.
    """

    model_type = "hf_mtkd_early_exit"
    sub_configs_defaults = {
        "backbone_config": SubConfigSpec(config_class=AutoConfig, model_type="wav2vec2"),
    }
    # Outputs the Trainer should not gather as predictions.
    keys_to_ignore_at_inference: ClassVar[list[str]] = [
        "pooled_output",
        "projected_output",
        "exit_pooled_outputs",
        "exit_projected_outputs",
        "hidden_states",
    ]

    backbone_config: dict | PretrainedConfig | None = None
    exit_layers: list[int] | tuple[int, ...] = (3, 8, 10)
    exit_block: str = "none"
    final_block: str = "none"
    head_hidden_size: int = 256
    pooling: str = "mean"
    initializer_range: float = 0.02

    def __post_init__(self, **kwargs):
        super().__post_init__(**kwargs)
        if self.id2label is not None and not self.label2id:
            self.label2id = {label: index for index, label in self.id2label.items()}
        backbone_type = getattr(self.backbone_config, "model_type", None)
        if backbone_type not in SUPPORTED_BACKBONES:
            raise ValueError(
                f"backbone_config has model_type {backbone_type!r}; early exits are implemented for "
                f"{', '.join(SUPPORTED_BACKBONES)}."
            )
        if getattr(self.backbone_config, "add_adapter", False):
            raise ValueError("Backbones with add_adapter=True are not supported (as in "
                             "<Backbone>ForSequenceClassification).")
        if getattr(self.backbone_config, "use_weighted_layer_sum", False):
            raise ValueError(
                "backbone_config.use_weighted_layer_sum=True mixes all layers into the head, which defeats early "
                "exits; set it to False."
            )
        self.exit_layers = validate_exit_layers(self.exit_layers, self.backbone_config.num_hidden_layers)
        validate_block(self.exit_block, "exit_block")
        validate_block(self.final_block, "final_block")
        if self.pooling not in POOLING_MODES:
            raise ValueError(f"Unknown pooling {self.pooling!r}; choose one of {', '.join(POOLING_MODES)}.")
        if self.head_hidden_size < 1:
            raise ValueError(f"head_hidden_size must be >= 1, got {self.head_hidden_size}.")

    @property
    def num_hidden_layers(self) -> int:
        """Transformer layers of the backbone (the deepest head sits after the last one)."""
        return self.backbone_config.num_hidden_layers

    @property
    def hidden_size(self) -> int:
        return self.backbone_config.hidden_size


__all__ = ["EarlyExitAudioConfig", "EXIT_BLOCKS", "SUPPORTED_BACKBONES", "validate_exit_layers"]
