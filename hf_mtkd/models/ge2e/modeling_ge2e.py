"""The GE2E voice encoder over partial windows, pooled by window statistics, with a classification head.

`GE2EModel` embeds each partial window as Resemblyzer's `VoiceEncoder.forward` does (last hidden state of the top
LSTM layer -> linear projection -> ReLU -> L2 normalisation) and pools the windows of each clip (the attention
mask says which are real): the mean and standard deviation for the classifier, and the L2-normalised mean, which is
the wheel's `embed_utterance`. With `pretrained_encoder: resemblyzer` a model built from its config copies the
encoder's weights from the installed wheel in `_init_weights`, through transformers' `init.copy_`, which leaves
weights that `from_pretrained` has loaded alone: a saved model reads its own model.safetensors and nothing else.
"""

from __future__ import annotations

from typing import Optional

import torch
from torch import nn
from transformers import PreTrainedModel

from ..logmel_cnn.modeling_logmel_cnn import classification_output, masked_statistics_pooling
from .configuration_ge2e import GE2EConfig, resemblyzer_weights_path


def load_resemblyzer_state() -> dict[str, torch.Tensor]:
    """The wheel's encoder weights under this module's names (lstm.*, projection.*)."""
    checkpoint = torch.load(resemblyzer_weights_path(), map_location="cpu", weights_only=True)
    state = checkpoint["model_state"]
    out = {name: tensor for name, tensor in state.items() if name.startswith("lstm.")}
    out.update({name.replace("linear.", "projection.", 1): tensor for name, tensor in state.items()
                if name.startswith("linear.")})
    return out


class GE2EPreTrainedModel(PreTrainedModel):
    config_class = GE2EConfig
    base_model_prefix = "ge2e"
    main_input_name = "input_values"
    supports_gradient_checkpointing = False

    def _init_weights(self, module):
        from transformers import initialization as init

        if isinstance(module, nn.Linear):
            init.normal_(module.weight, mean=0.0, std=self.config.initializer_range)
            if module.bias is not None:
                init.zeros_(module.bias)
        elif isinstance(module, nn.LayerNorm):
            init.ones_(module.weight)
            init.zeros_(module.bias)
        elif isinstance(module, nn.LSTM):
            super()._init_weights(module)
        if isinstance(self, GE2EModel) and self.config.pretrained_encoder == "resemblyzer" and module in (
                self.lstm, self.projection):
            # After the module's own init above. Only weights that no checkpoint has loaded are copied, and the wheel
            # is read only when there are such weights.
            prefix = "lstm." if module is self.lstm else "projection."
            targets = {prefix + name: p for name, p in module.named_parameters()
                       if not getattr(p, "_is_hf_initialized", False)}
            if targets:
                state = load_resemblyzer_state()
                for name, param in targets.items():
                    init.copy_(param, state[name].to(param.dtype))


class GE2EModel(GE2EPreTrainedModel):
    """The encoder. forward -> (window embeddings (batch, windows, embedding_size), window mask (batch, windows))."""

    def __init__(self, config: GE2EConfig):
        super().__init__(config)
        self.lstm = nn.LSTM(config.num_mel_bins, config.hidden_size, config.num_hidden_layers, batch_first=True)
        self.projection = nn.Linear(config.hidden_size, config.embedding_size)
        self.post_init()

    def embed_windows(self, windows: torch.Tensor) -> torch.Tensor:
        """(n, frames, num_mel_bins) -> (n, embedding_size) L2-normalised window embeddings."""
        _, (hidden, _) = self.lstm(windows)
        embeddings = torch.relu(self.projection(hidden[-1]))
        # The wheel divides by the norm as it is; the floor only keeps an all-zero embedding (every projection output
        # negative, rare in a trained encoder, common in a random one) at zero instead of NaN.
        return embeddings / embeddings.norm(dim=-1, keepdim=True).clamp(min=1e-12)

    def forward(self, input_values: torch.Tensor, attention_mask: Optional[torch.Tensor] = None):
        if input_values.ndim != 4 or input_values.shape[-1] != self.config.num_mel_bins:
            raise ValueError(
                f"input_values must be (batch, windows, frames, {self.config.num_mel_bins}) mel windows from "
                f"GE2EFeatureExtractor, got shape {tuple(input_values.shape)}."
            )
        batch, windows = input_values.shape[:2]
        if attention_mask is None:
            mask = torch.ones(batch, windows, dtype=torch.bool, device=input_values.device)
        else:
            mask = attention_mask.bool()
        embeddings = input_values.new_zeros(batch, windows, self.config.embedding_size)
        embeddings[mask] = self.embed_windows(input_values[mask])  # padding windows are never run
        return embeddings, mask

    def utterance_embeddings(self, input_values: torch.Tensor, attention_mask: Optional[torch.Tensor] = None):
        """(batch, embedding_size): the L2-normalised mean of each clip's window embeddings (`embed_utterance`)."""
        embeddings, mask = self(input_values, attention_mask)
        mean = (embeddings * mask[..., None]).sum(dim=1) / mask.sum(dim=1, keepdim=True).clamp(min=1)
        return mean / mean.norm(dim=-1, keepdim=True).clamp(min=1e-12)


def window_statistics(embeddings: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """(batch, 2 x embedding_size): mean and standard deviation over each clip's real windows."""
    return masked_statistics_pooling(embeddings.transpose(1, 2), mask.long().sum(dim=1), with_std=True)


class GE2EForAudioClassification(GE2EPreTrainedModel):
    def __init__(self, config: GE2EConfig):
        super().__init__(config)
        self.ge2e = GE2EModel(config)
        width = 2 * config.embedding_size
        if config.classifier_hidden_size > 0:
            hidden = config.classifier_hidden_size
            layers = [nn.Dropout(config.classifier_dropout), nn.Linear(width, hidden), nn.ReLU(),
                      nn.Dropout(config.classifier_dropout), nn.Linear(hidden, config.num_labels)]
        else:
            layers = [nn.Dropout(config.classifier_dropout), nn.Linear(width, config.num_labels)]
        # LayerNorm first: window statistics of unit-norm embeddings are small numbers (~0.06 and ~0.01) that a
        # classifier at the usual learning rates would take many steps to scale up to. "none" keeps the slot (an
        # Identity), so the layers' names (classifier.2, ...) are the same either way.
        norm = nn.LayerNorm(width) if config.classifier_norm == "layer" else nn.Identity()
        self.classifier = nn.Sequential(norm, *layers)
        self.post_init()
        self.apply_freeze_encoder()

    @classmethod
    def from_resemblyzer(cls, **config_kwargs) -> "GE2EForAudioClassification":
        """A new classifier on the installed resemblyzer wheel's encoder; `config_kwargs` go to GE2EConfig (labels,
        freeze_encoder, encoder_learning_rate, the head). The same as building from a config with the default
        `pretrained_encoder: resemblyzer`."""
        return cls(GE2EConfig(**{**config_kwargs, "pretrained_encoder": "resemblyzer"}))

    def apply_freeze_encoder(self) -> None:
        """The encoder's requires_grad as `config.freeze_encoder` says."""
        self.ge2e.requires_grad_(not self.config.freeze_encoder)

    @classmethod
    def from_pretrained(cls, *args, **kwargs):
        # transformers builds the model on the meta device and then puts the loaded weights in as new parameters,
        # which drops the requires_grad set in __init__: set it again on the loaded model.
        loaded = super().from_pretrained(*args, **kwargs)
        (loaded[0] if isinstance(loaded, tuple) else loaded).apply_freeze_encoder()
        return loaded

    def freeze_feature_encoder(self):
        """The mel front end has no weights: nothing to freeze (`freeze_encoder` in the config fixes the LSTM)."""

    def parameter_learning_rates(self) -> dict[str, float]:
        """Parameter name -> its own learning rate, for those that do not use the trainer's (hf_mtkd trainers)."""
        rate = self.config.encoder_learning_rate
        if rate is None:
            return {}
        return {f"ge2e.{name}": rate for name, p in self.ge2e.named_parameters() if p.requires_grad}

    def forward(
        self,
        input_values: torch.Tensor,
        attention_mask: Optional[torch.Tensor] = None,
        labels: Optional[torch.Tensor] = None,
        output_hidden_states: Optional[bool] = None,
        return_dict: Optional[bool] = None,
        **kwargs,
    ):
        return_dict = return_dict if return_dict is not None else self.config.return_dict
        embeddings, mask = self.ge2e(input_values, attention_mask)
        logits = self.classifier(window_statistics(embeddings, mask))
        states = (embeddings,) if output_hidden_states else None
        return classification_output(logits, labels, states, return_dict)


__all__ = [
    "GE2EForAudioClassification",
    "GE2EModel",
    "GE2EPreTrainedModel",
    "load_resemblyzer_state",
    "window_statistics",
]
