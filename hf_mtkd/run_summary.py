"""What a finished run produced, as one typed object: `RunSummary`.

The training entry builds it in memory and hands it to the model card, the plots and the multi-stage
comparison table; it is also written to `<output_dir>/run_summary.json` (last, so the file marks a finished
run) for later readers (`hf-mtkd push`, a multi-stage run that reuses the stage). The JSON is flat: the
summary's fields, with the method's extras (`Method.summary_extras`) beside them, as before this class existed.
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any, Optional

from .data.report import DataReport
from .registry import CardSection, MethodInfo
from .utils.atomic import write_json_atomic

SUMMARY_FILE = "run_summary.json"
_FRAMEWORKS = ("hf_mtkd", "transformers", "torch", "torchaudio", "datasets", "accelerate", "huggingface_hub")

__all__ = ["RunSummary", "SUMMARY_FILE", "framework_versions", "is_hub_id", "run_provenance"]


@dataclass
class RunSummary(Mapping):
    """A finished run: method, labels, data sizes, validation/test results, provenance, and the method's extras.

    Reads like the `run_summary.json` mapping too (`summary["results"]["test"]`, `summary.get(<extra>)`).
    The extras are the method's (`Method.summary_extras`); only the method reads them, in its own hooks (card
    sections, figures, multi-stage tables), so nothing shared depends on their shape.
    """

    method: str
    label_names: list[str]
    languages: list[str] = field(default_factory=list)
    sizes: dict[str, int] = field(default_factory=dict)
    # split -> <split>_metrics.json (compute_ser_metrics + data notes)
    results: dict[str, dict] = field(default_factory=dict)
    base_model: Optional[str] = None
    datasets: list[str] = field(default_factory=list)  # Hub dataset ids (card metadata)
    data_description: list[str] = field(default_factory=list)  # where the data came from, for the card text
    framework_versions: dict[str, str] = field(default_factory=dict)
    method_info: Optional[MethodInfo] = None
    card_sections: list[CardSection] = field(default_factory=list)
    #: What the data layer noticed (warnings, skipped and truncated clips, drawn speakers); None in a summary
    #: written before runs recorded it.
    data_report: Optional[DataReport] = None
    #: What went wrong in training (e.g. validation UR at chance level for several evaluations in a row).
    training_warnings: list[str] = field(default_factory=list)
    #: torch's intra-op threads during training and evaluation (`torch_num_threads` resolved; exact figures can
    #: depend on it). None in a summary written before runs recorded it.
    torch_num_threads: Optional[int] = None
    #: The checkpoint the run was resumed from ("checkpoint-N"), None for a run trained from the start.
    resumed_from: Optional[str] = None
    #: The hf_mtkd commit the run trained at ("-dirty" with uncommitted changes); None outside a git checkout or in
    #: a summary written before runs recorded it.
    commit: Optional[str] = None
    extras: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self):
        clash = sorted(set(self.extras) & _FIELD_NAMES)
        if clash:
            raise ValueError(f"Method extras {clash} would overwrite fields of the run summary; rename them.")

    # ------------------------------------------------------------------ JSON
    def to_dict(self) -> dict[str, Any]:
        data = {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name != "extras"}
        data["method_info"] = self.method_info.to_dict() if self.method_info else None
        data["card_sections"] = [section.to_dict() for section in self.card_sections]
        data["data_report"] = self.data_report.to_dict() if self.data_report is not None else None
        data.update(self.extras)
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "RunSummary":
        if not data.get("method") or not data.get("label_names"):
            raise ValueError(f"A run summary needs `method` and `label_names`, got keys {sorted(data)}.")
        known = {key: value for key, value in data.items() if key in _FIELD_NAMES}
        extras = {key: value for key, value in data.items() if key not in _FIELD_NAMES}
        if known.get("method_info"):
            known["method_info"] = MethodInfo.from_dict(known["method_info"])
        known["card_sections"] = [CardSection(**section) for section in known.get("card_sections") or ()]
        if known.get("data_report") is not None:
            known["data_report"] = DataReport.from_dict(known["data_report"])
        return cls(**{key: value for key, value in known.items() if value is not None}, extras=extras)

    def save(self, path: str | os.PathLike) -> Path:
        """Write the summary as JSON, atomically (`<output_dir>/run_summary.json` marks a finished run)."""
        return write_json_atomic(self.to_dict(), path)

    @classmethod
    def load(cls, path: str | os.PathLike) -> "RunSummary":
        with open(path, encoding="utf-8") as handle:
            try:
                data = json.load(handle)
            except json.JSONDecodeError as err:
                raise ValueError(f"{os.fspath(path)} is not valid JSON: {err}") from err
        try:
            return cls.from_dict(data)
        except (TypeError, ValueError) as err:
            raise ValueError(f"{os.fspath(path)} is not a run summary: {err}") from err

    # ------------------------------------------------------------------ read access by key
    def __getitem__(self, key: str) -> Any:
        if key in _FIELD_NAMES and key != "extras":
            return getattr(self, key)
        return self.extras[key]

    def __iter__(self) -> Iterator[str]:
        yield from (name for name in _FIELD_ORDER if name != "extras")
        yield from self.extras

    def __len__(self) -> int:
        return len(_FIELD_ORDER) - 1 + len(self.extras)


_FIELD_ORDER = tuple(f.name for f in dataclasses.fields(RunSummary))
_FIELD_NAMES = frozenset(_FIELD_ORDER)


def is_hub_id(name: Optional[str]) -> bool:
    """Whether `name` reads as a Hub repo id rather than a local path."""
    from huggingface_hub.utils import HFValidationError, validate_repo_id

    if not name or os.path.exists(name) or name.startswith((".", "/", "~")):
        return False
    try:
        validate_repo_id(name)
    except HFValidationError:
        return False
    return True


def framework_versions() -> dict[str, str]:
    """Versions of the libraries in this environment (recorded at training time by `run_provenance`)."""
    versions = {}
    for name in _FRAMEWORKS:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return versions


def run_provenance(model_args, data_args) -> dict:
    """Where a run's student and data came from: the `base_model`, `datasets`, `data_description` and
    `framework_versions` of its summary. Local paths appear by folder name only."""
    source = getattr(model_args, "model_name_or_path", None)  # a method may bring its own model arguments
    base_model = source if is_hub_id(source) else None
    datasets, descriptions = [], []
    if data_args.dataset_name:
        if is_hub_id(data_args.dataset_name):
            datasets.append(data_args.dataset_name)
            config = f", configuration `{data_args.dataset_config_name}`" if data_args.dataset_config_name else ""
            descriptions.append(f"[{data_args.dataset_name}](https://huggingface.co/datasets/{data_args.dataset_name}){config}")
        else:
            descriptions.append(f"a local dataset (`{Path(data_args.dataset_name).name}`)")
    elif data_args.corpus:
        descriptions.append(f"{data_args.corpus} (local copy, read with hf_mtkd's `{data_args.corpus}` reader)")
    elif data_args.data_dir:
        descriptions.append(f"a local audiofolder (`{Path(data_args.data_dir).name}`)")
    elif data_args.dataset_path:
        descriptions.append(f"a local saved dataset (`{Path(data_args.dataset_path).name}`)")
    elif data_args.demo_corpus:
        descriptions.append("the hf_mtkd demo corpus (synthetic speech, a toy for testing, not real emotions)")
    if data_args.test_fold is not None:
        descriptions.append(f"test fold: {data_args.fold_column_name} = {data_args.test_fold}")
    return {
        "base_model": base_model,
        "datasets": datasets,
        "data_description": descriptions,
        "framework_versions": framework_versions(),
    }
