"""YAML recipe + command-line parsing onto HF dataclasses.

A recipe is a flat YAML file whose keys are the fields of the dataclasses a method
uses (model, data and a TrainingArguments subclass). Flags given on the command line
override the YAML. We turn the YAML into command-line tokens and let
`HfArgumentParser` parse everything in one go, so YAML values get the same type
conversion and the same error messages as flags do (a string where an int belongs
is an error naming the flag), instead of being injected as already-typed defaults.
"""

from __future__ import annotations

import argparse
import json
import os
import re
from collections.abc import Sequence
from typing import Any

import yaml
from transformers import HfArgumentParser

# Keys a recipe may hold that are not dataclass fields: they select what runs.
RECIPE_KEYS = ("method",)


class RecipeError(ValueError):
    """A recipe or command line that cannot be turned into the method's dataclasses."""


class _DuplicateKey(yaml.YAMLError):
    def __init__(self, key: Any, first_line: int, line: int):
        super().__init__(f"key {key!r} is given twice (lines {first_line} and {line}); remove one")


class _UniqueKeyLoader(yaml.SafeLoader):
    """SafeLoader that refuses a key given twice in one mapping (PyYAML keeps the last one silently)."""

    def construct_mapping(self, node, deep=False):
        first_lines: dict[Any, int] = {}
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":  # `<<: *base` merges; the merged keys may repeat
                continue
            key = self.construct_object(key_node, deep=True)
            line = key_node.start_mark.line + 1
            try:
                if key in first_lines:
                    raise _DuplicateKey(key, first_lines[key], line)
                first_lines[key] = line
            except TypeError:  # an unhashable key: construct_mapping below reports it
                continue
        return super().construct_mapping(node, deep=deep)


def load_recipe(path: str | os.PathLike) -> dict[str, Any]:
    """Read a flat YAML recipe; errors name the file (and a key given twice, with both lines)."""
    if not os.path.isfile(path):
        raise RecipeError(f"Recipe file not found: {path}")
    with open(path, encoding="utf-8") as handle:
        try:
            data = yaml.load(handle, Loader=_UniqueKeyLoader)  # noqa: S506  (a SafeLoader subclass)
        except _DuplicateKey as err:
            raise RecipeError(f"{path}: {err}") from err
        except yaml.YAMLError as err:
            raise RecipeError(f"{path}: not valid YAML: {err}") from err
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise RecipeError(f"{path}: a recipe must be a mapping of keys to values, got {type(data).__name__}.")
    for key in data:
        if not isinstance(key, str):
            raise RecipeError(f"{path}: key {key!r} is not a string.")
    return data


def _actions_by_dest(parser: argparse.ArgumentParser) -> dict[str, argparse.Action]:
    return {action.dest: action for action in parser._actions if action.dest != "help"}


def _scalar_token(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (dict, list)):
        return json.dumps(value)
    return str(value)


def recipe_to_argv(recipe: dict[str, Any], parser: HfArgumentParser, source: str = "recipe") -> list[str]:
    """Translate recipe keys into `--key value` tokens, rejecting unknown keys by name."""
    actions = _actions_by_dest(parser)
    unknown = [key for key in recipe if key not in actions and key not in RECIPE_KEYS]
    if unknown:
        raise RecipeError(
            f"{source}: unknown key(s) {', '.join(sorted(unknown))}. "
            "Each key must be a field of the method's model, data or training arguments "
            "(run with --help to list them)."
        )
    argv: list[str] = []
    for key, value in recipe.items():
        if key in RECIPE_KEYS or value is None:
            continue
        action = actions[key]
        flag = f"--{key}"
        takes_list = action.nargs in ("+", "*")
        if takes_list:
            if not isinstance(value, (list, tuple)):
                value = [value]
            if any(isinstance(item, (dict, list)) for item in value):
                raise RecipeError(f"{source}: key '{key}' takes a list of plain values, got {value!r}.")
            if not value:
                continue
            argv.append(flag)
            argv.extend(_scalar_token(item) for item in value)
        else:
            if isinstance(value, list) and action.type not in (None, str) and not action.nargs:
                raise RecipeError(f"{source}: key '{key}' takes a single value, got the list {value!r}.")
            argv.extend([flag, _scalar_token(value)])
    return argv


def parse_config(
    dataclass_types: Sequence[type],
    config_path: str | os.PathLike | None = None,
    args: Sequence[str] | None = None,
    recipe: dict[str, Any] | None = None,
) -> tuple:
    """Build the dataclasses from a YAML recipe (optional) and command-line flags.

    Flags in `args` override the recipe, since argparse keeps the last occurrence.
    Unknown recipe keys and unknown flags are errors that name them.
    """
    parser = HfArgumentParser(list(dataclass_types))

    def fail(message: str):  # argparse would print its usage and exit; raise naming the key instead
        message = re.sub(r"^argument --([\w.]+)(/--[\w.-]+)?:", r"key '\1':", message)
        raise RecipeError(f"{config_path or 'command line'}: {message}")

    parser.error = fail
    tokens: list[str] = []
    if config_path is not None and recipe is None:
        recipe = load_recipe(config_path)
    if recipe:
        tokens.extend(recipe_to_argv(recipe, parser, source=str(config_path or "recipe")))
    tokens.extend(list(args or []))
    try:
        outputs = parser.parse_args_into_dataclasses(
            args=tokens, return_remaining_strings=True, look_for_args_file=False
        )
    except SystemExit as err:  # argparse exits on type errors; make it an exception with context
        raise RecipeError(
            f"Could not parse the configuration ({config_path or 'command line'}); see the argparse message above."
        ) from err
    *dataclasses_, remaining = outputs
    if remaining:
        raise RecipeError(f"Unknown command-line argument(s): {' '.join(remaining)}")
    return tuple(dataclasses_)
