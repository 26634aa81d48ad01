"""A wav2vec2-family audio classifier with real early exits (self-distillation, SPEC section 2).

`EarlyExitForAudioClassification` wraps a stock backbone (`Wav2Vec2Model`, `HubertModel`,
`WavLMModel`, `Data2VecAudioModel`) but runs its transformer layers itself, one at a time, so
that inference at exit ``a`` computes the feature encoder, the feature projection, the positional
convolution and layers ``1..a`` only -- never the layers above (the authors' code ran all layers
and picked one).

The pre-layer steps reproduce the stock encoders of transformers 5.x exactly: padded frames are
zeroed, the attention mask is built with ``create_bidirectional_mask`` (WavLM takes the boolean
frame mask and passes its relative position bias from layer to layer), the positional convolution
is added, and the encoder ``layer_norm`` is applied before the layers (``do_stable_layer_norm=False``)
or after the last layer (``do_stable_layer_norm=True``). In the stable variant every exit applies
that same, shared ``encoder.layer_norm`` to its layer's output: this is exactly what a stock model
truncated to ``a`` layers computes, so an exported exit gives the same logits as the exit.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F
from transformers import AutoConfig, AutoModel, PretrainedConfig, PreTrainedModel
from transformers import initialization as init
from transformers.masking_utils import create_bidirectional_mask
from transformers.modeling_outputs import SequenceClassifierOutput

from .configuration_early_exit import SUPPORTED_BACKBONES, EarlyExitAudioConfig
from .exit_heads import ClassificationHead
from ..loading import config_kwargs



# ----------------------------------------------------------------------------------------------
# Outputs
# ----------------------------------------------------------------------------------------------
@dataclass
class EarlyExitClassifierOutput(SequenceClassifierOutput):
    """`SequenceClassifierOutput` plus what the exits produced.

    Args:
        loss: cross-entropy of `logits` when `labels` are given (the self-distillation loss lives in the trainer).
        logits: logits of the deepest head, or of the exit asked for with `exit_layer`.
        exit_logits: one tensor per computed exit, in the order of `config.exit_layers`.
        pooled_output: pooled output of the returned head's block (H_N for the deepest head).
        projected_output: output of the returned head's first linear layer (H_L).
        exit_pooled_outputs / exit_projected_outputs: H_Ma / H_La of every computed exit.
        hidden_states: the embeddings and the output of every layer run (before any final layer norm).
    """

    exit_logits: tuple[torch.Tensor, ...] | None = None
    pooled_output: torch.Tensor | None = None
    projected_output: torch.Tensor | None = None
    exit_pooled_outputs: tuple[torch.Tensor, ...] | None = None
    exit_projected_outputs: tuple[torch.Tensor, ...] | None = None


@dataclass
class EarlyExitPrediction:
    """Result of confidence-based early exit: per sample, the head it stopped at."""

    logits: torch.Tensor  # (batch, num_labels), from the head each sample stopped at
    exit_layer: torch.Tensor  # (batch,) transformer layer of that head (num_hidden_layers = deepest)
    confidence: torch.Tensor  # (batch,) max softmax probability at that head
    layers_run: int  # transformer layers the deepest-running sample went through

    @property
    def predictions(self) -> torch.Tensor:
        return self.logits.argmax(-1)


# ----------------------------------------------------------------------------------------------
# Layer-by-layer execution of the backbone
# ----------------------------------------------------------------------------------------------
@dataclass
class _EncoderState:
    hidden: torch.Tensor  # (batch, frames, hidden)
    frame_mask: torch.Tensor | None  # (batch, frames) bool, True = real frame
    layer_mask: Any  # what the layers take as attention_mask
    position_bias: torch.Tensor | None = None  # WavLM: relative position bias, (batch * heads, frames, frames)


class EarlyExitPreTrainedModel(PreTrainedModel):
    config_class = EarlyExitAudioConfig
    config: EarlyExitAudioConfig
    base_model_prefix = "backbone"
    main_input_name = "input_values"
    input_modalities = "audio"
    supports_gradient_checkpointing = True
    _supports_sdpa = True
    _supports_flash_attn = True
    _supports_flex_attn = True
    # The loss returned by forward is a per-batch mean: the Trainer must scale it for gradient accumulation.
    accepts_loss_kwargs = False

    @torch.no_grad()
    def _init_weights(self, module):
        super()._init_weights(module)  # Linear / Conv1d normal(initializer_range), LSTM, LayerNorm
        if isinstance(module, nn.GRU):
            for name, param in module.named_parameters():
                if "weight" in name:
                    init.xavier_uniform_(param)
                elif "bias" in name:
                    init.zeros_(param)


class EarlyExitForAudioClassification(EarlyExitPreTrainedModel):
    """Wav2vec2-family classifier with exits after `config.exit_layers` (see `EarlyExitAudioConfig`)."""

    def __init__(self, config: EarlyExitAudioConfig):
        super().__init__(config)
        self.backbone = AutoModel.from_config(config.backbone_config)
        self.exit_heads = nn.ModuleList(ClassificationHead(config, config.exit_block) for _ in config.exit_layers)
        self.head = ClassificationHead(config, config.final_block)
        self._is_wavlm = config.backbone_config.model_type == "wavlm"
        self._stable_layer_norm = bool(getattr(config.backbone_config, "do_stable_layer_norm", False))
        self.post_init()

    # ---------------------------------------------------------------- construction helpers
    @classmethod
    def from_backbone(
        cls,
        backbone: str | os.PathLike | PreTrainedModel | PretrainedConfig,
        *,
        exit_layers: Iterable[int] = (3, 8, 10),
        exit_block: str = "none",
        final_block: str = "none",
        head_hidden_size: int = 256,
        pooling: str = "mean",
        num_labels: int | None = None,
        id2label: dict[int, str] | None = None,
        label2id: dict[str, int] | None = None,
        backbone_config_overrides: dict[str, Any] | None = None,
        **from_pretrained_kwargs,
    ) -> EarlyExitForAudioClassification:
        """Build a model whose backbone weights come from a pretrained encoder.

        Args:
            backbone: a Hub id or local path (loaded with `AutoModel.from_pretrained`, so a wav2vec2 pretraining,
                CTC or classification checkpoint all give their encoder), a loaded model (its `base_model` is
                used), or a backbone config (random init).
            backbone_config_overrides: attributes to set on the backbone config (e.g. `{"layerdrop": 0.0}`).
            **from_pretrained_kwargs: passed to `AutoModel.from_pretrained` (cache_dir, revision, ...).
        """
        source_model = None
        if isinstance(backbone, PretrainedConfig):
            backbone_config = backbone
        else:
            if isinstance(backbone, (str, os.PathLike)):
                hub_kwargs = config_kwargs(from_pretrained_kwargs)
                found = AutoConfig.from_pretrained(backbone, **hub_kwargs)
                if isinstance(found, EarlyExitAudioConfig):  # an hf_mtkd checkpoint: reuse its encoder
                    source_model = cls.from_pretrained(backbone, **from_pretrained_kwargs).backbone
                elif found.model_type not in SUPPORTED_BACKBONES:  # fail before loading any weights
                    raise ValueError(
                        f"{backbone!r} is a {found.model_type!r} model; early exits are implemented for "
                        f"{', '.join(SUPPORTED_BACKBONES)}."
                    )
                else:
                    source_model = AutoModel.from_pretrained(backbone, **from_pretrained_kwargs)
            elif isinstance(backbone, PreTrainedModel):
                source_model = backbone.base_model
            else:
                raise TypeError(
                    f"backbone must be a model id/path, a PreTrainedModel or a PretrainedConfig, got {type(backbone)}."
                )
            backbone_config = source_model.config
        backbone_config = backbone_config.__class__.from_dict(backbone_config.to_dict())  # a copy
        for key, value in (backbone_config_overrides or {}).items():
            if not hasattr(backbone_config, key):
                raise ValueError(f"backbone_config_overrides: {type(backbone_config).__name__} has no attribute "
                                 f"{key!r}.")
            setattr(backbone_config, key, value)

        label_kwargs: dict[str, Any] = {}
        if id2label is not None:
            id2label = {int(k): v for k, v in id2label.items()}
            label_kwargs["id2label"] = id2label
            label_kwargs["label2id"] = label2id if label2id is not None else {v: k for k, v in id2label.items()}
        elif num_labels is not None:
            label_kwargs["num_labels"] = num_labels
        config = EarlyExitAudioConfig(
            backbone_config=backbone_config,
            exit_layers=list(exit_layers),
            exit_block=exit_block,
            final_block=final_block,
            head_hidden_size=head_hidden_size,
            pooling=pooling,
            **label_kwargs,
        )
        model = cls(config)
        if source_model is not None:
            # masked_spec_embed exists only when masking is on; overrides may switch it on or off.
            missing, unexpected = model.backbone.load_state_dict(source_model.state_dict(), strict=False)
            missing = [k for k in missing if k != "masked_spec_embed"]
            unexpected = [k for k in unexpected if k != "masked_spec_embed"]
            if missing or unexpected:
                raise ValueError(
                    f"Backbone weights do not fit the backbone config: missing {missing}, unexpected {unexpected}."
                )
            if isinstance(backbone, (str, os.PathLike)):
                model.config.backbone_config._name_or_path = str(backbone)
        return model

    def freeze_feature_encoder(self):
        """Stop gradients into the convolutional feature encoder (the papers freeze it)."""
        self.backbone.freeze_feature_encoder()

    # ---------------------------------------------------------------- layer-by-layer encoder
    @property
    def num_hidden_layers(self) -> int:
        return self.config.backbone_config.num_hidden_layers

    @property
    def head_layers(self) -> list[int]:
        """Transformer layer of every head: the exits, then the deepest head."""
        return [*self.config.exit_layers, self.num_hidden_layers]

    def _layer_mask(self, hidden: torch.Tensor, frame_mask: torch.Tensor | None):
        if self._is_wavlm:  # WavLM's attention takes the boolean frame mask as its key padding mask
            return frame_mask
        return create_bidirectional_mask(
            config=self.backbone.encoder.config, inputs_embeds=hidden, attention_mask=frame_mask
        )

    def _embed(self, input_values: torch.Tensor, attention_mask: torch.Tensor | None) -> _EncoderState:
        """Feature encoder, feature projection, (SpecAugment in training), positional conv: the encoder's input."""
        backbone = self.backbone
        encoder = backbone.encoder
        features = backbone.feature_extractor(input_values).transpose(1, 2)
        frame_mask = None
        if attention_mask is not None:
            frame_mask = backbone._get_feature_vector_attention_mask(features.shape[1], attention_mask).bool()
        projected = backbone.feature_projection(features)
        hidden = projected[0] if isinstance(projected, tuple) else projected
        hidden = backbone._mask_hidden_states(hidden, attention_mask=frame_mask)
        if frame_mask is not None:
            hidden = hidden.masked_fill(~frame_mask.unsqueeze(-1), 0.0)  # padded frames output 0
        layer_mask = self._layer_mask(hidden, frame_mask)
        hidden = hidden + encoder.pos_conv_embed(hidden)
        if not self._stable_layer_norm:
            hidden = encoder.layer_norm(hidden)
        hidden = encoder.dropout(hidden)
        return _EncoderState(hidden=hidden, frame_mask=frame_mask, layer_mask=layer_mask)

    def _run_layer(self, state: _EncoderState, index: int) -> _EncoderState:
        """Transformer layer `index` (0-based), with the encoder's LayerDrop in training."""
        layer = self.backbone.encoder.layers[index]
        layerdrop = self.config.backbone_config.layerdrop
        # WavLM never drops its first layer: it computes the relative position bias.
        if self.training and layerdrop > 0.0 and not (self._is_wavlm and index == 0):
            if torch.rand([]) < layerdrop:
                return state
        if self._is_wavlm:
            kwargs = {} if self._stable_layer_norm else {"index": index}
            hidden, position_bias = layer(
                state.hidden, attention_mask=state.layer_mask, position_bias=state.position_bias, **kwargs
            )
            state.position_bias = position_bias
        else:
            hidden = layer(state.hidden, attention_mask=state.layer_mask)
            if isinstance(hidden, tuple):
                hidden = hidden[0]
        state.hidden = hidden
        return state

    def _head_input(self, hidden: torch.Tensor) -> torch.Tensor:
        """What a head sees of a layer's output: the encoder's final layer norm in the stable variant."""
        return self.backbone.encoder.layer_norm(hidden) if self._stable_layer_norm else hidden

    def _select(self, state: _EncoderState, keep: torch.Tensor) -> _EncoderState:
        """Keep the samples `keep` (bool, batch) of an encoder state."""
        hidden = state.hidden[keep]
        frame_mask = state.frame_mask[keep] if state.frame_mask is not None else None
        position_bias = state.position_bias
        if position_bias is not None:
            batch, frames = state.hidden.shape[0], state.hidden.shape[1]
            position_bias = position_bias.view(batch, -1, frames, frames)[keep].reshape(-1, frames, frames)
        return _EncoderState(hidden, frame_mask, self._layer_mask(hidden, frame_mask), position_bias)

    def _resolve_exit_layer(self, exit_layer: int | None) -> int:
        if exit_layer is None or exit_layer == self.num_hidden_layers:
            return self.num_hidden_layers
        if exit_layer not in self.config.exit_layers:
            raise ValueError(
                f"exit_layer={exit_layer} is not a head of this model; heads sit after layers {self.head_layers}."
            )
        return exit_layer

    # ---------------------------------------------------------------- forward
    def forward(
        self,
        input_values: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        labels: torch.Tensor | None = None,
        exit_layer: int | None = None,
        output_exits: bool = True,
        output_hidden_states: bool | None = None,
        return_dict: bool | None = None,
    ) -> EarlyExitClassifierOutput | tuple:
        r"""
        input_values (`torch.Tensor` of shape `(batch, samples)`): raw waveform as the feature extractor makes it.
        attention_mask (`torch.Tensor` of shape `(batch, samples)`, *optional*): 1 for real samples, 0 for padding.
        labels (`torch.LongTensor` of shape `(batch,)`, *optional*): class ids; the loss is the CE of `logits`.
        exit_layer (`int`, *optional*): return the exit after this transformer layer; only layers `1..exit_layer`
            run. `None` (or `num_hidden_layers`) runs the whole model and returns the deepest head.
        output_exits (`bool`, defaults to `True`): with the whole model, also compute every exit (the training
            loss needs them); `False` computes the deepest head only.
        """
        output_hidden_states = (
            output_hidden_states if output_hidden_states is not None else self.config.output_hidden_states
        )
        return_dict = return_dict if return_dict is not None else self.config.return_dict
        stop = self._resolve_exit_layer(exit_layer)
        deepest = stop == self.num_hidden_layers
        wanted = {
            layer: index
            for index, layer in enumerate(self.config.exit_layers)
            if (deepest and output_exits) or layer == stop
        }

        state = self._embed(input_values, attention_mask)
        all_hidden = [state.hidden] if output_hidden_states else None
        exit_outputs = []
        head_output = None
        for index in range(stop):
            state = self._run_layer(state, index)
            layer = index + 1
            if all_hidden is not None:
                all_hidden.append(state.hidden)
            if layer in wanted:
                out = self.exit_heads[wanted[layer]](self._head_input(state.hidden), state.frame_mask)
                if layer == stop:
                    head_output = out
                else:
                    exit_outputs.append(out)
        if deepest:
            head_output = self.head(self._head_input(state.hidden), state.frame_mask)
        pooled, projected, logits = head_output

        loss = None
        if labels is not None:
            loss = F.cross_entropy(logits.view(-1, self.config.num_labels), labels.view(-1).to(logits.device))

        output = EarlyExitClassifierOutput(
            loss=loss,
            logits=logits,
            hidden_states=tuple(all_hidden) if all_hidden is not None else None,
            exit_logits=tuple(out[2] for out in exit_outputs) if deepest and output_exits else None,
            pooled_output=pooled,
            projected_output=projected,
            exit_pooled_outputs=tuple(out[0] for out in exit_outputs) if deepest and output_exits else None,
            exit_projected_outputs=tuple(out[1] for out in exit_outputs) if deepest and output_exits else None,
        )
        return output if return_dict else output.to_tuple()

    # ---------------------------------------------------------------- dynamic inference
    @torch.no_grad()
    def predict_early_exit(
        self,
        input_values: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        threshold: float = 0.9,
    ) -> EarlyExitPrediction:
        """Per-sample confidence exit: a sample stops at the first head whose max softmax probability is
        >= `threshold`; the layers above run only for the samples still going (the deepest head takes the rest).
        Call it in eval mode."""
        if not 0.0 <= threshold <= 1.0:
            raise ValueError(f"threshold must be in [0, 1], got {threshold}.")
        batch = input_values.shape[0]
        device = input_values.device
        out_logits = torch.zeros(batch, self.config.num_labels, device=device)
        out_layer = torch.full((batch,), self.num_hidden_layers, dtype=torch.long, device=device)
        out_conf = torch.zeros(batch, device=device)
        exit_index = {layer: i for i, layer in enumerate(self.config.exit_layers)}

        state = self._embed(input_values, attention_mask)
        active = torch.arange(batch, device=device)
        layers_run = 0
        for index in range(self.num_hidden_layers):
            state = self._run_layer(state, index)
            layers_run = index + 1
            if layers_run not in exit_index:
                continue
            _, _, logits = self.exit_heads[exit_index[layers_run]](self._head_input(state.hidden), state.frame_mask)
            confidence = logits.softmax(-1).max(-1).values
            done = confidence >= threshold
            if done.any():
                rows = active[done]
                out_logits[rows] = logits[done].to(out_logits.dtype)
                out_layer[rows] = layers_run
                out_conf[rows] = confidence[done].to(out_conf.dtype)
                if bool(done.all()):
                    return EarlyExitPrediction(out_logits, out_layer, out_conf, layers_run)
                active = active[~done]
                state = self._select(state, ~done)
        _, _, logits = self.head(self._head_input(state.hidden), state.frame_mask)
        out_logits[active] = logits.to(out_logits.dtype)
        out_conf[active] = logits.softmax(-1).max(-1).values.to(out_conf.dtype)
        return EarlyExitPrediction(out_logits, out_layer, out_conf, layers_run)

    # ---------------------------------------------------------------- sizes
    def num_parameters_at_exit(self, exit_layer: int | None = None) -> int:
        """Parameters used by inference at `exit_layer` (None = the deepest head): feature encoder, projection,
        positional conv, encoder layer norm, layers 1..exit_layer and that head (SpecAugment's mask embedding,
        a training-only parameter, is not counted)."""
        stop = self._resolve_exit_layer(exit_layer)
        layers = self.backbone.encoder.layers
        skipped = {id(p) for layer in layers[stop:] for p in layer.parameters()}
        masked = getattr(self.backbone, "masked_spec_embed", None)
        if masked is not None:
            skipped.add(id(masked))
        count = sum(p.numel() for p in self.backbone.parameters() if id(p) not in skipped)
        head = self.head if stop == self.num_hidden_layers else self.exit_heads[self.config.exit_layers.index(stop)]
        return count + sum(p.numel() for p in head.parameters())


__all__ = [
    "EarlyExitClassifierOutput",
    "EarlyExitForAudioClassification",
    "EarlyExitPreTrainedModel",
    "EarlyExitPrediction",
]
