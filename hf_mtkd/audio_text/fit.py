"""The method's fitting step: build the model, optionally cache the teacher, then the paper's two phases.

1. Transfer phase (`transfer_epochs` > 0): both encoders frozen (and in eval mode); the fusion block and
   head train. The checkpoint with the best validation metric (`metric_for_best_model`, never the test
   set) is kept, saved to `<output_dir>/transfer_phase/`, and starts phase 2.
2. Fine-tuning phase (`num_train_epochs`): the text encoder trains too; the audio encoder stays frozen.
   The best checkpoint on validation is the result.

`fit_audio_text` returns the phase-2 trainer holding the final model, ready for the shared flow to save,
evaluate on validation and test, and write the card. A finished transfer phase is not redone when a run
is restarted (its marker and best model are on disk); phase 2 resumes from `resume_from_checkpoint`.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
from dataclasses import dataclass, field
from typing import Any, Callable, Optional

from datasets import DatasetDict

from ..arguments import DataArguments, ModelArguments
from ..training.evaluation import make_compute_metrics
from ..training.outputs import last_complete_checkpoint
from ..utils.atomic import write_json_atomic
from ..windowing import random_training_windows
from .build import build_audio_text_model, load_audio_text_teacher
from ..distillation.cache import check_cache_allowed
from .cache import add_audio_text_teacher_outputs
from .config import AudioTextDistillationConfig, AudioTextModelArguments
from .data import AudioTextCollator
from ..models.audio_text.modeling_audio_text import AudioTextForSequenceClassification
from ..models.audio_text.processing_audio_text import AudioTextProcessor
from .trainer import AudioTextDistillationTrainer

logger = logging.getLogger(__name__)

TRANSFER_DIR = "transfer_phase"
TRANSFER_DONE = "transfer_phase_done.json"


@dataclass
class PhaseResult:
    """What one phase did: its length, learning rate, what trained, and its best validation checkpoint."""

    name: str
    epochs: float
    learning_rate: float
    trainable_parameters: int
    best_metric: Optional[float]
    best_model_checkpoint: Optional[str]
    train_metrics: dict = field(default_factory=dict)
    reused: bool = False


@dataclass
class AudioTextFitResult:
    """The fitted run: the trainer holding the final (best phase-2) model, its processor and what each phase did."""

    trainer: AudioTextDistillationTrainer
    model: AudioTextForSequenceClassification
    processor: AudioTextProcessor
    splits: DatasetDict
    phases: list[PhaseResult]
    train_metrics: dict
    teacher: Optional[str]

    def summary_extras(self) -> dict[str, Any]:
        """JSON-ready keys for run_summary.json: phases, sizes, text layers kept, KD settings."""
        args: AudioTextDistillationConfig = self.trainer.args
        config = self.model.config
        return {
            "audio_text": {
                "modalities": config.modalities,
                "teacher": self.teacher,
                "kd": {"temperature": args.temperature, "alpha": args.alpha, "gamma": args.gamma}
                if self.teacher
                else None,
                "text_layers": config.text_config.num_hidden_layers if config.uses_text else 0,
                "text_layers_kept": config.text_layers_kept,
                "num_parameters": self.model.num_parameters(),
                "phases": [dataclasses.asdict(phase) for phase in self.phases],
            }
        }


def fit_audio_text(
    config: AudioTextDistillationConfig,
    model_args: ModelArguments,
    data_args: DataArguments,
    splits: DatasetDict,
    label_names: list[str],
    *,
    audio_text_args: AudioTextModelArguments,
    languages: Optional[list[str]] = None,
    compute_metrics: Optional[Callable] = None,
    resume_from_checkpoint: Optional[str] = None,
    callbacks: Optional[list] = None,
) -> AudioTextFitResult:
    """Build the model (new, continued or a student), then run the transfer and fine-tuning phases.

    `splits` are prepared by `prepare_audio_text_splits` (train/validation/test with `waveform`, `labels` and
    the text column); `config.output_dir` receives phase 2's checkpoints, the transfer phase goes to a subfolder.
    """
    text_column = data_args.text_column_name
    model, processor = build_audio_text_model(
        model_args, audio_text_args, label_names,
        train_texts=splits["train"][text_column] if text_column in splits["train"].column_names else None,
    )
    rate = processor.sampling_rate
    collator = AudioTextCollator(
        feature_extractor=processor.feature_extractor,
        sampling_rate=rate,
        language_column=data_args.language_column_name,
        language_to_id={lang: i for i, lang in enumerate(languages)} if languages else None,
        max_samples=int(data_args.max_duration_seconds * rate),
        random_crop=data_args.random_crop,
        seed=config.seed,
        processor=processor,
        text_column=text_column,
        max_text_length=audio_text_args.max_text_length,
        uses_text=model.config.uses_text,
        uses_audio=model.config.uses_audio,
    )
    eval_collator = dataclasses.replace(collator, random_crop=False)

    teacher = teacher_index = None
    if config.uses_teacher:
        teacher, teacher_index = load_audio_text_teacher(
            config.teacher_model_name_or_path, label_names, processor, model_args
        )
        if config.gamma > 0 and not (teacher.config.uses_text and model.config.uses_text):
            raise ValueError("gamma > 0 distils text hidden states: teacher and student both need a text encoder.")
        if config.use_teacher_output_cache:
            check_cache_allowed(random_training_windows(data_args))
            with config.main_process_first(desc="teacher-output cache"):
                splits = DatasetDict({
                    name: add_audio_text_teacher_outputs(
                        ds, teacher.to(config.device), processor, label_index=teacher_index, text_column=text_column,
                        max_samples=collator.max_samples, max_text_length=audio_text_args.max_text_length,
                        with_text_hidden=config.gamma > 0, batch_size=config.teacher_batch_size,
                    ) if name == "train" else ds
                    for name, ds in splits.items()
                })
            teacher = None  # training reads the cache

    compute_metrics = compute_metrics or make_compute_metrics(label_names)

    def make_trainer(args) -> AudioTextDistillationTrainer:
        return AudioTextDistillationTrainer(
            model=model, args=args, train_dataset=splits["train"], eval_dataset=splits["validation"],
            data_collator=collator, eval_data_collator=eval_collator, processing_class=processor,
            compute_metrics=compute_metrics, callbacks=callbacks, teacher=teacher, teacher_label_index=teacher_index,
        )

    phases = []
    if config.transfer_epochs > 0:
        phases.append(_transfer_phase(config, model, make_trainer))
    model.set_encoders_trainable(text=True, audio=True)  # the config keeps a frozen audio encoder frozen
    lr = config.finetune_learning_rate or config.learning_rate
    trainer = make_trainer(dataclasses.replace(config, learning_rate=lr))
    result = trainer.train(resume_from_checkpoint=resume_from_checkpoint)
    phases.append(PhaseResult(
        name="finetune", epochs=config.num_train_epochs, learning_rate=lr,
        trainable_parameters=_trainable(model), best_metric=trainer.state.best_metric,
        best_model_checkpoint=trainer.state.best_model_checkpoint, train_metrics=dict(result.metrics),
    ))
    return AudioTextFitResult(
        trainer=trainer, model=trainer.model, processor=processor, splits=splits, phases=phases,
        train_metrics=dict(result.metrics), teacher=config.teacher_model_name_or_path,
    )


def _transfer_phase(config: AudioTextDistillationConfig, model, make_trainer) -> PhaseResult:
    folder = os.path.join(config.output_dir, TRANSFER_DIR)
    marker = os.path.join(folder, TRANSFER_DONE)
    model.set_encoders_trainable(text=False, audio=False)
    trainable = _trainable(model)
    if os.path.exists(marker) and not config.overwrite_output_dir:
        with open(marker, encoding="utf-8") as handle:
            done = json.load(handle)
        best = AudioTextForSequenceClassification.from_pretrained(folder)
        model.load_state_dict(best.state_dict())
        logger.info("Transfer phase already finished in %s (best %s = %s): reusing its best model.", folder,
                    config.metric_for_best_model, done.get("best_metric"))
        return PhaseResult(**{**done, "reused": True})
    args = dataclasses.replace(
        config, output_dir=folder, num_train_epochs=config.transfer_epochs, push_to_hub=False,
        resume_from_checkpoint=None,
    )
    trainer = make_trainer(args)
    resume = (
        None if config.overwrite_output_dir else last_complete_checkpoint(folder) if os.path.isdir(folder) else None
    )
    result = trainer.train(resume_from_checkpoint=resume)
    trainer.save_model(folder, _internal_call=True)  # the best checkpoint (load_best_model_at_end), for restarts
    phase = PhaseResult(
        name="transfer", epochs=config.transfer_epochs, learning_rate=config.learning_rate,
        trainable_parameters=trainable, best_metric=trainer.state.best_metric,
        best_model_checkpoint=trainer.state.best_model_checkpoint, train_metrics=dict(result.metrics),
    )
    if trainer.is_world_process_zero():
        write_json_atomic(dataclasses.asdict(phase), marker)
    logger.info("Transfer phase: best %s = %s at %s", config.metric_for_best_model, phase.best_metric,
                phase.best_model_checkpoint)
    return phase


def _trainable(model) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


__all__ = ["AudioTextFitResult", "PhaseResult", "TRANSFER_DIR", "fit_audio_text"]
