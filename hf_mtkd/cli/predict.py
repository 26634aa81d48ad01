"""`hf-mtkd predict --model PATH_OR_ID INPUT [INPUT ...] --output predictions.csv|.json`

Inputs are audio files or folders (searched recursively); any format FFmpeg reads, any rate, any
number of channels. Files are cut into windows of the length the model was trained on (or --chunk_seconds)
whose logits are averaged.
Audio + text models (method audio_text) also read each file's transcript: from --transcripts (a CSV with a
file_name or path column and a text column) or from a sidecar file beside each clip (clip.txt).
"""

from __future__ import annotations

import argparse
import os
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
    parser.add_argument("--torch_num_threads", default="auto",
                        help="torch intra-op threads on CPU: a number, or auto (one for models under 10 M parameters, "
                        "else torch's default capped by the idle cores), as in training")
    text = parser.add_argument_group("transcripts (audio + text models)")
    text.add_argument("--transcripts", help="CSV of transcripts (paths relative to it); default: a sidecar file per "
                                            "clip")
    text.add_argument("--text_column", default="text", help="the CSV's transcript column")
    text.add_argument("--path_column", help="the CSV's path column (default: file_name or path)")
    text.add_argument("--transcript_suffix", default=".txt", help="extension of the sidecar transcript files")
    return parser


def main(argv: Optional[list[str]] = None):
    args = build_parser().parse_args(sys.argv[1:] if argv is None else argv)
    from ..inference.predict import MODEL_WINDOW, check_model_source

    check_model_source(args.model, "--model")  # before the saved config is read: a missing folder is no Hub id
    from ..utils.threads import apply_num_threads, parse_num_threads, saved_parameter_count

    try:
        parse_num_threads(args.torch_num_threads)
    except ValueError as err:
        raise SystemExit(f"hf-mtkd predict: --{err}") from err
    if not (args.device or "cpu").startswith("cuda"):
        count = saved_parameter_count(args.model) if os.path.isdir(args.model) else None
        apply_num_threads(args.torch_num_threads, count if count is not None else object())

    common = dict(
        output=args.output,
        chunk_seconds=MODEL_WINDOW if args.chunk_seconds is None else (args.chunk_seconds or None),
        batch_size=args.batch_size,
        device=args.device,
        on_error=args.on_error,
        progress=not args.no_progress,
    )
    method_predictor = _method_file_predictor(args.model)
    if method_predictor is not None:
        predictions = method_predictor(args.model, args.inputs, args, **common)
    else:
        if args.transcripts:
            raise SystemExit(f"hf-mtkd predict: {args.model} is an audio-only model; --transcripts is for audio + "
                             f"text models.")
        from ..inference.predict import predict_files

        predictions = predict_files(args.model, args.inputs, **common)
    failed = sum(p.error is not None for p in predictions)
    print(
        f"Wrote {len(predictions)} predictions to {args.output}"
        + (f" ({failed} files could not be read)" if failed else "")
    )
    return predictions


def _method_file_predictor(model: str):
    """The predictor of the method whose saved models need more than audio (audio + text models read transcripts),
    found through the registry from the saved config alone (no weights are loaded); None for audio-only models."""
    from transformers import AutoConfig

    from ..registry import get_method_class, method_names

    config = AutoConfig.from_pretrained(model)
    for name in method_names():
        predictor = get_method_class(name).file_predictor(config)
        if predictor is not None:
            return predictor
    return None


if __name__ == "__main__":
    main()
