"""Frozen upstreams that turn one clip into student features (frames x channels), the same way in the
feature cache and in the exported waveform model.

Two kinds (see `WaveformStudentConfig`): a torchaudio filterbank (log-mel or MFCC), for machines without a
pretrained speech encoder, and any transformers audio encoder, from whose `hidden_states` one layer is taken
(or all of them, for the student's learnable weighted sum). Features are made clip by clip and then cropped or
zero-padded to `max_frames`: a clip's features never depend on which clips shared its batch (a filterbank's
edge frames and a wav2vec2-base encoder without attention mask would see the padding).
"""

from __future__ import annotations

import hashlib
import json
from typing import Optional

import torch
from torch import nn
from transformers import AutoFeatureExtractor, AutoModel, PreTrainedModel, Wav2Vec2FeatureExtractor

from ...modeling_utils import hash_weights, load_pretrained
from .configuration_inverted_transformer import WaveformStudentConfig


class FilterbankUpstream(nn.Module):
    """waveform (1, S) -> (1, T, N): torchaudio log-mel (dB) or MFCC, each band standardised over the clip."""

    def __init__(self, config: WaveformStudentConfig):
        super().__init__()
        import torchaudio  # deferred: only filterbank models need it

        melkwargs = {"n_fft": config.n_fft, "hop_length": config.hop_length, "n_mels": config.n_mels}
        # The filterbank matrices are computed, not learnt: on the CPU even inside from_pretrained's meta-device
        # construction (torchaudio's computation cannot run on "meta"); the saved copies then load over them.
        with torch.device("cpu"):
            if config.filterbank == "log_mel":
                self.transform = nn.Sequential(
                    torchaudio.transforms.MelSpectrogram(sample_rate=config.sampling_rate, **melkwargs),
                    torchaudio.transforms.AmplitudeToDB(stype="power"),
                )
            else:
                self.transform = torchaudio.transforms.MFCC(sample_rate=config.sampling_rate, n_mfcc=config.n_mfcc,
                                                            melkwargs=melkwargs)
        self.normalize = config.normalize_features

    def forward(self, input_values: torch.Tensor, attention_mask: Optional[torch.Tensor] = None) -> torch.Tensor:
        bands = self.transform(input_values.float())  # (1, N, T)
        if self.normalize:
            bands = (bands - bands.mean(dim=-1, keepdim=True)) / (
                bands.std(dim=-1, unbiased=False, keepdim=True) + 1e-5
            )
        return bands.transpose(1, 2)


class TransformersUpstream(nn.Module):
    """A frozen transformers audio encoder; input (1, S) -> hidden_states[layer] (1, T, H), or every hidden
    state stacked (1, L+1, T, H) when `layer` is None."""

    def __init__(self, encoder: PreTrainedModel, layer: Optional[int]):
        super().__init__()
        self.encoder = encoder.requires_grad_(False).eval()
        self.layer = layer

    def train(self, mode: bool = True):
        # Frozen: never in training mode (no dropout, LayerDrop or the encoder's own time masking).
        return super().train(False)

    def forward(self, input_values: torch.Tensor, attention_mask: Optional[torch.Tensor] = None) -> torch.Tensor:
        kwargs = {"attention_mask": attention_mask} if attention_mask is not None else {}
        hidden_states = self.encoder(input_values, output_hidden_states=True, **kwargs).hidden_states
        if self.layer is None:
            return torch.stack(hidden_states, dim=1)
        return hidden_states[self.layer]


def build_upstream(config: WaveformStudentConfig, encoder: Optional[PreTrainedModel] = None) -> nn.Module:
    """The upstream `config` describes; a transformers encoder is built from its config unless given (loaded)."""
    if config.is_filterbank:
        return FilterbankUpstream(config)
    if encoder is None:
        encoder = AutoModel.from_config(config.upstream_config)
    return TransformersUpstream(encoder, config.upstream_layer)


def fix_frames(features: torch.Tensor, max_frames: int) -> torch.Tensor:
    """Crop (keep the first `max_frames`) or zero-pad the frame axis (-2) to exactly `max_frames` frames."""
    frames = features.shape[-2]
    if frames >= max_frames:
        return features[..., :max_frames, :]
    pad = features.new_zeros((*features.shape[:-2], max_frames - frames, features.shape[-1]))
    return torch.cat([features, pad], dim=-2)


def clip_features(
    upstream: nn.Module,
    config: WaveformStudentConfig,
    input_values: torch.Tensor,
    attention_mask: Optional[torch.Tensor] = None,
) -> torch.Tensor:
    """Features of one clip: input_values (S,) [+ attention_mask (S,), right padding] -> ([L,] max_frames, N)."""
    if attention_mask is not None:
        length = int(attention_mask.sum())
        input_values, attention_mask = input_values[:length], attention_mask[:length]
    if config.max_input_samples is not None:
        input_values = input_values[: config.max_input_samples]
        attention_mask = attention_mask[: config.max_input_samples] if attention_mask is not None else None
    mask = attention_mask[None] if attention_mask is not None else None
    features = upstream(input_values[None], attention_mask=mask)[0]
    return fix_frames(features, config.max_frames)


def default_feature_extractor(config: WaveformStudentConfig) -> Wav2Vec2FeatureExtractor:
    """For a filterbank upstream: raw samples at the model's rate (no normalisation) and an attention mask,
    so that pipeline() hands the model waveforms and the model can find each clip's end."""
    return Wav2Vec2FeatureExtractor(
        feature_size=1, sampling_rate=config.sampling_rate, padding_value=0.0, do_normalize=False,
        return_attention_mask=True,
    )


def upstream_feature_extractor(config, hub_kwargs: Optional[dict] = None):
    """The feature extractor of the upstream a `MetaCurriculumConfig` names (its `sampling_rate` is the rate the
    data is decoded at), loading only that: a filterbank's, or the encoder checkpoint's."""
    if config.upstream_model_name_or_path is None:
        return default_feature_extractor(WaveformStudentConfig(**config.filterbank_kwargs()))
    return load_pretrained(AutoFeatureExtractor, config.upstream_model_name_or_path,
                           "feature extractor of the upstream encoder", **(hub_kwargs or {}))


def load_upstream(
    upstream_model_name_or_path: Optional[str],
    upstream_layer: Optional[int],
    *,
    filterbank_kwargs: Optional[dict] = None,
    max_frames: int,
    max_input_samples: Optional[int],
    hub_kwargs: Optional[dict] = None,
) -> tuple[nn.Module, WaveformStudentConfig, object]:
    """(upstream module, its description, its feature extractor) from a checkpoint, or a filterbank."""
    hub_kwargs = hub_kwargs or {}
    if upstream_model_name_or_path is None:
        config = WaveformStudentConfig(
            max_frames=max_frames, max_input_samples=max_input_samples, **(filterbank_kwargs or {})
        )
        return build_upstream(config), config, default_feature_extractor(config)
    encoder = load_pretrained(AutoModel, upstream_model_name_or_path, "upstream encoder", **hub_kwargs)
    feature_extractor = load_pretrained(AutoFeatureExtractor, upstream_model_name_or_path,
                                        "feature extractor of the upstream encoder", **hub_kwargs)
    if (
        getattr(encoder.config, "num_hidden_layers", None) is None
        or getattr(encoder.config, "hidden_size", None) is None
    ):
        raise ValueError(
            f"upstream {upstream_model_name_or_path!r} ({type(encoder).__name__}) has no "
            f"num_hidden_layers/hidden_size: "
            "give a transformers audio encoder (wav2vec2, HuBERT, WavLM, data2vec-audio, ...)."
        )
    config = WaveformStudentConfig(
        upstream_config=encoder.config.to_dict(), upstream_layer=upstream_layer, max_frames=max_frames,
        max_input_samples=max_input_samples, sampling_rate=int(feature_extractor.sampling_rate),
    )
    return build_upstream(config, encoder), config, feature_extractor


def upstream_fingerprint(upstream: nn.Module, config: WaveformStudentConfig, feature_extractor) -> str:
    """A hash of everything that changes a clip's features: weights, upstream config and layer, frame fixing,
    input crop, filterbank settings and the feature extractor's preprocessing."""
    digest = hashlib.sha256()
    digest.update(json.dumps(config.upstream_description(), sort_keys=True, default=str).encode())
    fe = feature_extractor.to_dict()
    fe.pop("processor_class", None)
    digest.update(json.dumps(fe, sort_keys=True, default=str).encode())
    hash_weights(upstream, digest)
    return digest.hexdigest()


__all__ = [
    "FilterbankUpstream",
    "TransformersUpstream",
    "build_upstream",
    "clip_features",
    "default_feature_extractor",
    "fix_frames",
    "load_upstream",
    "upstream_feature_extractor",
    "upstream_fingerprint",
]
