"""The student's model card: metadata the Hub understands and a page people can read.

`StudentCard.from_run(summary, ...)` builds it from a run in memory (what `SERTrainer.create_model_card`
and the training entry do); `StudentCard.from_output_dir(output_dir)` from what a finished run wrote as
JSON (run_summary.json, training_args.json, config.json, test_metrics.json) and its figures: nothing is
ever unpickled, so pushing a folder someone else made cannot run their code. `render()` fills the Jinja
template shipped in `hf_mtkd/model_cards/` through `ModelCard.from_template`. Every field the template
uses must be supplied, and every required field must be present: errors name the field.

The method's name, description, paper and tags come from its `MethodInfo` (the trainer class's `_name`,
`_description`, `_paper`, `_tag_names`, recorded in the run summary); a method adds sections of its own
with `Method.card_sections` (its teachers, its heads, which exit an exported model is): this module names no
method.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

from ..data.report import DataReport
from ..registry import CardSection, MethodInfo, method_info
from ..metrics.report import format_percent, format_with_ci
from ..run_summary import SUMMARY_FILE, RunSummary, framework_versions
from ..utils.atomic import write_text_atomic

logger = logging.getLogger(__name__)

TEMPLATE_PATH = Path(__file__).resolve().parent.parent / "model_cards" / "student_card.md"
CARD_NAME = "README.md"
TRAINING_ARGS_JSON = "training_args.json"  # the name hf_mtkd.training.outputs writes

#: Template fields a card cannot do without (the template must use them, the card must fill them).
REQUIRED_FIELDS = ("model_name", "model_id", "method", "label_names", "framework_versions")
#: Template fields that may be empty; the template leaves their section out then.
OPTIONAL_FIELDS = (
    "paper", "base_model", "requires_hf_mtkd", "datasets", "languages", "sizes", "results", "figures",
    "hyperparameters", "sections", "loads_with_pipeline",
    "data_warnings", "skipped_clips", "drawn_speakers", "training_warnings",
)

# Training arguments shown in the card, when set (the method's own fields are added automatically).
_HYPERPARAMETERS = (
    "learning_rate", "per_device_train_batch_size", "gradient_accumulation_steps", "num_train_epochs", "max_steps",
    "lr_scheduler_type", "warmup_steps", "warmup_ratio", "weight_decay", "optim", "seed", "bf16", "fp16",
    "metric_for_best_model",
)
# Fields of the arguments that are no hyperparameters.
_NOT_HYPERPARAMETERS = ("overwrite_output_dir", "n_bootstrap")
_BASE_TAGS = ("audio-classification", "speech-emotion-recognition", "hf_mtkd")
_DEFINITION_KEYS = ("UR", "WR", "macro_f1", "weighted_f1", "CI", "per_language")
_ISO_639 = re.compile(r"^[a-z]{2,3}$")


class ModelCardError(ValueError):
    """The card cannot be made: a required field is missing, or the template and the fields disagree."""


@dataclass
class StudentCard:
    """Everything the student card says. `from_run` / `from_output_dir` fill it from a run; tests build it directly."""

    model_name: str
    model_id: str
    method: str
    label_names: list[str]
    framework_versions: dict[str, str] = field(default_factory=framework_versions)
    base_model: Optional[str] = None
    hub_datasets: list[str] = field(default_factory=list)
    data_description: list[str] = field(default_factory=list)
    languages: list[str] = field(default_factory=list)
    test_metrics: Optional[dict] = None
    sizes: dict[str, int] = field(default_factory=dict)
    hyperparameters: dict[str, Any] = field(default_factory=dict)
    figures: list[str] = field(default_factory=list)
    requires_hf_mtkd: bool = False
    license: Optional[str] = None
    extra_tags: list[str] = field(default_factory=list)
    #: The method's card text; None: looked up in the method registry by `method`.
    method_info: Optional[MethodInfo] = None
    #: Sections the method wrote for its card (`Method.card_sections`).
    sections: list[CardSection] = field(default_factory=list)
    #: Whether `pipeline("audio-classification")` loads the model (False for a method that is no transformers model).
    loads_with_pipeline: bool = True
    #: What the data checks warned about (the run summary's `data_report`): a "Data warnings" section.
    data_warnings: list[str] = field(default_factory=list)
    #: split -> clips dropped under on_bad_audio: skip (shown beside the split's size when > 0).
    skipped_clips: dict[str, int] = field(default_factory=dict)
    #: split -> speakers moved out of the training data by the seeded draw (when the data had no such split).
    drawn_speakers: dict[str, list[str]] = field(default_factory=dict)
    #: What went wrong in training (the run summary's `training_warnings`): a "Training warnings" section.
    training_warnings: list[str] = field(default_factory=list)

    # ------------------------------------------------------------------ gathering from a run
    @classmethod
    def from_run(
        cls,
        summary: Optional[RunSummary],
        *,
        output_dir: str | os.PathLike,
        args: Optional[Mapping[str, Any]] = None,
        model_config: Optional[Mapping[str, Any]] = None,
        repo_id: Optional[str] = None,
        test_metrics: Optional[dict] = None,
        **overrides,
    ) -> "StudentCard":
        """The card of a run: `summary` (None for a trainer used without the training entry), the training
        arguments as `TrainingArguments.to_dict()` gives them, the model's config as a dict (None: no transformers
        model), the folder that holds the model and its figures. `repo_id` names the model in the Quick start
        (default: the Hub id in the arguments, else the folder); `test_metrics` default to the summary's. `overrides`
        replace any field."""
        out = Path(output_dir)
        args = dict(args or {})
        if test_metrics is None and summary is not None:
            test_metrics = summary.results.get("test")
        label_names = list(summary.label_names) if summary is not None else None
        if not label_names and model_config and model_config.get("id2label"):
            id2label = model_config["id2label"]
            label_names = [id2label[k] for k in sorted(id2label, key=int)]
        model_id = repo_id or args.get("hub_model_id") or str(out)
        fields = {
            "model_name": model_id.rstrip("/").split("/")[-1] if repo_id else out.resolve().name,
            "model_id": model_id,
            "method": summary.method if summary is not None else None,
            "label_names": label_names,
            "framework_versions": (summary.framework_versions if summary is not None else None)
            or framework_versions(),
            "base_model": summary.base_model if summary is not None else None,
            "hub_datasets": list(summary.datasets) if summary is not None else [],
            "data_description": list(summary.data_description) if summary is not None else [],
            "languages": list(summary.languages) if summary is not None else [],
            "test_metrics": test_metrics,
            "sizes": dict(summary.sizes) if summary is not None else {},
            "hyperparameters": _hyperparameters(args),
            "figures": sorted(p.name for p in out.glob("*.png")),
            "requires_hf_mtkd": _requires_hf_mtkd(model_config),
            "method_info": summary.method_info if summary is not None else None,
            "sections": list(summary.card_sections) if summary is not None else [],
            "loads_with_pipeline": _loads_with_audio_pipeline(model_config),
            **_data_report_fields(summary.data_report if summary is not None else None),
            "training_warnings": list(summary.training_warnings) if summary is not None else [],
        }
        fields.update(overrides)
        missing = [name for name in ("method", "label_names") if not fields.get(name)]
        if missing:
            hints = {"method": SUMMARY_FILE, "label_names": f"{SUMMARY_FILE} or config.json's id2label"}
            raise ModelCardError(
                f"Cannot make the model card for {str(out)!r}: no {', '.join(missing)} found "
                f"(looked in {'; '.join(hints[m] for m in missing)}); pass {missing[0]}=... to give it."
            )
        return cls(**fields)

    @classmethod
    def from_output_dir(
        cls, output_dir: str | os.PathLike, *, repo_id: Optional[str] = None, **overrides
    ) -> "StudentCard":
        """Read what a run wrote to `output_dir` (JSON only): a run's folder, or a model a run exported into a
        sub-folder (`Method.exported_models`: it has a summary of its own). `repo_id` names the model in the Quick
        start (default: the Hub id in the training arguments, else the folder). `overrides` replace any field."""
        out = Path(output_dir)
        summary = RunSummary.load(out / SUMMARY_FILE) if (out / SUMMARY_FILE).is_file() else None
        return cls.from_run(
            summary, output_dir=out, args=_read_json(out / TRAINING_ARGS_JSON),
            model_config=_read_json(out / "config.json"), repo_id=repo_id,
            test_metrics=_read_json(out / "test_metrics.json"), **overrides,
        )

    def info(self) -> MethodInfo:
        """The method's card text: given, or the registered method's, or just its name."""
        return self.method_info or method_info(self.method) or MethodInfo(display_name=self.method)

    # ------------------------------------------------------------------ metadata
    def card_data(self):
        """ModelCardData for the YAML header: pipeline tag, library, languages, base model, datasets, model-index."""
        from huggingface_hub import ModelCardData

        languages = [lang for lang in self.languages if _ISO_639.match(lang)]
        skipped = sorted(set(self.languages) - set(languages))
        if skipped:
            logger.info("Languages %s are not ISO 639 codes; they appear in the card text only.", skipped)
        tags = [*_BASE_TAGS, self.method]
        tags += [t for t in (*self.info().tags, *self.extra_tags) if t not in tags]
        eval_results = self._eval_results()
        return ModelCardData(
            language=languages or None,
            license=self.license,
            library_name="transformers",
            pipeline_tag="audio-classification",
            base_model=self.base_model,
            datasets=list(self.hub_datasets) or None,
            tags=tags,
            metrics=["recall", "accuracy", "f1"] if eval_results else None,
            model_name=self.model_name,
            eval_results=eval_results or None,
        )

    def _eval_results(self) -> list:
        from huggingface_hub import EvalResult

        if not self.test_metrics:
            return []
        dataset_type = self.hub_datasets[0] if len(self.hub_datasets) == 1 else "custom"
        dataset_name = self.hub_datasets[0] if len(self.hub_datasets) == 1 else "SER test split"
        results = []
        for name, block in _blocks(self.test_metrics):
            config = None if name == "overall" else name
            for key, metric_type, metric_name, args in (
                ("UR", "recall", "UR (unweighted recall, %)", {"average": "macro"}),
                ("WR", "accuracy", "WR (weighted recall = accuracy, %)", None),
            ):
                results.append(EvalResult(
                    task_type="audio-classification",
                    task_name="Speech emotion recognition",
                    dataset_type=dataset_type,
                    dataset_name=dataset_name if config is None else f"{dataset_name} ({config})",
                    dataset_config=config,
                    dataset_split="test",
                    metric_type=metric_type,
                    metric_name=metric_name,
                    metric_args=args,
                    metric_value=round(100 * block[key], 2),
                ))
        return results

    # ------------------------------------------------------------------ template fields
    def check_required(self) -> None:
        for name in REQUIRED_FIELDS:
            if not getattr(self, name):
                raise ModelCardError(f"The model card needs `{name}`, which is empty.")

    def template_fields(self) -> dict[str, Any]:
        self.check_required()
        info = self.info()
        fields = {
            "model_name": self.model_name,
            "model_id": self.model_id,
            "method": {"name": self.method, "display_name": info.display_name, "description": info.description},
            "label_names": list(self.label_names),
            "framework_versions": dict(self.framework_versions),
            "paper": dataclasses.asdict(info.paper) if info.paper else None,
            "base_model": self.base_model,
            "requires_hf_mtkd": self.requires_hf_mtkd,
            "datasets": list(self.data_description),
            "languages": list(self.languages),
            "sizes": dict(self.sizes),
            "results": _results_table(self.test_metrics),
            "figures": [{"title": Path(name).stem.replace("_", " "), "path": name} for name in self.figures],
            "hyperparameters": dict(self.hyperparameters),
            "sections": [section.to_dict() for section in self.sections],
            "loads_with_pipeline": self.loads_with_pipeline,
            "data_warnings": [_local_paths_to_names(warning) for warning in self.data_warnings],
            "skipped_clips": {split: n for split, n in self.skipped_clips.items() if n},
            "drawn_speakers": {split: list(names) for split, names in self.drawn_speakers.items() if names},
            "training_warnings": [_local_paths_to_names(warning) for warning in self.training_warnings],
        }
        return fields

    def render(self, template_path: str | os.PathLike = TEMPLATE_PATH):
        """The card as a `huggingface_hub.ModelCard`, after checking the template against the fields."""
        from huggingface_hub import ModelCard

        self.check_required()
        card_data = self.card_data()
        fields = self.template_fields()
        check_template(template_path, provided=set(fields) | set(card_data.to_dict()) | {"card_data"})
        return ModelCard.from_template(card_data, template_path=str(template_path), **fields)

    def save(self, output_dir: str | os.PathLike, template_path: str | os.PathLike = TEMPLATE_PATH) -> Path:
        """Render and write `README.md` in `output_dir` atomically; returns its path."""
        path = Path(output_dir) / CARD_NAME
        write_text_atomic(path, str(self.render(template_path)), newline="")
        return path


def write_run_card(
    summary: RunSummary,
    output_dir: str | os.PathLike,
    *,
    args: Optional[Mapping[str, Any]] = None,
    repo_id: Optional[str] = None,
    template_path: str | os.PathLike = TEMPLATE_PATH,
    **overrides,
) -> Path:
    """The card of a run in memory that has no Trainer (a method that fits on its own): `output_dir/README.md`.
    A transformers model saved in `output_dir` (config.json) gets the pipeline Quick start."""
    config = _read_json(Path(output_dir) / "config.json")
    card = StudentCard.from_run(
        summary, output_dir=output_dir, args=args, model_config=config, repo_id=repo_id, **overrides
    )
    return card.save(output_dir, template_path)


def check_template(template_path: str | os.PathLike, provided: set[str]) -> None:
    """Fail when the template uses a field nobody fills, or leaves out the metadata or a required field."""
    import jinja2
    from jinja2 import meta

    path = Path(template_path)
    if not path.is_file():
        raise ModelCardError(f"Model card template {str(path)!r} does not exist.")
    try:
        used = meta.find_undeclared_variables(jinja2.Environment().parse(path.read_text(encoding="utf-8")))
    except jinja2.TemplateSyntaxError as err:
        raise ModelCardError(f"Model card template {str(path)!r} is not valid Jinja (line {err.lineno}: "
                             f"{err.message}).") from err
    unknown = sorted(used - provided)
    if unknown:
        raise ModelCardError(
            f"Model card template {str(path)!r} uses field(s) {unknown} that the card does not provide; "
            f"the fields are {sorted(set(REQUIRED_FIELDS) | set(OPTIONAL_FIELDS) | {'card_data'})}."
        )
    absent = [name for name in ("card_data", *REQUIRED_FIELDS) if name not in used]
    if absent:
        raise ModelCardError(
            f"Model card template {str(path)!r} is missing required field(s) {absent} "
            "({{ card_data }} is the YAML metadata; the others are the model's identity and Quick start)."
        )


# ---------------------------------------------------------------------------------------------- helpers


def _read_json(path: Path) -> Optional[dict]:
    if not path.is_file():
        return None
    with open(path, encoding="utf-8") as handle:
        return json.load(handle)


def _data_report_fields(report: Optional[DataReport]) -> dict[str, Any]:
    if report is None:
        return {}
    return {
        "data_warnings": list(report.warnings),
        "skipped_clips": {split: report.skipped_count(split) for split in report.skipped_clips},
        "drawn_speakers": {split: list(names) for split, names in report.drawn_speakers.items()},
    }


# The folders of an absolute path (POSIX or Windows) at the start of the text or after a space, quote or bracket.
_PATH_PART = r"[^\s/\\'\":;,()]+"
_ABSOLUTE_PATH = re.compile(rf"(?:^|(?<=[\s'\"(=]))(?:[A-Za-z]:)?[/\\](?:{_PATH_PART}[/\\])+(?={_PATH_PART})")


def _local_paths_to_names(text: str) -> str:
    """Data warnings name files by absolute path; a published card names them by file name only, as it names
    local data folders (the layout of the machine that trained the model is nobody's business)."""
    return _ABSOLUTE_PATH.sub("", text)


def _hyperparameters(values: Mapping[str, Any]) -> dict[str, str]:
    """The hyperparameters worth showing from `TrainingArguments.to_dict()` (*_token values are placeholders there):
    the common ones that are set, then every field the method's arguments class adds."""
    if not values:
        return {}
    from transformers import TrainingArguments

    base = {f.name for f in dataclasses.fields(TrainingArguments)}
    method_keys = [key for key in values if key not in base and key not in _NOT_HYPERPARAMETERS]
    shown = {}
    for key in (*_HYPERPARAMETERS, *method_keys):
        value = values.get(key)
        if key.endswith("_token") or value is None or value == "" or (key == "max_steps" and value <= 0):
            continue
        if key == "num_train_epochs" and values.get("max_steps", -1) > 0:
            continue  # max_steps overrides the epochs
        if key in ("warmup_steps", "warmup_ratio", "weight_decay") and not value:
            continue
        if key in ("bf16", "fp16") and not value:
            continue
        if _is_structured(value):
            continue  # a list of mappings (a method's teachers, say): the method's own card section shows it
        shown[key] = _format_value(value)
    return shown


def _is_structured(value) -> bool:
    """A list of mappings, or such a list as JSON text (how a command line passes one)."""
    if isinstance(value, str) and value.lstrip().startswith("["):
        try:
            value = json.loads(value)
        except json.JSONDecodeError:
            return False
    return isinstance(value, (list, tuple)) and any(isinstance(item, Mapping) for item in value)


def _format_value(value) -> str:
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, (list, tuple)):
        return ", ".join(_format_value(v) for v in value)
    if isinstance(value, dict):
        return json.dumps(value, sort_keys=True)
    return str(value)


def _loads_with_audio_pipeline(config: Optional[dict]) -> bool:
    """Whether `pipeline("audio-classification")` loads the model: a transformers model, or one of hf_mtkd's types
    registered with AutoModelForAudioClassification (an audio + text model is not: it needs its transcript)."""
    if config is None:
        return False
    from ..auto_classes import AUTO_MODELS

    entry = AUTO_MODELS.get(config.get("model_type"))
    return entry is None or "AutoModelForAudioClassification" in entry.models


def _requires_hf_mtkd(config: Optional[dict]) -> bool:
    if not config or "model_type" not in config:
        return False
    from transformers.models.auto.configuration_auto import CONFIG_MAPPING_NAMES

    return config["model_type"] not in CONFIG_MAPPING_NAMES


def _blocks(metrics: dict):
    for name, block in sorted((metrics.get("per_language") or {}).items()):
        yield name, block
    if metrics.get("overall"):
        yield "overall", metrics["overall"]


def _results_table(metrics: Optional[dict]) -> Optional[dict]:
    if not metrics or not metrics.get("overall"):
        return None
    rows = [
        {"name": name, "n": block["n"], "UR": format_with_ci(block["UR"], block.get("UR_ci")),
         "WR": format_with_ci(block["WR"], block.get("WR_ci")), "macro_f1": format_percent(block.get("macro_f1")),
         "weighted_f1": format_percent(block.get("weighted_f1"))}
        for name, block in _blocks(metrics)
    ]
    definitions = metrics.get("definitions") or {}
    has_ci = any(block.get("UR_ci") for _, block in _blocks(metrics))
    return {
        "split": "test",
        "n": metrics["overall"]["n"],
        "note": f"in brackets the {100 * metrics.get('confidence', 0.95):g}% bootstrap confidence interval"
        if has_ci else "no confidence intervals were computed",
        "rows": rows,
        "definitions": {key: definitions[key] for key in _DEFINITION_KEYS if key in definitions},
    }
