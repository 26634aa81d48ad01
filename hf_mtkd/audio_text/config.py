"""Arguments of the audio + text method: the model (encoders, tokenizer, student truncation) and the
training (KD weights, teacher, two-phase schedule)."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Optional

from ..arguments import JSONField, _parse_json_field
from ..training.args import SERTrainingArguments
from ..models.audio_text.configuration_audio_text import MODALITIES
from .students import STUDENT_INITS, parse_layer_selection

logger = logging.getLogger(__name__)


@dataclass
class AudioTextModelArguments:
    """Where a new audio + text model's parts come from, or how a student is cut from a saved one.

    With ModelArguments.model_type = hf_mtkd_audio_text a new model is built from the encoders below
    (ModelArguments.config_overrides sets AudioTextConfig attributes such as fusion_num_attention_heads);
    with ModelArguments.model_name_or_path = a saved audio_text model, that model is loaded, and cut into
    a student when num_text_layers or an explicit layer list is given.
    """

    modalities: str = field(
        default="audio_text", metadata={"help": "audio_text (fused), text or audio (single-modality baselines)."}
    )
    text_encoder: Optional[str] = field(
        default=None,
        metadata={
            "help": "Hub id or path of the text encoder (e.g. bert-base-uncased; a saved audio_text model gives its "
                    "own)."
        },
    )
    text_encoder_type: Optional[str] = field(
        default=None,
        metadata={"help": "Build the text encoder from a fresh config of this model_type (e.g. bert) instead."},
    )
    text_encoder_config_overrides: Optional[JSONField] = field(
        default=None,
        metadata={"help": 'JSON object of text encoder config attributes, e.g. {"num_hidden_layers": 4}.'},
    )
    audio_encoder: Optional[str] = field(
        default=None,
        metadata={
            "help": "Hub id or path of the audio encoder (any transformers audio encoder; a fine-tuned classifier "
                    "gives its encoder)."
        },
    )
    audio_encoder_type: Optional[str] = field(
        default=None,
        metadata={"help": "Build the audio encoder from a fresh config of this model_type (e.g. wav2vec2) instead."},
    )
    audio_encoder_config_overrides: Optional[JSONField] = field(
        default=None, metadata={"help": "JSON object of audio encoder config attributes."}
    )
    tokenizer_name: Optional[str] = field(
        default=None,
        metadata={"help": "Hub id or path of the tokenizer; default: the text encoder's (or the saved model's)."},
    )
    train_tokenizer_vocab_size: Optional[int] = field(
        default=None,
        metadata={
            "help": "Learn a WordPiece vocabulary of this size from the training transcripts (offline demos) instead "
                    "of loading a tokenizer."
        },
    )
    max_text_length: Optional[int] = field(
        default=None, metadata={"help": "Truncate transcripts to this many tokens (default: the tokenizer's limit)."}
    )
    num_text_layers: Optional[int] = field(
        default=None,
        metadata={
            "help": "Make a student: keep this many text-encoder layers of model_name_or_path (paper: 6, 4, 2)."
        },
    )
    layer_selection: str = field(
        default="bottom",
        metadata={
            "help": "Which teacher layers a student keeps: bottom (authors' code), uniform, or a list of 1-based "
                    "layers like [2, 4, 6]."
        },
    )
    student_init: str = field(
        default="teacher",
        metadata={
            "help": "Where a student's text layers come from: pretrained (the authors' code: the bottom k layers "
            "of the pretrained text encoder, `text_encoder`, with a fresh fusion block and head) or teacher (the "
            "fine-tuned teacher's layers, and its fusion block and head unless copy_fusion_from_teacher is false)."
        },
    )
    copy_fusion_from_teacher: bool = field(
        default=True,
        metadata={
            "help": "With student_init teacher: a student starts with the teacher's fusion block and head (false: "
                    "fresh ones)."
        },
    )

    def __post_init__(self):
        if self.modalities not in MODALITIES:
            raise ValueError(f"modalities must be one of {MODALITIES}, got {self.modalities!r}.")
        self.text_encoder_config_overrides = _parse_json_field(
            self.text_encoder_config_overrides, "text_encoder_config_overrides"
        )
        self.audio_encoder_config_overrides = _parse_json_field(
            self.audio_encoder_config_overrides, "audio_encoder_config_overrides"
        )
        for what in ("text", "audio"):
            if getattr(self, f"{what}_encoder") and getattr(self, f"{what}_encoder_type"):
                raise ValueError(f"Give {what}_encoder (pretrained) or {what}_encoder_type (fresh config), not both.")
        if self.train_tokenizer_vocab_size is not None and self.tokenizer_name:
            raise ValueError("Give tokenizer_name or train_tokenizer_vocab_size, not both.")
        if self.train_tokenizer_vocab_size is not None and self.train_tokenizer_vocab_size < 16:
            raise ValueError(f"train_tokenizer_vocab_size must be >= 16, got {self.train_tokenizer_vocab_size}.")
        if self.max_text_length is not None and self.max_text_length < 2:
            raise ValueError(f"max_text_length must be >= 2 ([CLS] and [SEP]), got {self.max_text_length}.")
        self.layer_selection = parse_layer_selection(self.layer_selection)
        if self.student_init not in STUDENT_INITS:
            raise ValueError(f"student_init must be one of {STUDENT_INITS}, got {self.student_init!r}.")
        if self.num_text_layers is not None and self.num_text_layers < 1:
            raise ValueError(f"num_text_layers must be >= 1, got {self.num_text_layers}.")
        if self.makes_student and self.student_init == "pretrained" and not self.text_encoder:
            # Checked with the recipe, before any data is decoded.
            raise ValueError(
                "student_init: pretrained takes the student's text layers from the pretrained text encoder the "
                "teacher started from: set text_encoder (e.g. bert-base-uncased)."
            )

    @property
    def makes_student(self) -> bool:
        return self.num_text_layers is not None or isinstance(self.layer_selection, list)


@dataclass
class AudioTextDistillationConfig(SERTrainingArguments):
    """TrainingArguments of the audio + text method: L = alpha T^2 KL(P_T || P_S) + (1 - alpha) CE + gamma MSE(text
    hidden states), and the paper's two phases (transfer with both encoders frozen, then fine-tuning with the text
    encoder unfrozen, starting from the transfer phase's best checkpoint on validation)."""

    teacher_model_name_or_path: Optional[str] = field(
        default=None,
        metadata={
            "help": "A saved audio_text teacher (frozen, eval mode, no grad). Without one the loss is plain CE "
                    "(alpha and gamma unused)."
        },
    )
    temperature: float = field(default=2.0, metadata={"help": "Softmax temperature T of the KL term (scaled by T^2); "
                                                              "paper: 2."})
    alpha: float = field(default=0.5, metadata={"help": "Weight of the KL term; CE gets 1 - alpha (paper: 0.5)."})
    gamma: float = field(
        default=1.0, metadata={"help": "Weight of the MSE between teacher and student text hidden states (paper: 1)."}
    )
    use_teacher_output_cache: bool = field(
        default=False,
        metadata={
            "help": "Compute the teacher's logits and text hidden states once before training (stored with the "
                    "dataset); training runs no teacher."
        },
    )
    teacher_batch_size: int = field(default=32, metadata={"help": "Batch size when filling the teacher-output cache."})
    transfer_epochs: float = field(
        default=50.0,
        metadata={
            "help": "Epochs of the transfer phase (both encoders frozen); 0 skips it. Paper: 50. max_steps, if set, "
                    "bounds each phase."
        },
    )
    num_train_epochs: float = field(
        default=100.0,
        metadata={
            "help": "Epochs of the fine-tuning phase (text encoder unfrozen, audio encoder frozen). Authors' code: "
                    "100."
        },
    )
    finetune_learning_rate: Optional[float] = field(
        default=None,
        metadata={"help": "Learning rate of the fine-tuning phase (default: learning_rate, as the paper)."},
    )
    lr_decay_every_epochs: Optional[float] = field(
        default=None,
        metadata={
            "help": "Multiply the learning rate by lr_decay_factor every this many epochs of a phase (paper: 30; "
                    "replaces lr_scheduler_type)."
        },
    )
    lr_decay_factor: float = field(default=0.1, metadata={"help": "Step decay factor (paper: 0.1)."})

    def __post_init__(self):
        super().__post_init__()
        if self.temperature <= 0:
            raise ValueError(f"temperature must be > 0, got {self.temperature}.")
        if not 0.0 <= self.alpha <= 1.0:
            raise ValueError(f"alpha must be in [0, 1], got {self.alpha}.")
        if self.gamma < 0:
            raise ValueError(f"gamma must be >= 0, got {self.gamma}.")
        if self.use_teacher_output_cache and not self.teacher_model_name_or_path:
            raise ValueError("use_teacher_output_cache needs teacher_model_name_or_path.")
        if self.teacher_batch_size < 1:
            raise ValueError(f"teacher_batch_size must be >= 1, got {self.teacher_batch_size}.")
        if self.transfer_epochs < 0:
            raise ValueError(f"transfer_epochs must be >= 0, got {self.transfer_epochs}.")
        if self.transfer_epochs > 0 and not self.load_best_model_at_end:
            logger.warning("load_best_model_at_end is off: the transfer phase's last model, not its best on "
                           "validation "
                           "(the paper's choice), starts the fine-tuning phase.")
        if self.max_steps > 0 and self.lr_decay_every_epochs is not None:
            raise ValueError("lr_decay_every_epochs counts epochs: it cannot be combined with max_steps.")
        if self.finetune_learning_rate is not None and self.finetune_learning_rate <= 0:
            raise ValueError(f"finetune_learning_rate must be > 0, got {self.finetune_learning_rate}.")
        if self.lr_decay_every_epochs is not None and self.lr_decay_every_epochs <= 0:
            raise ValueError(f"lr_decay_every_epochs must be > 0, got {self.lr_decay_every_epochs}.")
        if not 0.0 < self.lr_decay_factor <= 1.0:
            raise ValueError(f"lr_decay_factor must be in (0, 1], got {self.lr_decay_factor}.")

    @property
    def uses_teacher(self) -> bool:
        return bool(self.teacher_model_name_or_path)


__all__ = ["AudioTextDistillationConfig", "AudioTextModelArguments"]
