"""`accelerate launch -m hf_mtkd.cli.train --config recipes/<dataset>/<method>.yaml [--flag value ...]`

The recipe's `method` key (finetune, mtkd, self_distillation, or any method registered in `hf_mtkd.registry`)
picks what runs; flags override the recipe. `--help` lists the methods; with `--method NAME` (or a `--config`
naming one) it lists that method's keys.
"""

from __future__ import annotations

import argparse
import dataclasses
import inspect
import sys
import textwrap
from typing import Optional

from ..config_parser import load_recipe

USAGE = "usage: hf-mtkd train --config RECIPE.yaml [--method NAME] [--KEY VALUE ...]"
#: transformers documents the TrainingArguments keys it owns; the help names them without repeating their text.
TRAINING_ARGUMENTS_DOCS = "https://huggingface.co/docs/transformers/main_classes/trainer#transformers.TrainingArguments"


def main(argv: Optional[list[str]] = None):
    parser = argparse.ArgumentParser(prog="hf-mtkd train", add_help=False)
    parser.add_argument("--config", help="YAML recipe")
    parser.add_argument("--method", help="a registered method: finetune, mtkd, self_distillation, ... (default: the "
                                         "recipe's `method`)")
    known, rest = parser.parse_known_args(argv if argv is not None else sys.argv[1:])
    recipe = load_recipe(known.config) if known.config else {}
    method_name = known.method or recipe.get("method")

    from ..registry import get_method

    if "-h" in rest or "--help" in rest:
        # Handled here, not by HfArgumentParser: its help lists fine-tuning's keys whatever the method (all 800
        # lines of TrainingArguments), then exits inside parse_config, which reports a failed parse.
        print(method_help(get_method(method_name)) if method_name else methods_help())
        raise SystemExit(0)

    from ..training.run import run
    from ..utils.distributed import end_process_group

    summary = run(get_method(method_name or "finetune"), known.config, rest)
    end_process_group()  # under torchrun / accelerate launch: leaving gloo to interpreter exit can abort a process
    return summary


def methods_help() -> str:
    """The usage and every method a recipe may name, one line each."""
    from ..registry import method_info, method_names

    lines = [USAGE, "", "Train one model from a flat YAML recipe; every recipe key is also a --KEY flag, and flags",
             "override the recipe.", "", "methods (the recipe's `method` key, or --method; default finetune):"]
    for name in method_names():
        info = method_info(name)
        lines.append(f"  {name:<20} {info.display_name if info else ''}")
    lines += ["", "hf-mtkd train --method NAME --help (or --config RECIPE.yaml --help) lists that method's keys."]
    return "\n".join(lines)


def method_help(method) -> str:
    """The keys of `method`'s recipes, grouped by the dataclass that defines them, with their help; the keys
    transformers' TrainingArguments defines (and hf_mtkd leaves as they are) are named only."""
    from transformers import HfArgumentParser, TrainingArguments

    from ..training.args import SERTrainingArguments

    types = method.dataclass_types()
    parser = HfArgumentParser(list(types))
    actions: dict[str, list] = {}
    for action in parser._actions:  # `--x` and `--no_x` of a bool field share its dest
        actions.setdefault(action.dest, []).append(action)

    def owner(cls: type, name: str) -> type:
        """The most derived class of `cls` that declares field `name` (a subclass may change a default)."""
        return next(base for base in cls.__mro__ if name in inspect.get_annotations(base))

    sections: dict[str, list[str]] = {}
    for index, cls in enumerate(types):  # model, data, training, then the method's extra dataclasses
        for name in (f.name for f in dataclasses.fields(cls)):
            declared = owner(cls, name)
            if declared is TrainingArguments:
                title = "transformers"
            elif declared is SERTrainingArguments:
                title = "training keys every method shares (SERTrainingArguments)"
            else:
                kind = {0: "model", 1: "data", 2: f"{method.name} training"}.get(index, method.name)
                title = f"{kind} keys ({cls.__name__})"
            sections.setdefault(title, []).append(name)

    info = method.card_info()
    text = [USAGE, "", f"method {method.name}" + (f": {info.display_name}" if info else "")]
    shared = sections.pop("training keys every method shares (SERTrainingArguments)", [])
    named_only = sections.pop("transformers", [])
    if shared:  # after the method's own keys: what sets this method apart comes first
        sections["training keys every method shares (SERTrainingArguments)"] = shared
    for title, names in sections.items():
        formatter = parser._get_formatter()  # argparse's own layout of each key and its help (what format_help uses)
        formatter.start_section(title)
        formatter.add_arguments([action for name in names for action in actions.get(name, [])])
        formatter.end_section()
        text += ["", formatter.format_help().rstrip()]
    if named_only:
        text += ["", f"transformers TrainingArguments keys ({len(named_only)} more, each also a --KEY flag; see",
                 f"{TRAINING_ARGUMENTS_DOCS}):",
                 textwrap.fill(", ".join(named_only), 100, initial_indent="  ", subsequent_indent="  ")]
    return "\n".join(text)


if __name__ == "__main__":
    main()
