"""Size and real-time factor of the GE2E teacher against the compact student, one clip on one CPU thread.

  GE2E teacher      GE2EForAudioClassification at its defaults (hf_mtkd.models.ge2e): Resemblyzer's 3-layer LSTM
                    of 256 and projection over 1.6 s mel windows, 1.3 per second, + window statistics and the head;
                    the wheel's weights when resemblyzer is installed, else random init (only shapes matter)
  compact student   LogMelCNNForAudioClassification at its defaults (0.14 M parameters) with its LogMelFeatureExtractor

Each scores one clip as `pipeline("audio-classification")` does (feature extractor, then the model, batch of
one), interleaved round by round so machine-load drifts hit both alike; CPU time (`time.process_time`, one torch
thread: the time on an idle core) and the best round, as real_time_factor.py.

    python benchmarks/ge2e_cost.py --output benchmarks/results/ge2e/cpu-2core.json

prints a Markdown table and writes every number to --output (and the table beside it as .md).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import platform
import sys

import numpy as np
import torch

from hf_mtkd.models import (
    GE2EConfig,
    GE2EFeatureExtractor,
    GE2EForAudioClassification,
    LogMelCNNConfig,
    LogMelCNNForAudioClassification,
    LogMelFeatureExtractor,
)

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))  # the sibling benchmark scripts
from self_distillation_latency import run_interleaved, summarize  # noqa: E402  (the shared timer)

SAMPLING_RATE = 16000
TEACHER, STUDENT = "GE2E teacher (frozen encoder + head)", "compact log-mel CNN student"


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--output", required=True, help="Where to write the JSON results (and the .md beside it).")
    parser.add_argument("--clip-seconds", type=float, default=4.0, help="Length of the scored clip.")
    parser.add_argument("--rounds", type=int, default=5, help="Timed rounds (after --warmup rounds).")
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--num-labels", type=int, default=4)
    parser.add_argument("--threads", type=int, default=1, help="torch threads.")
    return parser.parse_args(argv)


def parameters(module) -> int:
    return sum(p.numel() for p in module.parameters())


def measure(args) -> dict:
    torch.manual_seed(0)
    samples = int(SAMPLING_RATE * args.clip_seconds)
    waveform = np.random.default_rng(0).standard_normal(samples).astype(np.float32) * 0.1
    pretrained = importlib.util.find_spec("resemblyzer") is not None
    teacher = GE2EForAudioClassification(GE2EConfig(num_labels=args.num_labels,
                                                    pretrained_encoder="resemblyzer" if pretrained else None)).eval()
    teacher_fe = GE2EFeatureExtractor()
    student = LogMelCNNForAudioClassification(LogMelCNNConfig(num_labels=args.num_labels)).eval()
    student_fe = LogMelFeatureExtractor()

    def score(model, fe):
        with torch.inference_mode():
            return model(**fe(waveform, sampling_rate=SAMPLING_RATE, return_tensors="pt")).logits

    probes = {TEACHER: lambda: score(teacher, teacher_fe), STUDENT: lambda: score(student, student_fe)}
    times = run_interleaved(probes, args.rounds, args.warmup, torch.device("cpu"))
    best = summarize(times, "min")
    sizes = {TEACHER: {"parameters": parameters(teacher), "encoder_parameters": parameters(teacher.ge2e)},
             STUDENT: {"parameters": parameters(student)}}
    rows = [{"model": name, **sizes[name], "cpu_seconds": best[name]["cpu"],
             "real_time_factor": args.clip_seconds / best[name]["cpu"]} for name in probes]
    for row in rows:
        row["time_over_student"] = row["cpu_seconds"] / best[STUDENT]["cpu"]
        row["parameters_over_student"] = row["parameters"] / sizes[STUDENT]["parameters"]
    return {
        "config": {"clip_seconds": args.clip_seconds, "rounds": args.rounds, "warmup": args.warmup,
                   "threads": args.threads, "statistic": "min", "clock": "cpu",
                   "teacher_weights": "resemblyzer wheel" if pretrained else "random init"},
        "machine": {"python": sys.version.split()[0], "torch": torch.__version__, "platform": platform.platform(),
                    "cpu_cores": os.cpu_count(), "load_average": os.getloadavg()},
        "rows": rows, "times": times,
    }


def markdown(report: dict) -> str:
    config = report["config"]
    lines = [
        f"GE2E teacher vs compact student: one {config['clip_seconds']:g} s clip, batch of one, {config['threads']} "
        f"torch thread, CPU time, best of {config['rounds']} interleaved rounds (feature extraction included); "
        f"teacher weights: {config['teacher_weights']}. Load average {report['machine']['load_average'][0]:.1f}.",
        "",
        "| model | parameters | / student | CPU time per clip | / student | x real time |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for row in report["rows"]:
        lines.append(f"| {row['model']} | {row['parameters'] / 1e6:.2f} M | {row['parameters_over_student']:.1f} "
                     f"| {row['cpu_seconds'] * 1e3:.1f} ms | {row['time_over_student']:.1f} "
                     f"| {row['real_time_factor']:.0f} |")
    return "\n".join(lines)


def main(argv=None) -> dict:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    report = measure(args)
    table = markdown(report)
    print(table)
    with open(args.output, "w") as handle:
        json.dump(report, handle, indent=2)
    with open(os.path.splitext(args.output)[0] + ".md", "w") as handle:
        handle.write(table + "\n")
    return report


if __name__ == "__main__":
    main()
