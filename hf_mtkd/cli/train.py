"""`accelerate launch -m hf_mtkd.cli.train --config recipes/<dataset>/<method>.yaml [--flag value ...]`

The recipe's `method` key (finetune, mtkd, self_distillation, or any method registered in `hf_mtkd.methods`)
picks what runs; flags override the recipe.
"""

from __future__ import annotations

import argparse
import sys
from typing import Optional

from ..config_parser import load_recipe


def main(argv: Optional[list[str]] = None):
    parser = argparse.ArgumentParser(prog="hf-mtkd train", add_help=False)
    parser.add_argument("--config", help="YAML recipe")
    parser.add_argument("--method", help="a registered method: finetune, mtkd, self_distillation, ... (default: the recipe's `method`)")
    known, rest = parser.parse_known_args(argv if argv is not None else sys.argv[1:])
    recipe = load_recipe(known.config) if known.config else {}
    method_name = known.method or recipe.get("method") or "finetune"

    from ..methods import get_method
    from ..training.run import run
    from ..utils.distributed import end_process_group

    summary = run(get_method(method_name), known.config, rest)
    end_process_group()  # under torchrun / accelerate launch: leaving gloo to interpreter exit can abort a process
    return summary


if __name__ == "__main__":
    main()
