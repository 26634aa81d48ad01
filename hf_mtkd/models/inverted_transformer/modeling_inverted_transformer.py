"""The inverted-transformer student on frozen upstream features (see `InvertedTransformerConfig`)."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F
from transformers import PreTrainedModel
from transformers import initialization as init
from transformers.modeling_outputs import SequenceClassifierOutput

from .configuration_inverted_transformer import InvertedTransformerConfig


@dataclass
class InvertedTransformerOutput(SequenceClassifierOutput):
    """`SequenceClassifierOutput` plus `pooled_output`: the mean of the channel tokens (B, d_model), the
    feature that the contrastive head, the meta-teacher and the PKD term read."""

    pooled_output: torch.Tensor | None = None


class InvertedTransformerPreTrainedModel(PreTrainedModel):
    config_class = InvertedTransformerConfig
    config: InvertedTransformerConfig
    base_model_prefix = "inverted_transformer"
    main_input_name = "input_features"
    input_modalities = "audio"
    # forward's loss is a per-batch mean: the Trainer must scale it for gradient accumulation itself.
    accepts_loss_kwargs = False

    @torch.no_grad()
    def _init_weights(self, module):
        super()._init_weights(module)  # Linear normal(initializer_range), MultiheadAttention torch init, LayerNorm
        if isinstance(module, InvertedTransformerForFeatureClassification) and module.layer_weights is not None:
            init.zeros_(module.layer_weights)  # equal weights for every upstream layer at the start (SUPERB)


class InvertedTransformerForFeatureClassification(InvertedTransformerPreTrainedModel):
    """features (B, T, N) [or (B, L, T, N)] -> channel tokens (B, N, d_model) -> encoder -> mean -> MLP -> logits."""

    def __init__(self, config: InvertedTransformerConfig):
        super().__init__(config)
        self.layer_weights = (
            nn.Parameter(torch.zeros(config.num_upstream_layers)) if config.num_upstream_layers > 1 else None
        )
        inverted = getattr(config, "token_axis", "channels") == "channels"
        self.embedding = nn.Linear(config.num_frames if inverted else config.num_channels, config.d_model)
        self.embedding_dropout = nn.Dropout(config.hidden_dropout)
        layer = nn.TransformerEncoderLayer(
            config.d_model,
            config.num_attention_heads,
            dim_feedforward=config.intermediate_size,
            dropout=config.hidden_dropout,
            activation=config.hidden_act,
            layer_norm_eps=config.layer_norm_eps,
            batch_first=True,
            norm_first=False,  # post-norm, as iTransformer's encoder layer
        )
        # The stock layer is iTransformer's EncoderLayer (attention, residual, norm, FFN, residual, norm);
        # nested tensors only help with padding masks, which channel tokens never have.
        self.encoder = nn.TransformerEncoder(layer, config.num_hidden_layers,
                                             norm=nn.LayerNorm(config.d_model, eps=config.layer_norm_eps),
                                             enable_nested_tensor=False)
        self.classifier = nn.Sequential(
            nn.Linear(config.d_model, config.classifier_hidden_size),
            nn.GELU() if config.hidden_act == "gelu" else nn.ReLU(),
            nn.Dropout(config.hidden_dropout),
            nn.Linear(config.classifier_hidden_size, config.num_labels),
        )
        self.contrastive_head = nn.Sequential(
            nn.Linear(config.d_model, config.d_model),
            nn.ReLU(),
            nn.Linear(config.d_model, config.contrastive_dim),
        )
        self.post_init()

    def mix_layers(self, input_features: torch.Tensor) -> torch.Tensor:
        """(B, T, N) as given, or (B, L, T, N) mixed by softmax(layer_weights) into (B, T, N)."""
        expected = (self.config.num_frames, self.config.num_channels)
        if self.layer_weights is None:
            if input_features.dim() != 3 or tuple(input_features.shape[1:]) != expected:
                raise ValueError(f"input_features must be (batch, {expected[0]}, {expected[1]}), got "
                                 f"{tuple(input_features.shape)}.")
            return input_features
        layers = self.config.num_upstream_layers
        if input_features.dim() != 4 or tuple(input_features.shape[1:]) != (layers, *expected):
            raise ValueError(
                f"input_features must be (batch, {layers}, {expected[0]}, {expected[1]}) (every upstream layer), "
                f"got {tuple(input_features.shape)}."
            )
        weights = torch.softmax(self.layer_weights, dim=0)
        return torch.einsum("l,bltn->btn", weights.to(input_features.dtype), input_features)

    def pooled_features(self, input_features: torch.Tensor) -> torch.Tensor:
        x = self.mix_layers(input_features)
        if self.config.normalize_series:
            # Each channel standardised over time (iTransformer's use_norm; statistics are not learnt).
            x = x - x.mean(dim=1, keepdim=True).detach()
            x = x / torch.sqrt(x.var(dim=1, keepdim=True, unbiased=False) + 1e-5).detach()
        if getattr(self.config, "token_axis", "channels") == "time":
            x = x.transpose(1, 2)  # (B, N, T): one token per time step (Table 4's non-inverted student)
        tokens = self.embedding_dropout(self.embedding(x.transpose(1, 2)))  # (B, N, d_model): one token per channel
        return self.encoder(tokens).mean(dim=1)

    def contrastive_embedding(self, pooled_output: torch.Tensor) -> torch.Tensor:
        """z for the supervised contrastive loss: L2-normalised projection of the pooled output."""
        return F.normalize(self.contrastive_head(pooled_output), dim=-1)

    def state_weights(self) -> torch.Tensor:
        """(classifier_hidden_size, d_model): the first classifier layer's weight, which the curriculum policy
        summarises into its state (MPDistil reads the student's last pooler weights)."""
        return self.classifier[0].weight

    def forward(
        self,
        input_features: torch.Tensor,
        labels: torch.Tensor | None = None,
        return_dict: bool | None = None,
        **kwargs,
    ) -> InvertedTransformerOutput:
        pooled = self.pooled_features(input_features)
        logits = self.classifier(pooled)
        loss = F.cross_entropy(logits, labels) if labels is not None else None
        return InvertedTransformerOutput(loss=loss, logits=logits, pooled_output=pooled)


__all__ = [
    "InvertedTransformerForFeatureClassification",
    "InvertedTransformerOutput",
    "InvertedTransformerPreTrainedModel",
]
