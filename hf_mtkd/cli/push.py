"""`hf-mtkd push OUTPUT_DIR REPO_ID [--private] [--commit_message MSG]`: upload a trained student with its card.

The token comes from $HF_TOKEN or the saved login (`hf auth login`); --token works too, but a
token on the command line is visible to other users of the machine (process list, shell history).
"""

from __future__ import annotations

import argparse
import logging
import sys
from typing import Optional


def build_parser() -> argparse.ArgumentParser:
    from ..hub.push import DEFAULT_COMMIT_MESSAGE

    parser = argparse.ArgumentParser(prog="hf-mtkd push", description=__doc__.split("\n\n")[0])
    parser.add_argument("output_dir", help="output_dir of a finished run (model, feature extractor, metrics)")
    parser.add_argument("repo_id", help="'name' (under your user) or 'namespace/name'; created if missing")
    parser.add_argument("--private", action="store_true", help="create the repo private (no effect if it exists)")
    parser.add_argument("--token", help="Hub token (default: $HF_TOKEN, then the saved login)")
    parser.add_argument("--commit_message", default=DEFAULT_COMMIT_MESSAGE)
    parser.add_argument("--revision", help="branch to commit to (default: main)")
    parser.add_argument("--license", help="license of the model for the card metadata, e.g. apache-2.0")
    parser.add_argument("--endpoint", help="Hub URL (default: $HF_ENDPOINT or https://huggingface.co)")
    parser.add_argument("--keep_card", action="store_true",
                        help="upload the README.md in output_dir as it is instead of writing the card from the run")
    return parser


def main(argv: Optional[list[str]] = None):
    args = build_parser().parse_args(sys.argv[1:] if argv is None else argv)
    logging.basicConfig(format="%(levelname)s %(name)s: %(message)s", level=logging.INFO)
    from ..hub.push import push_to_hub

    overrides = {"license": args.license} if args.license else {}
    commit = push_to_hub(
        args.output_dir, args.repo_id, private=True if args.private else None, token=args.token,
        commit_message=args.commit_message, revision=args.revision, endpoint=args.endpoint,
        card=not args.keep_card, **overrides,
    )
    print(f"Pushed {args.output_dir} to {commit.repo_url.repo_id}: {commit.commit_url}")
    return commit


if __name__ == "__main__":
    main()
