"""Size and inference time of the audio + text teacher and its text-truncated students (SPEC section 4).

The teacher is the 3M-SER fusion of a BERT-base text encoder (12 layers, hidden 768, vocabulary 30,522) and
an audio encoder (default: wav2vec2-base; the paper's VGGish is not a transformers model), random init (only
shapes matter). Students keep 6, 4 and 2 of its BERT layers (`make_student`). For each model: parameters and
inference time per sample (batch 1: one clip of --clip-seconds and a transcript of --text-tokens tokens, the
paper's setting), and both as ratios to the teacher. The paper's reference points (BERT-base + VGGish):
parameters 115.38 / 101.21 / 87.03 M of 157.91 M (0.73 / 0.64 / 0.55), time 23.38 / 21.46 / 19.60 ms of
32.80 ms (0.71 / 0.65 / 0.60). With a larger audio encoder the audio branch, which students keep whole, weighs
more, so both ratios come out closer to 1.

Models are timed interleaved (one forward each per round) so machine-load drifts hit all of them alike.
`--clock cpu` (default) uses process CPU time, which on a shared machine with one torch thread is the time the
same work takes on an idle core; `--clock wall` on a quiet machine or an accelerator.

    python benchmarks/audio_text_cost.py --output audio_text_cost.json

prints a markdown table and writes every number as JSON to --output.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys

import torch
from transformers import AutoConfig, BertConfig

from hf_mtkd.audio_text import make_student
from hf_mtkd.models.audio_text import AudioTextForSequenceClassification

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))  # the sibling benchmark scripts
from self_distillation_latency import timed  # noqa: E402  (one wall + CPU timer for every benchmark)

CLOCKS = ("wall", "cpu")
PAPER = {
    "teacher": {"params_m": 157.91, "ms": 32.80},
    "student_6": {"params_m": 115.38, "ms": 23.38},
    "student_4": {"params_m": 101.21, "ms": 21.46},
    "student_2": {"params_m": 87.03, "ms": 19.60},
}


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--output", required=True, help="Where to write the JSON results.")
    parser.add_argument(
        "--models",
        nargs="+",
        metavar="NAME=PATH",
        help="Time saved audio_text models instead (the first is the teacher the ratios refer to), "
        "e.g. teacher=outputs/demo_audio_text/teacher_fused student_2=outputs/demo_audio_text/student_2_kd.",
    )
    parser.add_argument("--student-layers", type=int, nargs="+", default=[6, 4, 2])
    parser.add_argument("--audio-encoder-type", default="wav2vec2", help="model_type of the audio encoder config.")
    parser.add_argument("--fusion-width", type=int, default=None, help="fusion_hidden_size (default: the audio "
                                                                       "width).")
    parser.add_argument("--clip-seconds", type=float, default=3.0)
    parser.add_argument("--text-tokens", type=int, default=24, help="Transcript length in tokens ([CLS] and [SEP] "
                                                                    "included).")
    parser.add_argument("--repeats", type=int, default=10, help="Timed rounds (after warm-up).")
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--threads", type=int, default=None, help="torch.set_num_threads (default: torch's).")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--clock", default="cpu", choices=CLOCKS, help="Clock the ratios use (see the module doc).")
    parser.add_argument("--statistic", default="median", choices=["min", "median"], help="Summary over repeats.")
    args = parser.parse_args(argv)
    if args.clock == "cpu" and args.device != "cpu":
        parser.error("--clock cpu measures host CPU time; use --clock wall on an accelerator.")
    return args


def build_models(args) -> dict[str, AudioTextForSequenceClassification]:
    if args.models:
        pairs = [item.split("=", 1) for item in args.models]
        if any(len(pair) != 2 for pair in pairs):
            raise SystemExit(f"--models takes NAME=PATH items, got {args.models}.")
        return {
            name: AudioTextForSequenceClassification.from_pretrained(path).eval().to(args.device)
            for name, path in pairs
        }
    torch.manual_seed(0)
    text = BertConfig()  # bert-base-uncased shapes
    audio = AutoConfig.for_model(args.audio_encoder_type)
    if hasattr(audio, "layerdrop"):
        audio.layerdrop = 0.0  # timings comparable across repeats
    extra = {"fusion_hidden_size": args.fusion_width} if args.fusion_width else {}
    teacher = AudioTextForSequenceClassification.from_encoders(
        text, audio, label_names=["angry", "happy", "neutral", "sad"], **extra
    )
    models = {"teacher": teacher}
    for k in args.student_layers:
        models[f"student_{k}"] = make_student(teacher, k, "bottom")
    return {name: model.eval().to(args.device) for name, model in models.items()}


def inputs(args, vocab_size: int, rate: int = 16000) -> dict[str, torch.Tensor]:
    generator = torch.Generator().manual_seed(0)
    # Token ids only need to be valid: their values do not change the work done.
    ids = torch.randint(min(1000, vocab_size // 2), vocab_size, (1, args.text_tokens), generator=generator)
    return {
        "input_ids": ids.to(args.device),
        "attention_mask": torch.ones_like(ids).to(args.device),
        "input_values": torch.randn(1, int(args.clip_seconds * rate), generator=generator).to(args.device),
    }


def measure(args) -> dict:
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    models = build_models(args)
    batch = inputs(args, next(iter(models.values())).config.text_config.vocab_size)
    samples: dict[str, list[dict]] = {name: [] for name in models}
    with torch.inference_mode():
        for round_ in range(args.warmup + args.repeats):
            for name, model in models.items():
                t = timed(lambda: model(**batch), device)
                if round_ >= args.warmup:
                    samples[name].append(t)
    summary = statistics.median if args.statistic == "median" else min
    reference = next(iter(models))
    teacher_params = models[reference].num_parameters()
    rows = {}
    for name, model in models.items():
        seconds = summary(s[args.clock] for s in samples[name])
        rows[name] = {
            "params": model.num_parameters(),
            "text_layers": model.config.text_config.num_hidden_layers,
            "seconds_per_sample": seconds,
            "wall": [s["wall"] for s in samples[name]],
            "cpu": [s["cpu"] for s in samples[name]],
        }
    teacher_seconds = rows[reference]["seconds_per_sample"]
    for name, row in rows.items():
        row["params_ratio"] = row["params"] / teacher_params
        row["time_ratio"] = row["seconds_per_sample"] / teacher_seconds
        if name in PAPER:
            row["paper_params_ratio"] = PAPER[name]["params_m"] / PAPER["teacher"]["params_m"]
            row["paper_time_ratio"] = PAPER[name]["ms"] / PAPER["teacher"]["ms"]
    return {
        "settings": {k: v for k, v in vars(args).items() if k != "output"},
        "machine": {"python": sys.version.split()[0], "torch": torch.__version__, "platform": platform.platform(),
                    "processor": platform.processor(), "threads": torch.get_num_threads()},
        "models": rows,
    }


def markdown(report: dict) -> str:
    settings = report["settings"]
    lines = [
        ("Saved audio + text models" if settings.get("models") else
         f"Audio + text teacher (BERT-base + {settings['audio_encoder_type']}) and its students") + ": batch 1, "
        f"{settings['clip_seconds']} s clip, {settings['text_tokens']} tokens, {settings['clock']} time "
        f"({settings['statistic']} of {settings['repeats']}).",
        "",
        "| model | BERT layers | params (M) | params / teacher | paper | ms / sample | time / teacher | paper |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for name, row in report["models"].items():
        paper_p = f"{row['paper_params_ratio']:.2f}" if "paper_params_ratio" in row else "-"
        paper_t = f"{row['paper_time_ratio']:.2f}" if "paper_time_ratio" in row else "-"
        lines.append(
            f"| {name} | {row['text_layers']} | {row['params'] / 1e6:.2f} | {row['params_ratio']:.2f} | {paper_p} | "
            f"{row['seconds_per_sample'] * 1e3:.1f} | {row['time_ratio']:.2f} | {paper_t} |"
        )
    return "\n".join(lines)


def main(argv=None) -> dict:
    args = parse_args(argv)
    report = measure(args)
    with open(args.output, "w", encoding="utf-8") as handle:
        json.dump(report, handle, indent=2)
    print(markdown(report))
    return report


if __name__ == "__main__":
    main()
