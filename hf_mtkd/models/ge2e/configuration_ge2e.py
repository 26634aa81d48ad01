"""Configuration of the GE2E voice encoder as an audio classifier.

The encoder is Resemblyzer's (Wan et al., "Generalized end-to-end loss for speaker verification", 2018): a
3-layer LSTM of 256 over 40-band mel frames, whose last hidden state goes through a 256-d projection, a ReLU
and an L2 normalisation. An utterance is cut into partial windows of 160 frames (1.6 s), 1.3 per second; each
window gets its own embedding. The classifier sees the mean and standard deviation of the window embeddings.

The encoder's weights come from the `pretrained.pt` file of the installed `resemblyzer` wheel (Apache-2.0;
`pip install 'hf_mtkd[ge2e]'`) when a model is built from a config, never from the network. `save_pretrained`
writes them into model.safetensors, so a saved model loads and predicts without resemblyzer.
"""

from __future__ import annotations

import importlib.util
import os
from typing import Optional

from transformers import PretrainedConfig

from ...auto_classes import LazyAutoModelsMixin

#: Where a freshly built encoder takes its weights from: the installed wheel's file, or a random init (None).
PRETRAINED_ENCODERS = ("resemblyzer", None)
#: What the classifier does to the window statistics first: a LayerNorm, or nothing (an nn.Identity in its place).
CLASSIFIER_NORMS = ("layer", "none")
#: The pretrained encoder's shape (the wheel's hparams.py).
RESEMBLYZER_SHAPE = {"num_mel_bins": 40, "hidden_size": 256, "num_hidden_layers": 3, "embedding_size": 256}


def resemblyzer_weights_path() -> str:
    """Path of `pretrained.pt` inside the installed resemblyzer package, found without importing it (its import
    pulls in librosa and webrtcvad)."""
    try:
        spec = importlib.util.find_spec("resemblyzer")
    except (ImportError, ValueError):
        spec = None
    if spec is None or not spec.submodule_search_locations:
        raise ImportError(
            "pretrained_encoder 'resemblyzer' reads the GE2E weights shipped in the resemblyzer wheel: "
            "pip install 'hf_mtkd[ge2e]' (or pip install resemblyzer). A saved GE2E model needs no resemblyzer."
        )
    path = os.path.join(list(spec.submodule_search_locations)[0], "pretrained.pt")
    if not os.path.exists(path):
        raise FileNotFoundError(f"The installed resemblyzer package has no pretrained.pt ({path}).")
    return path


class GE2EConfig(LazyAutoModelsMixin, PretrainedConfig):
    r"""
    num_mel_bins (`int`, *optional*, defaults to 40):
        Mel bands per frame (the feature extractor's `num_mel_bins`).
    hidden_size (`int`, *optional*, defaults to 256):
        Width of each LSTM layer.
    num_hidden_layers (`int`, *optional*, defaults to 3):
        LSTM layers.
    embedding_size (`int`, *optional*, defaults to 256):
        Width of the projection: the window embedding. The classifier sees 2 x embedding_size statistics.
    pretrained_encoder (`str` or `None`, *optional*, defaults to `"resemblyzer"`):
        Where a model built from this config takes the encoder's weights: "resemblyzer" (the installed wheel's
        pretrained.pt; the shape fields must then be the defaults) or None (random init, e.g. tiny test models).
        `from_pretrained` reads the weights saved in model.safetensors and never this file.
    freeze_encoder (`bool`, *optional*, defaults to `True`):
        Keep the LSTM and the projection fixed (only the classifier trains): frozen embeddings + a classifier.
    encoder_learning_rate (`float`, *optional*):
        Learning rate of the encoder when it is fine-tuned (freeze_encoder False); None: the trainer's. hf_mtkd's
        trainers read it through `GE2EForAudioClassification.parameter_learning_rates`.
    classifier_hidden_size (`int`, *optional*, defaults to 256):
        Width of the classifier's hidden layer; 0: a linear classifier (logistic regression on the statistics).
    classifier_norm (`str`, *optional*, defaults to `"layer"`):
        Normalisation of the statistics before the classifier's layers: "layer" (a LayerNorm, which lets a new head
        learn at the usual rates) or "none" (an identity in the same slot, so the layers keep their parameter names):
        the classic floor's export, whose linear layer already holds the standardisation.
    classifier_dropout (`float`, *optional*, defaults to 0.1):
        Dropout before each layer of the classifier.
    initializer_range (`float`, *optional*, defaults to 0.02):
        Std of the normal init of the classifier's linear layers.
    """

    model_type = "hf_mtkd_ge2e"

    num_mel_bins: int = 40
    hidden_size: int = 256
    num_hidden_layers: int = 3
    embedding_size: int = 256
    pretrained_encoder: Optional[str] = "resemblyzer"
    freeze_encoder: bool = True
    encoder_learning_rate: Optional[float] = None
    classifier_hidden_size: int = 256
    classifier_norm: str = "layer"
    classifier_dropout: float = 0.1
    initializer_range: float = 0.02

    def __post_init__(self, **kwargs):
        super().__post_init__(**kwargs)
        if self.id2label is not None and not self.label2id:
            self.label2id = {label: index for index, label in self.id2label.items()}
        if self.pretrained_encoder not in PRETRAINED_ENCODERS:
            raise ValueError(
                f"pretrained_encoder must be one of {PRETRAINED_ENCODERS}, got {self.pretrained_encoder!r}.")
        for name in ("num_mel_bins", "hidden_size", "num_hidden_layers", "embedding_size"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}.")
        if self.pretrained_encoder == "resemblyzer":
            wrong = {k: getattr(self, k) for k, v in RESEMBLYZER_SHAPE.items() if getattr(self, k) != v}
            if wrong:
                raise ValueError(f"pretrained_encoder 'resemblyzer' has the shape {RESEMBLYZER_SHAPE}; got {wrong} "
                                 "(set pretrained_encoder: null for another shape, trained from scratch).")
        if self.classifier_hidden_size < 0:
            raise ValueError(f"classifier_hidden_size must be >= 0 (0: linear), got {self.classifier_hidden_size}.")
        if self.classifier_norm not in CLASSIFIER_NORMS:
            raise ValueError(f"classifier_norm must be one of {CLASSIFIER_NORMS}, got {self.classifier_norm!r}.")
        if not 0.0 <= self.classifier_dropout < 1.0:
            raise ValueError(f"classifier_dropout must be in [0, 1), got {self.classifier_dropout}.")
        if self.encoder_learning_rate is not None and not self.encoder_learning_rate > 0:
            raise ValueError(
                f"encoder_learning_rate must be > 0 (or None: the trainer's), got {self.encoder_learning_rate}.")


__all__ = ["CLASSIFIER_NORMS", "GE2EConfig", "PRETRAINED_ENCODERS", "RESEMBLYZER_SHAPE", "resemblyzer_weights_path"]
