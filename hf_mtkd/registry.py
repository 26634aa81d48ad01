"""The method registry: a recipe's `method` key -> the class that runs it.

A method is one folder. It subclasses `hf_mtkd.training.method.Method` (also `hf_mtkd.Method`), the standard
Trainer flow, which runs plain fine-tuning by default, or `SelfFittingMethod`, for a method that fits on its own;
it overrides the hooks it needs and registers itself:

    # hf_mtkd/<folder>/method.py  (or any module of another package, see "Other packages" below)
    from hf_mtkd.registry import MethodInfo, Paper, register_method
    from hf_mtkd.training.method import Method

    @register_method
    class MyMethod(Method):
        name = "my_method"                      # the recipe's `method: my_method`
        display_name = "MyKD"                   # short name in printed tables
        training_args_class = MyMethodConfig    # a SERTrainingArguments subclass (its fields become recipe keys)
        trainer_class = MyMethodTrainer         # an SERTrainer subclass: it carries the card text
        info = MethodInfo(display_name="my distillation", description="...", paper=Paper(title="...", authors="..."))

Hooks of `Method`, in the order `hf_mtkd.training.run.run` calls them (each returns what it makes; none changes
what it is given):

    dataclass_types()                                   -> the HfArgumentParser dataclasses of a recipe
    probe_feature_extractor(setup)                      -> the feature extractor (fixes the sampling rate)
    data_checks(setup)                                  -> checks of its own on the splits, run before decoding
    (shared: load, label, split, check and decode the data)
    build_model(setup)                                  -> (model, feature_extractor or processor)
    prepare_splits(setup, splits, model=, feature_extractor=)          -> splits (add/replace splits, columns)
    make_collators(setup, splits, feature_extractor=)                  -> (train_collator, eval_collator)
    fit(setup, model=, feature_extractor=, splits=, collators=, resume_from_checkpoint=)
        default: build_trainer(...) -> a Trainer, then train -> save
    (shared: validation and test reports from the fitted model's predictions)
    summary_extras(setup, fitted, splits=, feature_extractor=, collators=)  -> dict added to the run summary
    card_sections(setup, summary)                       -> [CardSection] for the model card
    exported_models(setup, summary)                     -> {sub-folder: RunSummary} of models exported in the run
    figures(summary, output_dir)                        -> charts only this method draws (after the shared ones)
    (shared: run_summary.json, plots, model cards -- `Trainer.create_model_card` for trainers, one card per
     exported model -- and push)
    multi_stage_tables(stage, summary)                  -> extra text printed at the end of a multi-stage run

A `SelfFittingMethod` has no collators and no feature extractor of the shared flow:

    dataclass_types()
    sampling_rate(setup)                                -> the rate the data is decoded at
    data_checks(setup)
    (shared: load, label, split, check and decode the data)
    build_model(setup)                                  -> the initial model, or None
    prepare_splits(setup, splits, model=)               -> splits
    fit(setup, model=, splits=, resume_from_checkpoint=) -> a `Predictor` (`predict_scores(dataset)`) or a Trainer,
                                                           after saving the model
    (shared: validation and test reports)
    summary_extras(setup, fitted, splits=), card_sections(setup, summary), exported_models(setup, summary),
    figures(summary, output_dir), multi_stage_tables(stage, summary)

`setup` is a frozen `hf_mtkd.training.method.RunSetup` (parsed arguments, label names, languages). A method
object is made per run (`get_method`), so a method may keep what it loaded (teachers, say) on `self`
between hooks. The trainer class carries the card's name, tags and paper (`_name`, `_tag_names`, `_paper`,
`_description`); a method without one sets `info`.

Built-in methods are the subpackages of `hf_mtkd` that hold a `method.py`; they are imported on the
first look-up, so adding a folder needs no edit anywhere else. Other packages register theirs under
the entry-point group `hf_mtkd.methods` (the entry point's name is the recipe key):

    [options.entry_points]
    hf_mtkd.methods =
        my_method = my_package.my_method:MyMethod

or call `register_method` themselves before `hf-mtkd train` runs (a test file does).
"""

from __future__ import annotations

import importlib
import logging
import os
from dataclasses import asdict, dataclass
from importlib import metadata
from typing import Any, Optional

logger = logging.getLogger(__name__)

ENTRY_POINT_GROUP = "hf_mtkd.methods"

_REGISTRY: dict[str, type] = {}
_builtins_imported = False


@dataclass(frozen=True)
class Paper:
    """The paper a method follows, for the model card."""

    title: str
    authors: str
    url: Optional[str] = None
    citation: Optional[str] = None  # BibTeX, shown verbatim in the card when given


@dataclass(frozen=True)
class MethodInfo:
    """What a model card says about the method that trained the model."""

    display_name: str
    description: str = ""
    paper: Optional[Paper] = None
    tags: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "MethodInfo":
        paper = data.get("paper")
        return cls(
            display_name=data["display_name"],
            description=data.get("description") or "",
            paper=Paper(**paper) if paper else None,
            tags=tuple(data.get("tags") or ()),
        )


#: Where a method's card section goes: after the Quick start, after the training data, or after the evaluation.
CARD_PLACEMENTS = ("usage", "training", "results")


@dataclass(frozen=True)
class CardSection:
    """A section of its own that a method adds to the model card (Markdown body under a `## title`), placed
    after the card's Quick start ("usage"), its training data ("training") or its evaluation ("results")."""

    title: str
    body: str
    placement: str = "usage"

    def __post_init__(self):
        if self.placement not in CARD_PLACEMENTS:
            raise ValueError(f"Card section {self.title!r}: placement {self.placement!r} is not one of "
                             f"{list(CARD_PLACEMENTS)}.")

    def to_dict(self) -> dict[str, str]:
        return {"title": self.title, "body": self.body, "placement": self.placement}


def register_method(cls: Optional[type] = None, *, name: Optional[str] = None):
    """Class decorator: make `cls` the method of recipe key `name` (default: `cls.name`).

    Registering another class under a taken name is an error; registering the same class again is not.
    """

    def add(method_class: type) -> type:
        key = name or getattr(method_class, "name", None)
        if not isinstance(key, str) or not key:
            raise ValueError(f"{method_class.__name__} needs a `name` (the recipe's method key) to be registered.")
        for hook in ("dataclass_types", "fit", "summary_extras", "card_info"):
            if not callable(getattr(method_class, hook, None)):
                raise TypeError(
                    f"{method_class.__name__} has no {hook}(): subclass hf_mtkd.training.method.Method (or "
                    f"SelfFittingMethod) to register it."
                )
        known = _REGISTRY.get(key)
        if known is not None and known is not method_class and _qualname(known) != _qualname(method_class):
            raise ValueError(f"A method named {key!r} is already registered ({_qualname(known)}).")
        _REGISTRY[key] = method_class
        return method_class

    return add(cls) if cls is not None else add


def unregister_method(name: str) -> None:
    """Remove a registered method (tests, notebooks that redefine one)."""
    _REGISTRY.pop(name, None)


def get_method_class(name: str) -> type:
    """The class registered as `name`, importing built-in methods and the matching entry point on first use."""
    if name not in _REGISTRY:
        _import_builtin_methods()
    if name not in _REGISTRY:
        _load_entry_point(name)
    if name not in _REGISTRY:
        raise ValueError(f"Unknown method {name!r}; choose one of {method_names()}.")
    return _REGISTRY[name]


def get_method(name: str):
    """A fresh method object for one run."""
    return get_method_class(name)()


def method_names() -> list[str]:
    """Every method a recipe may name: registered, built-in, and entry points of installed packages."""
    _import_builtin_methods()
    return sorted(set(_REGISTRY) | {ep.name for ep in _entry_points()})


def method_info(name: str) -> Optional[MethodInfo]:
    """The card text of method `name`, or None for a method nobody registered under that name."""
    try:
        method_class = get_method_class(name)
    except ValueError:
        return None
    return method_class.card_info()


def _qualname(cls: type) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"


def _import_builtin_methods() -> None:
    """Import `hf_mtkd.<folder>.method` for every subpackage folder that has one (they register themselves)."""
    global _builtins_imported
    if _builtins_imported:
        return
    package_dir = os.path.dirname(os.path.abspath(__file__))
    folders = sorted(
        entry for entry in os.listdir(package_dir)
        if os.path.isfile(os.path.join(package_dir, entry, "__init__.py"))
        and os.path.isfile(os.path.join(package_dir, entry, "method.py"))
    )
    for folder in folders:
        importlib.import_module(f"{__package__}.{folder}.method")
    _builtins_imported = True


def _entry_points() -> list:
    return list(metadata.entry_points(group=ENTRY_POINT_GROUP))


def _load_entry_point(name: str) -> None:
    for entry_point in _entry_points():
        if entry_point.name != name:
            continue
        try:
            loaded = entry_point.load()
        except Exception as err:  # re-raised with the entry point named: a broken plugin must say which it is
            raise ImportError(f"Entry point {entry_point.value!r} of method {name!r} ({ENTRY_POINT_GROUP}) fails to "
                              f"import: {err}") from err
        if isinstance(loaded, type) and name not in _REGISTRY:
            register_method(loaded, name=name)
        return


__all__ = [
    "CardSection",
    "ENTRY_POINT_GROUP",
    "MethodInfo",
    "Paper",
    "get_method",
    "get_method_class",
    "method_info",
    "method_names",
    "register_method",
    "unregister_method",
]
