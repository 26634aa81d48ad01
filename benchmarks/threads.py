"""Training steps per second at 1 and 2 torch threads, on a quiet machine and beside a busy process: the cells that
`torch_num_threads: auto` (hf_mtkd.utils.threads) is judged on.

Models (random init, only shapes matter), one training step = forward + backward + AdamW step on a batch of 8 x 3 s
(compact student) or 2 x 1 s (wav2vec2-base shapes):

  compact student   LogMelCNNForAudioClassification at its defaults (0.14 M parameters), on log-mel features
  wav2vec2-base     Wav2Vec2ForSequenceClassification at wav2vec2-base shapes (94 M parameters)

"busy": the benchmark starts one process that spins on a core for the duration of the cell, and stops it after;
"quiet": nothing of the benchmark's own runs beside it (what else runs on the machine is recorded as the load
average). Wall-clock steps per second: thread counts trade wall time, not CPU time. Each cell is timed over
`--seconds` after one warm-up step; the `auto` choice for each model is the one `resolve_num_threads` makes.
Target: `auto` within 1.2x of the best thread count in all four cells.

    python benchmarks/threads.py --output benchmarks/results/threads-cpu-2core.json
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import sys
import time

import numpy as np
import torch

SAMPLING_RATE = 16000
TARGET = 1.2


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--output", required=True)
    parser.add_argument("--seconds", type=float, default=8.0, help="timed seconds per cell")
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--models", nargs="+", default=["compact student", "wav2vec2-base"])
    return parser.parse_args(argv)


def _spin(stop):  # the busy neighbour: one core's worth of work until told to stop
    x = 0
    while not stop.is_set():
        for _ in range(100_000):
            x += 1


def build(name: str):
    """(model, inputs, labels) for one training step of `name`."""
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    if name == "compact student":
        from hf_mtkd.models import LogMelCNNConfig, LogMelCNNForAudioClassification, LogMelFeatureExtractor

        extractor = LogMelFeatureExtractor()
        waves = [rng.standard_normal(3 * SAMPLING_RATE).astype(np.float32) * 0.1 for _ in range(8)]
        inputs = dict(extractor(waves, sampling_rate=SAMPLING_RATE, return_tensors="pt"))
        model = LogMelCNNForAudioClassification(LogMelCNNConfig(num_labels=4))
        labels = torch.tensor([0, 1, 2, 3] * 2)
    elif name == "wav2vec2-base":
        from transformers import Wav2Vec2Config, Wav2Vec2ForSequenceClassification

        inputs = {"input_values": torch.from_numpy(rng.standard_normal((2, SAMPLING_RATE)).astype(np.float32))}
        model = Wav2Vec2ForSequenceClassification(Wav2Vec2Config(num_labels=4, layerdrop=0.0))
        labels = torch.tensor([0, 1])
    else:
        raise ValueError(f"unknown model {name!r}")
    return model.train(), inputs, labels


def steps_per_second(name: str, threads: int, seconds: float) -> float:
    torch.set_num_threads(threads)
    model, inputs, labels = build(name)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)

    def step():
        loss = model(**inputs, labels=labels).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()

    step()  # warm-up: allocations, first-call dispatch
    count, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds or count < 2:
        step()
        count += 1
    return count / (time.perf_counter() - start)


def main(argv=None) -> int:
    args = parse_args(argv)
    from hf_mtkd.utils.provenance import machine_provenance
    from hf_mtkd.utils.threads import idle_cores, resolve_num_threads

    cells, starting_threads, idle = [], torch.get_num_threads(), {}
    for condition in ("quiet", "busy"):
        stop, neighbour = multiprocessing.Event(), None
        if condition == "busy":
            neighbour = multiprocessing.Process(target=_spin, args=(stop,), daemon=True)
            neighbour.start()
            time.sleep(0.5)  # let it take its core before the idle cores are measured
        try:
            idle[condition] = idle_cores()  # what `auto` sees when a run starts in this condition
            for name in args.models:
                for threads in args.threads:
                    rate = steps_per_second(name, threads, args.seconds)
                    cells.append({"condition": condition, "model": name, "threads": threads, "steps_per_s": rate,
                                  "load_average": os.getloadavg()[0]})
                    print(f"{condition:5s} {name:16s} {threads} thread(s): {rate:.2f} steps/s", flush=True)
        finally:
            stop.set()
            if neighbour is not None:
                neighbour.join(timeout=10)
            torch.set_num_threads(starting_threads)
    verdicts = []
    for condition in ("quiet", "busy"):
        for name in args.models:
            rates = {
                c["threads"]: c["steps_per_s"] for c in cells if c["condition"] == condition and c["model"] == name
            }
            model, _, _ = build(name)
            auto = resolve_num_threads("auto", sum(p.numel() for p in model.parameters()), default=max(args.threads),
                                       idle=idle[condition])
            best = max(rates, key=rates.get)
            ratio = rates[best] / rates[auto]
            verdicts.append({"condition": condition, "model": name, "idle_cores": idle[condition],
                             "auto_threads": auto, "best_threads": best,
                             "best_over_auto": ratio, "within_target": ratio <= TARGET})
    report = {"machine": machine_provenance(), "seconds_per_cell": args.seconds, "cells": cells,
              "auto": verdicts, "target": f"auto within {TARGET}x of the best thread count in every cell",
              "all_within_target": all(v["within_target"] for v in verdicts)}
    with open(args.output, "w", encoding="utf-8") as handle:
        json.dump(report, handle, indent=2)
    print(
        "\n| condition | model | auto threads | best threads | best / auto | within 1.2x |\n|---|---|---|---|---|---|"
    )
    for v in verdicts:
        print(f"| {v['condition']} | {v['model']} | {v['auto_threads']} | {v['best_threads']} | "
              f"{v['best_over_auto']:.2f} | {'yes' if v['within_target'] else '**no**'} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
