#!/usr/bin/env python
"""README's result tables from the committed result files (hf_mtkd.metrics.results_doc).

    python scripts/render_results.py --collect outputs/demo results/demo   # copy a finished pipeline's files
    python scripts/render_results.py                                      # rewrite README's results blocks
    python scripts/render_results.py --check                              # exit 1 when README is stale
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from hf_mtkd.metrics.results_doc import collect_results, render_readme, stale_blocks

ROOT = Path(__file__).resolve().parents[1]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--collect", nargs=2, metavar=("PIPELINE_DIR", "RESULTS_DIR"),
                        help="copy comparison_seeds.csv, paired_verdicts.json and provenance.json first")
    parser.add_argument("--check", action="store_true", help="only report README blocks that differ; exit 1 if any")
    args = parser.parse_args(argv)
    if args.collect:
        for path in collect_results(*args.collect):
            print(f"copied {path}")
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
