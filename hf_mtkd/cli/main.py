"""`hf-mtkd <command>`: train, pipeline (multi-stage recipes such as the demo), push (to the Hub), predict."""

from __future__ import annotations

import argparse
import sys
from typing import Optional


def main(argv: Optional[list[str]] = None) -> None:
    argv = list(sys.argv[1:] if argv is None else argv)
    commands = ("train", "pipeline", "push", "predict")
    if not argv or argv[0] not in commands:
        asked = bool(argv) and argv[0] in ("-h", "--help")  # help asked for: stdout and success, else a usage error
        print(f"usage: hf-mtkd {{{','.join(commands)}}} ...\n"
              "  train     --config recipes/<dataset>/<method>.yaml [--flag value ...]   (--help: the methods)\n"
              "  pipeline  --config recipes/demo/pipeline.yaml [--output_dir DIR] [--overwrite] [--seeds S ...]\n"
              "            [--folds FOLD ...]\n"
              "  push      OUTPUT_DIR REPO_ID [--private] [--commit_message MSG]\n"
              "  predict   --model PATH_OR_ID INPUT [INPUT ...] --output predictions.csv|.json",
              file=sys.stdout if asked else sys.stderr)
        raise SystemExit(0 if asked else 2)
    command, rest = argv[0], argv[1:]
    if command == "train":
        from .train import main as train_main

        train_main(rest)
    elif command == "pipeline":
        # No abbreviations: `--seed 3` is a training flag for every stage, not `--seeds 3`.
        parser = argparse.ArgumentParser(prog="hf-mtkd pipeline", allow_abbrev=False)
        parser.add_argument("--config", required=True, help="pipeline YAML (common / stages / compare)")
        parser.add_argument("--output_dir", help="overrides the pipeline's output_dir")
        parser.add_argument("--overwrite", action="store_true", help="retrain every stage (a stage whose recipe or "
                                                                     "data changed retrains anyway)")
        parser.add_argument("--seeds", type=int, nargs="+", help="run every stage once per seed (overrides the "
                            "pipeline's seeds); the table shows mean ± sd over seeds")
        parser.add_argument("--folds", nargs="+", help="run every stage once per fold, testing on that value of "
                            "fold_column_name (overrides the pipeline's folds); the table shows mean ± sd over folds")
        known, overrides = parser.parse_known_args(rest)
        from ..multi_stage import run_pipeline

        from ..utils.distributed import end_process_group

        run_pipeline(known.config, known.output_dir, overrides, overwrite=known.overwrite, seeds=known.seeds,
                     folds=known.folds)
        end_process_group()  # as `train` does: leaving gloo to interpreter exit can abort a process
    elif command == "push":
        from .push import main as push_main

        push_main(rest)
    elif command == "predict":
        from .predict import main as predict_main

        predict_main(rest)


if __name__ == "__main__":
    main()
