"""The exported model: frozen upstream + trained student in one `PreTrainedModel` that takes waveforms.

`pipeline("audio-classification", model=dir)` and `hf-mtkd predict` load it through
`AutoModelForAudioClassification` once hf_mtkd's Auto classes are registered (`import hf_mtkd`). Each clip
in a batch goes through the upstream on its own (its valid samples, per the attention mask), exactly as the
feature cache computed the training features, so the exported model's logits on a clip equal the student's
logits on that clip's cached features.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F
from transformers import PreTrainedModel
from transformers.modeling_outputs import SequenceClassifierOutput

from .modeling_inverted_transformer import InvertedTransformerForFeatureClassification
from .configuration_inverted_transformer import WaveformStudentConfig
from .upstream import build_upstream, clip_features


class WaveformStudentForAudioClassification(PreTrainedModel):
    config_class = WaveformStudentConfig
    config: WaveformStudentConfig
    main_input_name = "input_values"
    input_modalities = "audio"
    accepts_loss_kwargs = False

    def __init__(self, config: WaveformStudentConfig):
        super().__init__(config)
        if config.student_config is None:
            raise ValueError("WaveformStudentConfig.student_config is None: the exported model needs its trained "
                             "student.")
        self.upstream = build_upstream(config)
        self.student = InvertedTransformerForFeatureClassification(config.student_config)
        self.post_init()

    @classmethod
    def from_parts(cls, upstream: nn.Module, upstream_config: WaveformStudentConfig,
                   student: InvertedTransformerForFeatureClassification) -> "WaveformStudentForAudioClassification":
        """The export: a copy of `upstream` (as described by `upstream_config`) and of `student`."""
        fields = upstream_config.to_dict()
        fields["student_config"] = student.config.to_dict()
        for key in ("id2label", "label2id", "model_type", "transformers_version", "architectures"):
            fields.pop(key, None)
        model = cls(WaveformStudentConfig(**fields))
        model.upstream.load_state_dict(upstream.state_dict())
        model.student.load_state_dict(student.state_dict())
        return model.to(next(student.parameters()).device).eval()

    def features(self, input_values: torch.Tensor, attention_mask: torch.Tensor | None = None) -> torch.Tensor:
        """(B, [L,] max_frames, N): the upstream on each clip alone, without gradients (it is frozen)."""
        if input_values.dim() != 2:
            raise ValueError(f"input_values must be (batch, samples) waveforms, got shape "
                             f"{tuple(input_values.shape)}.")
        with torch.no_grad():
            return torch.stack(
                [
                    clip_features(
                        self.upstream,
                        self.config,
                        input_values[i],
                        None if attention_mask is None else attention_mask[i],
                    )
                    for i in range(input_values.shape[0])
                ]
            )

    def forward(
        self,
        input_values: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        labels: torch.Tensor | None = None,
        return_dict: bool | None = None,
        **kwargs,
    ) -> SequenceClassifierOutput:
        dtype = next(self.student.parameters()).dtype
        logits = self.student(self.features(input_values, attention_mask).to(dtype)).logits
        loss = F.cross_entropy(logits, labels) if labels is not None else None
        return SequenceClassifierOutput(loss=loss, logits=logits)


__all__ = ["WaveformStudentForAudioClassification"]
