#!/usr/bin/env python
"""README's result tables from the committed result files (hf_mtkd.metrics.results_doc).

    python scripts/render_results.py --collect outputs/demo results/demo   # a pipeline over seeds or folds
    python scripts/render_results.py --collect-runs results/x "floor=outputs/x/floor" "student=outputs/x/student"
                                                                          # single runs -> results/x/runs.json
    python scripts/render_results.py                                      # rewrite README's results blocks
    python scripts/render_results.py --check                              # exit 1 when README is stale
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from hf_mtkd.metrics.results_doc import collect_results, render_readme, stale_blocks
from hf_mtkd.metrics.single_runs import collect_runs

ROOT = Path(__file__).resolve().parents[1]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--collect", nargs=2, metavar=("PIPELINE_DIR", "RESULTS_DIR"),
                        help="copy the table over seeds or folds, provenance.json and paired_verdicts.json first")
    parser.add_argument("--collect-runs", nargs="+", metavar="ARG",
                        help="RESULTS_DIR then LABEL=RUN_DIR pairs, in the table's order: write RESULTS_DIR/runs.json")
    parser.add_argument("--check", action="store_true", help="only report README blocks that differ; exit 1 if any")
    args = parser.parse_args(argv)
    if args.collect:
        for path in collect_results(*args.collect):
            print(f"copied {path}")
    if args.collect_runs:
        target, *pairs = args.collect_runs
        if not pairs or any("=" not in pair for pair in pairs):
            parser.error("--collect-runs needs RESULTS_DIR and at least one LABEL=RUN_DIR")
        print(f"wrote {collect_runs(dict(pair.split('=', 1) for pair in pairs), target)}")
    readme_path = ROOT / "README.md"
    readme = readme_path.read_text(encoding="utf-8")
    if args.check:
        stale = stale_blocks(readme, ROOT)
        if stale:
            print(f"README result blocks differ from their result files: {stale}; run scripts/render_results.py")
            return 1
        print("README result blocks match their result files.")
        return 0
    readme_path.write_text(render_readme(readme, ROOT), encoding="utf-8")
    print(f"rendered {readme_path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
