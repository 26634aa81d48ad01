"""Audio + text KD in the shared training flow (`method: audio_text`).

The method fits on its own (a `SelfFittingMethod`): the model is built in `fit` (a vocabulary learnt from the training
transcripts
must exist before the text encoder is sized, and `build_model` does not see the data), then `fit_audio_text`
runs the teacher cache and the two phases. The shared flow does the rest with the returned Trainer: the
validation and test reports, the run summary, the card and the push. Transcripts reach the splits through the
data layer (`text_column_name`, checked before decoding by `data_checks`).
"""

from __future__ import annotations

from ..registry import CardSection, register_method
from ..training.method import RunSetup, SelfFittingMethod
from .build import load_audio_feature_extractor
from .card import USAGE_TITLE, usage_markdown
from .config import AudioTextDistillationConfig, AudioTextModelArguments
from .data import require_text_column, transcript_checks
from .trainer import AudioTextDistillationTrainer


@register_method
class AudioTextMethod(SelfFittingMethod):
    name = "audio_text"
    display_name = "Audio+text"
    training_args_class = AudioTextDistillationConfig
    trainer_class = AudioTextDistillationTrainer
    extra_dataclasses = (AudioTextModelArguments,)
    selects_best_checkpoint = True  # both phases keep their best checkpoint on validation (its SERTrainer)

    def __init__(self):
        self.fit_result = None

    @classmethod
    def file_predictor(cls, config):
        from ..models.audio_text.configuration_audio_text import AudioTextConfig

        if not isinstance(config, AudioTextConfig):
            return None

        def predict(model, inputs, cli_args, **common):
            from .predict import predict_audio_text

            return predict_audio_text(
                model,
                inputs,
                transcripts=cli_args.transcripts,
                text_column=cli_args.text_column,
                path_column=cli_args.path_column,
                sidecar_suffix=cli_args.transcript_suffix,
                **common,
            )

        return predict

    def data_checks(self, setup: RunSetup) -> list:
        return transcript_checks(setup.data_args)

    def sampling_rate(self, setup: RunSetup) -> int:
        """The audio feature extractor's; the model, its processor and collators are made in `fit`, which sees the
        training transcripts (see the module docstring)."""
        require_text_column(setup.data_args)
        (audio_text_args,) = setup.extra_args
        return load_audio_feature_extractor(setup.model_args, audio_text_args).sampling_rate

    def fit(self, setup: RunSetup, *, model, splits, resume_from_checkpoint=None):
        from .fit import fit_audio_text

        (audio_text_args,) = setup.extra_args
        result = fit_audio_text(
            setup.training_args, setup.model_args, setup.data_args, splits, list(setup.label_names),
            audio_text_args=audio_text_args, languages=list(setup.languages),
            resume_from_checkpoint=resume_from_checkpoint,
        )
        trainer = result.trainer
        trainer.save_model(_internal_call=True)  # model and processor (the trainer's processing_class), staged
        trainer.log_metrics("train", result.train_metrics)
        trainer.save_metrics("train", result.train_metrics)
        trainer.save_state()
        self.fit_result = result
        return trainer

    def summary_extras(self, setup: RunSetup, fitted, *, splits) -> dict:
        return self.fit_result.summary_extras() if self.fit_result is not None else {}

    def card_sections(self, setup: RunSetup, summary) -> list[CardSection]:
        args = setup.training_args
        model_id = args.hub_model_id or args.output_dir
        return [CardSection(USAGE_TITLE, usage_markdown(model_id, list(summary.label_names)))]
