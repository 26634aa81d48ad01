"""The hooks a training method fills in, in two shapes.

`Method` is the standard flow: a feature extractor, a model, collators and a Trainer that trains on "train" and
selects on "validation" (plain fine-tuning by default). `SelfFittingMethod` fits on its own (a scikit-learn
classifier, phases of its own, a model it builds from the training data) and needs neither collators nor a
feature extractor from the shared flow: it names the sampling rate the data is decoded at and returns a
`Predictor` (or the Trainer it trained). Both share `MethodBase`'s hooks (arguments, card text, reports).

`hf_mtkd.training.run.run` calls the hooks in order; `hf_mtkd.registry` documents the
whole API and how a method is registered. A hook returns what it makes and changes nothing it is given.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Callable, ClassVar, Optional, Protocol, runtime_checkable

from ..arguments import DataArguments, ModelArguments
from ..data import AudioClassificationCollator
from ..registry import CardSection, MethodInfo
from ..modeling_utils import build_audio_classifier, probe_feature_extractor
from ..windowing import effective_window_seconds
from .args import SERTrainingArguments
from .evaluation import make_compute_metrics
from .trainer import SERTrainer

__all__ = ["Method", "MethodBase", "Predictor", "RunSetup", "SelfFittingMethod"]


@dataclass(frozen=True)
class RunSetup:
    """What every hook of one run may read: the parsed arguments, then the labels and languages of the data
    (empty in `probe_feature_extractor`, which runs before the data is loaded)."""

    model_args: ModelArguments
    data_args: DataArguments
    training_args: Any  # the method's `training_args_class`
    extra_args: tuple = ()  # instances of the method's `extra_dataclasses`, in order
    label_names: tuple[str, ...] = ()
    languages: tuple[str, ...] = ()

    @property
    def language_to_id(self) -> Optional[dict[str, int]]:
        """Language tag -> the `language_id` batches carry (None without a language column)."""
        return {language: i for i, language in enumerate(self.languages)} if self.languages else None

    @property
    def window_seconds(self) -> float:
        """Length of the training windows (`train_window_seconds`, no longer than `max_duration_seconds`); whole
        clips are evaluated and predicted by windows of this length (hf_mtkd.windowing)."""
        return effective_window_seconds(self.data_args.train_window_seconds, self.data_args.max_duration_seconds)

    def max_samples(self, sampling_rate: int) -> int:
        """Samples per training window at `sampling_rate`."""
        return int(round(self.window_seconds * sampling_rate))


@runtime_checkable
class Predictor(Protocol):
    """What a method that fits on its own (`Method.fit` overridden, the model saved there) hands back to the
    shared reports. It may also carry `training_warnings` (a list of str), which reach the run summary, the
    metrics files and the card as a `SERTrainer`'s do."""

    def predict_scores(self, dataset) -> Any:
        """(len(dataset), num_labels) class scores (logits or probabilities) for the prepared rows of `dataset`."""


class MethodBase:
    """What every method has, whichever way it fits: its recipe arguments, its card text and its reports.

    Subclass `Method` (the standard Trainer flow) or `SelfFittingMethod`, set the class attributes, override the
    hooks that differ, and register the class with `hf_mtkd.registry.register_method`. One object is made per run,
    so hooks may keep what they load on `self`.
    """

    #: Recipe key (`method: <name>`); the registry's key.
    name: ClassVar[str] = ""
    #: Short name used in the titles of printed tables.
    display_name: ClassVar[str] = ""
    #: The TrainingArguments subclass whose fields a recipe may set.
    training_args_class: ClassVar[type] = SERTrainingArguments
    #: More dataclasses whose fields a recipe may set; their instances arrive as `setup.extra_args`.
    extra_dataclasses: ClassVar[tuple] = ()
    #: The Trainer that carries the card text (and, in the standard flow, trains); None for a method without one.
    trainer_class: ClassVar[Optional[type]] = None
    # : The card's text about the method; None: taken from `trainer_class` (`_name`, `_description`, `_paper`,
    # `_tag_names`).
    info: ClassVar[Optional[MethodInfo]] = None
    #: Whether the run keeps the Trainer's best checkpoint on validation (`load_best_model_at_end`,
    #: `best_model_smoothing` apply); shipped recipes of such a method state their choice explicitly.
    selects_best_checkpoint: ClassVar[bool] = False

    @classmethod
    def card_info(cls) -> MethodInfo:
        if cls.info is not None:
            return cls.info
        if cls.trainer_class is None or not hasattr(cls.trainer_class, "method_info"):
            raise TypeError(f"{cls.__name__} sets neither `info` nor a `trainer_class` that carries the card text.")
        return cls.trainer_class.method_info()

    # ------------------------------------------------------------------ arguments
    def dataclass_types(self) -> tuple:
        """The dataclasses a recipe fills, in this order: model, data, training, then `extra_dataclasses`."""
        return (ModelArguments, DataArguments, self.training_args_class, *self.extra_dataclasses)

    # ------------------------------------------------------------------ data
    def data_checks(self, setup: RunSetup) -> list[Callable[..., Any]]:
        """Checks only this method needs, each `(splits, report) -> splits`, run on the split metadata before any
        audio is decoded (after the shared checks): raise naming the culprit, or warn through `report` and return
        the splits (rows may be dropped)."""
        return []

    # ------------------------------------------------------------------ reports
    def card_sections(self, setup: RunSetup, summary) -> list[CardSection]:
        """Sections of the model card that only this method writes (Markdown), stored with the summary."""
        return []

    def exported_models(self, setup: RunSetup, summary) -> dict[str, Any]:
        """Models this run saved in sub-folders of `output_dir` besides the main one (relative folder -> the
        `RunSummary` their card tells). The shared flow writes each folder's `run_summary.json`, training arguments
        and model card, so that `hf-mtkd push <folder>` publishes it like any run."""
        return {}

    def figures(self, summary, output_dir) -> list:
        """Charts only this method draws into `output_dir` from its summary (matplotlib is installed when this is
        called); the card shows every picture of the folder. Returns the files written."""
        return []

    @classmethod
    def result_rows(cls, summary) -> dict[str, dict]:
        """The models a finished run reports, for a committed results table: {row name: {split: metrics}}. One
        unnamed row (the run's own results) unless the run scores several models (meta_curriculum's stages)."""
        return {"": dict(summary.results)}

    def multi_stage_tables(self, stage: str, summary) -> list[str]:
        """Text blocks printed after the comparison table of a multi-stage run, for a stage of this method."""
        return []

    @classmethod
    def file_predictor(cls, config) -> Optional[Callable[..., Any]]:
        """For `hf-mtkd predict`: a function `(model, inputs, cli_args, **common) -> [FilePrediction]` that serves
        models saved with `config` when they need more than audio (audio_text reads transcripts), else None:
        audio-only models go through the shared `hf_mtkd.inference.predict_files`."""
        return None


class Method(MethodBase):
    """A method in the standard flow: the defaults fine-tune the student with `trainer_class`."""

    #: The Trainer the default `build_trainer` makes.
    trainer_class: ClassVar[Optional[type]] = SERTrainer
    selects_best_checkpoint: ClassVar[bool] = True

    # ------------------------------------------------------------------ data and model
    def probe_feature_extractor(self, setup: RunSetup):
        """The student's feature extractor, needed before the data (it fixes the sampling rate of the decode)."""
        return probe_feature_extractor(setup.model_args)

    def build_model(self, setup: RunSetup) -> tuple[Any, Any]:
        """The student and its feature extractor (or processor), labelled with `setup.label_names`."""
        return build_audio_classifier(setup.model_args, list(setup.label_names))

    def prepare_splits(self, setup: RunSetup, splits, *, model, feature_extractor):
        """The splits training and evaluation use: `splits` as decoded (`waveform`, `labels` and the data's
        columns) plus whatever the method adds (columns from `datasets.map`, splits of its own). Must keep
        "train", "validation" and "test"."""
        return splits

    def make_collators(self, setup: RunSetup, splits, *, feature_extractor) -> tuple[Any, Any]:
        """(training collator, evaluation collator); evaluation batches are never randomly cropped."""
        collator = AudioClassificationCollator(
            feature_extractor=feature_extractor,
            sampling_rate=feature_extractor.sampling_rate,
            language_column=setup.data_args.language_column_name,
            language_to_id=setup.language_to_id,
            max_samples=setup.max_samples(feature_extractor.sampling_rate),
            random_crop=setup.data_args.random_crop,
            seed=setup.training_args.seed,
        )
        return collator, dataclasses.replace(collator, random_crop=False)

    # ------------------------------------------------------------------ fitting
    def build_trainer(self, setup: RunSetup, *, model, feature_extractor, splits, collators):
        """The Trainer of the standard flow (train on "train", select on "validation")."""
        return self.trainer_class(**self.trainer_kwargs(setup, model=model, feature_extractor=feature_extractor,
                                                        splits=splits, collators=collators))

    def trainer_kwargs(self, setup: RunSetup, *, model, feature_extractor, splits, collators) -> dict:
        """The keyword arguments every standard-flow trainer takes; a method's `build_trainer` adds its own."""
        train_collator, eval_collator = collators
        return dict(
            model=model,
            args=setup.training_args,
            train_dataset=splits["train"],
            eval_dataset=splits["validation"],
            data_collator=train_collator,
            eval_data_collator=eval_collator,
            processing_class=feature_extractor,
            compute_metrics=make_compute_metrics(list(setup.label_names)),
        )

    def fit(self, setup: RunSetup, *, model, feature_extractor, splits, collators, resume_from_checkpoint=None):
        """Train and save; returns the Trainer (standard flow) or, for a method that fits on its own, a
        `Predictor` after saving what the model needs to `setup.training_args.output_dir`.

        The standard flow: `build_trainer`, train (resuming from `resume_from_checkpoint`), save the model
        (staged, crash-safe) and the feature extractor, write the train metrics and the trainer state.
        """
        trainer = self.build_trainer(setup, model=model, feature_extractor=feature_extractor, splits=splits,
                                     collators=collators)
        result = trainer.train(resume_from_checkpoint=resume_from_checkpoint)
        # _internal_call: stock Trainer would push here, before evaluation and without the results in the card.
        trainer.save_model(_internal_call=True)
        if trainer.is_world_process_zero() and trainer.processing_class is not feature_extractor:
            feature_extractor.save_pretrained(setup.training_args.output_dir)
        trainer.log_metrics("train", result.metrics)
        trainer.save_metrics("train", result.metrics)
        trainer.save_state()
        return trainer

    # ------------------------------------------------------------------ reports
    def summary_extras(self, setup: RunSetup, fitted, *, splits, feature_extractor, collators) -> dict:
        """Method-specific results for the run summary (JSON-ready); called on every process after the
        validation and test reports (collectives are allowed here)."""
        return {}


class SelfFittingMethod(MethodBase):
    """A method that fits on its own: no collators, no feature extractor from the shared flow, no standard Trainer
    loop. The shared flow decodes the data at `sampling_rate`, asks for the initial model and the splits, calls
    `fit` and reports on what it returns, like for any method."""

    def sampling_rate(self, setup: RunSetup) -> int:
        """The rate the data is decoded at (needed before the data is loaded: `setup` has no labels yet)."""
        raise NotImplementedError(f"{type(self).__name__} must say the sampling rate its data is decoded at.")

    def build_model(self, setup: RunSetup) -> Any:
        """The initial model, labelled with `setup.label_names`, or None for a method that builds it in `fit`."""
        return None

    def prepare_splits(self, setup: RunSetup, splits, *, model):
        """The splits the method fits and is evaluated on; must keep "train", "validation" and "test"."""
        return splits

    def fit(self, setup: RunSetup, *, model, splits, resume_from_checkpoint=None):
        """Fit, save what the model needs to `setup.training_args.output_dir`, and return a `Predictor`
        (`predict_scores(dataset)`) or the Trainer that trained it."""
        raise NotImplementedError(f"{type(self).__name__} must fit.")

    def summary_extras(self, setup: RunSetup, fitted, *, splits) -> dict:
        """Method-specific results for the run summary (JSON-ready), after the validation and test reports."""
        return {}
