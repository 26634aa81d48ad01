"""Real-time factor of single-clip inference on one CPU thread: seconds of audio per second of compute.

Models, random init (only shapes matter), each scoring one clip as `pipeline("audio-classification")` does
(feature extractor, then the model, batch of one):

  wav2vec2-base            Wav2Vec2ForSequenceClassification at wav2vec2-base shapes (94 M parameters)
  self-distillation exits  EarlyExitForAudioClassification on the same backbone, stopping after layer 3, 8, 10
                           (the DEMoS recipe's exits) and the full model
  compact student          LogMelCNNForAudioClassification at its defaults (0.14 M parameters) with its
                           LogMelFeatureExtractor (64-band log-mel, per-utterance normalisation)

Every probe runs once per round, rounds interleaved, so a change in machine load hits them alike; the ratios use
CPU time (`time.process_time`, one torch thread: the time the same work takes on an idle core) and the best
round. The target: the compact student at least 20 x faster than wav2vec2-base.

    python benchmarks/real_time_factor.py --output rtf.json

prints a Markdown table and writes every number to --output.
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
import torch
from transformers import Wav2Vec2Config, Wav2Vec2FeatureExtractor, Wav2Vec2ForSequenceClassification

from hf_mtkd.models import LogMelCNNConfig, LogMelCNNForAudioClassification, LogMelFeatureExtractor
from hf_mtkd.models.early_exit import EarlyExitAudioConfig, EarlyExitForAudioClassification

SAMPLING_RATE = 16000
#: The compact student must be at least this many times faster than wav2vec2-base (issue target).
TARGET_SPEEDUP = 20.0


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--output", required=True, help="Where to write the JSON results.")
    parser.add_argument("--clip-seconds", type=float, default=4.0, help="Length of the scored clip.")
    parser.add_argument("--rounds", type=int, default=5, help="Timed rounds (after one warm-up round).")
    parser.add_argument("--exit-layers", type=int, nargs="+", default=[3, 8, 10])
    parser.add_argument("--num-labels", type=int, default=4)
    parser.add_argument("--threads", type=int, default=1, help="torch threads (the target is for one).")
    return parser.parse_args(argv)


def parameters(model) -> int:
    return sum(p.numel() for p in model.parameters())


def build_probes(args) -> tuple[dict, dict]:
    """{name: callable scoring the clip once}, {name: parameter count}."""
    torch.manual_seed(0)
    waveform = (
        np.random.default_rng(0).standard_normal(int(SAMPLING_RATE * args.clip_seconds)).astype(np.float32) * 0.1
    )
    backbone = dict(layerdrop=0.0, num_labels=args.num_labels)  # wav2vec2-base shapes are Wav2Vec2Config's defaults
    w2v_extractor = Wav2Vec2FeatureExtractor(do_normalize=True, return_attention_mask=False)
    wav2vec2 = Wav2Vec2ForSequenceClassification(Wav2Vec2Config(**backbone)).eval()
    early_exit = EarlyExitForAudioClassification(
        EarlyExitAudioConfig(backbone_config=Wav2Vec2Config(layerdrop=0.0), exit_layers=args.exit_layers,
                             num_labels=args.num_labels)
    ).eval()
    compact_extractor = LogMelFeatureExtractor()
    compact = LogMelCNNForAudioClassification(LogMelCNNConfig(num_labels=args.num_labels)).eval()

    def w2v_inputs():
        return w2v_extractor(waveform, sampling_rate=SAMPLING_RATE, return_tensors="pt")["input_values"]

    probes = {"wav2vec2-base": lambda: wav2vec2(w2v_inputs())}
    for layer in args.exit_layers:
        probes[f"self-distillation exit {layer}"] = lambda layer=layer: early_exit(w2v_inputs(), exit_layer=layer)
    probes["self-distillation full (12 layers)"] = lambda: early_exit(w2v_inputs(), output_exits=False)
    probes["compact log-mel CNN student"] = lambda: compact(
        **compact_extractor(waveform, sampling_rate=SAMPLING_RATE, return_tensors="pt"))
    sizes = {"wav2vec2-base": parameters(wav2vec2), "compact log-mel CNN student": parameters(compact)}
    for name in probes:
        if name.startswith("self-distillation"):
            sizes[name] = parameters(early_exit)  # the exported exit model is smaller; the timed model is whole
    return probes, sizes


@torch.inference_mode()
def time_probes(probes: dict, rounds: int) -> dict[str, list[float]]:
    """CPU seconds per timed round for every probe (one warm-up round first, rounds interleaved)."""
    times = {name: [] for name in probes}
    for round_index in range(rounds + 1):
        for name, probe in probes.items():
            start = time.process_time()
            probe()
            if round_index:
                times[name].append(time.process_time() - start)
    return times


def main(argv=None):
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    probes, sizes = build_probes(args)
    times = time_probes(probes, args.rounds)
    best = {name: min(values) for name, values in times.items()}
    reference = best["wav2vec2-base"]
    rows = [{
        "model": name, "parameters": sizes[name], "cpu_seconds": best[name],
        "real_time_factor": args.clip_seconds / best[name], "speedup_over_wav2vec2_base": reference / best[name],
    } for name in probes]
    compact = next(row for row in rows if row["model"] == "compact log-mel CNN student")
    report = {
        "config": {"clip_seconds": args.clip_seconds, "rounds": args.rounds, "threads": args.threads,
                   "statistic": "min", "clock": "cpu", "exit_layers": args.exit_layers},
        "rows": rows, "times": times,
        "target": {"compact_speedup_at_least": TARGET_SPEEDUP,
                   "met": compact["speedup_over_wav2vec2_base"] >= TARGET_SPEEDUP},
    }
    print(markdown(report))
    with open(args.output, "w") as handle:
        json.dump(report, handle, indent=2)


def markdown(report: dict) -> str:
    config = report["config"]
    lines = [
        f"Real-time factor: one {config['clip_seconds']:g} s clip, batch of one, {config['threads']} torch thread, "
        f"CPU time, best of {config['rounds']} interleaved rounds (feature extraction included).",
        "",
        "| model | parameters | CPU time per clip | x real time | speed / wav2vec2-base |",
        "|---|---:|---:|---:|---:|",
    ]
    for row in report["rows"]:
        lines.append(f"| {row['model']} | {row['parameters'] / 1e6:.2f} M | {row['cpu_seconds'] * 1e3:.0f} ms "
                     f"| {row['real_time_factor']:.1f} | {row['speedup_over_wav2vec2_base']:.2f} |")
    target = report["target"]
    lines += ["", f"Target: compact student >= {target['compact_speedup_at_least']:g} x wav2vec2-base: "
              + ("met." if target["met"] else "**not met**.")]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
