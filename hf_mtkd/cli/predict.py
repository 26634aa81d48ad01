"""`hf-mtkd predict --model PATH_OR_ID INPUT [INPUT ...] --output predictions.csv|.json`

Inputs are audio files or folders (searched recursively); any format FFmpeg reads, any rate, any
number of channels. Files are cut into windows of the length the model was trained on (or --chunk_seconds)
whose logits are averaged.
"""

from __future__ import annotations

import argparse
import sys
from typing import Optional


def build_parser() -> argparse.ArgumentParser:
    from ..inference.predict import FALLBACK_CHUNK_SECONDS, ON_ERROR

    parser = argparse.ArgumentParser(prog="hf-mtkd predict", description=__doc__.split("\n\n")[1])
    parser.add_argument("inputs", nargs="+", help="audio files and/or folders")
    parser.add_argument("--model", required=True, help="a saved student (output_dir) or a Hub id")
    parser.add_argument("--output", required=True, help="where to write the predictions: .csv or .json")
    parser.add_argument("--chunk_seconds", type=float, default=None,
                        help="window length; logits are averaged over windows (default: the train_window_seconds in "
                             f"the model's config, else {FALLBACK_CHUNK_SECONDS}; 0: whole files)")
    parser.add_argument("--batch_size", type=int, default=8, help="windows per forward pass")
    parser.add_argument("--device", help="cpu, cuda, cuda:1, ... (default: cuda if available)")
    parser.add_argument("--on_error", choices=ON_ERROR, default="fail",
                        help="a file that cannot be decoded: stop (fail) or record the error and go on (skip)")
    parser.add_argument("--no_progress", action="store_true", help="no progress bar")
    return parser


def main(argv: Optional[list[str]] = None):
    args = build_parser().parse_args(sys.argv[1:] if argv is None else argv)
    from ..inference.predict import MODEL_WINDOW, predict_files

    predictions = predict_files(
        args.model, args.inputs, output=args.output,
        chunk_seconds=MODEL_WINDOW if args.chunk_seconds is None else (args.chunk_seconds or None),
        batch_size=args.batch_size, device=args.device, on_error=args.on_error, progress=not args.no_progress,
    )
    failed = sum(p.error is not None for p in predictions)
    print(f"Wrote {len(predictions)} predictions to {args.output}" + (f" ({failed} files could not be read)" if failed else ""))
    return predictions


if __name__ == "__main__":
    main()
