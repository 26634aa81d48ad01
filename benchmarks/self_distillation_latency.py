"""Latency of early exits and the training-step cost of self-distillation (SPEC section 2).

On a wav2vec2-base-sized model (random init: only shapes matter) with exits after layers {3, 8, 10}:

1. Inference latency of every exit against the full model, next to the ratio expected if exit k ran exactly
   the feature encoder (everything before layer 1: conv feature encoder, projection, positional conv) and k of
   the 12 transformer layers: (t_fe + k * t_layers / 12) / (t_fe + t_layers), with t_fe and t_layers
   measured in the same run. All timings are interleaved repeat by repeat; the ratios use the minimum over the
   repeats by default (best of n: on a shared machine other processes only ever add time), medians are kept too.
2. One training step (forward, loss, backward, AdamW step) of self-distillation with three exits against plain
   fine-tuning of `Wav2Vec2ForSequenceClassification` on the same backbone config and batch.

    python benchmarks/self_distillation_latency.py --output self_distillation_latency.json

prints a markdown table and writes everything as JSON to --output.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import time

import torch
from transformers import Wav2Vec2Config, Wav2Vec2ForSequenceClassification

from hf_mtkd.self_distillation import (
    EarlyExitAudioConfig,
    EarlyExitForAudioClassification,
    SelfDistillationConfig,
    self_distillation_loss,
)
from hf_mtkd.self_distillation.modeling import _EncoderState


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--output", required=True, help="Where to write the JSON results.")
    parser.add_argument("--exit-layers", type=int, nargs="+", default=[3, 8, 10])
    parser.add_argument("--exit-block", default="none", choices=["none", "cnn", "lstm", "gru"])
    parser.add_argument("--clip-seconds", type=float, default=2.0, help="Length of the inference clips.")
    parser.add_argument("--batch-size", type=int, default=1, help="Inference batch size.")
    parser.add_argument("--repeats", type=int, default=15, help="Timed inference repeats (after warm-up).")
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--train-steps", type=int, default=4, help="Timed training steps per method (after one warm-up).")
    parser.add_argument("--train-batch-size", type=int, default=2)
    parser.add_argument("--train-clip-seconds", type=float, default=1.0)
    parser.add_argument("--num-labels", type=int, default=7, help="DEMoS has 7 classes.")
    parser.add_argument("--threads", type=int, default=None, help="torch.set_num_threads (default: torch's).")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--tolerance", type=float, default=0.10, help="Allowed relative gap to the expected ratio.")
    parser.add_argument(
        "--statistic",
        default="min",
        choices=["min", "median"],
        help="Summary of the repeats used for the ratios: min (best of n, robust to other processes on a shared "
        "machine) or median.",
    )
    return parser.parse_args(argv)


def base_config(**overrides) -> Wav2Vec2Config:
    """wav2vec2-base shapes (12 layers, hidden 768, 7 conv layers); no LayerDrop so timings are comparable."""
    return Wav2Vec2Config(layerdrop=0.0, **overrides)


def sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timed(fn, device) -> float:
    sync(device)
    start = time.perf_counter()
    fn()
    sync(device)
    return time.perf_counter() - start


@torch.no_grad()
def inference_latency(model, args, device) -> dict:
    samples = int(16000 * args.clip_seconds)
    inputs = torch.randn(args.batch_size, samples, device=device)
    embedded = model._embed(inputs, None)

    def run_layers():
        state = _EncoderState(embedded.hidden, embedded.frame_mask, embedded.layer_mask)
        for index in range(model.num_hidden_layers):
            state = model._run_layer(state, index)

    probes = {"feature_encoder": lambda: model._embed(inputs, None), "all_layers": run_layers}
    for layer in model.config.exit_layers:
        probes[f"exit_{layer}"] = lambda layer=layer: model(inputs, exit_layer=layer)
    probes["full"] = lambda: model(inputs, output_exits=False)
    probes["full_with_exits"] = lambda: model(inputs, output_exits=True)
    times = {name: [] for name in probes}
    for step in range(args.warmup + args.repeats):
        for name, fn in probes.items():
            seconds = timed(fn, device)
            if step >= args.warmup:
                times[name].append(seconds)
    return times


def training_steps(args, device, summarize) -> dict:
    """Seconds of one optimizer step: self-distillation (3 exits) vs plain fine-tuning."""
    torch.manual_seed(0)
    config = base_config()
    sd_model = EarlyExitForAudioClassification(
        EarlyExitAudioConfig(
            backbone_config=config, exit_layers=args.exit_layers, exit_block=args.exit_block, num_labels=args.num_labels
        )
    ).to(device)
    ft_model = Wav2Vec2ForSequenceClassification(base_config(num_labels=args.num_labels)).to(device)
    for model in (sd_model, ft_model):
        model.freeze_feature_encoder()  # as the papers (and hf_mtkd's default) do
        model.train()
    sd_args = SelfDistillationConfig(output_dir="unused", report_to=[])
    optimizers = {
        "self_distillation": torch.optim.AdamW([p for p in sd_model.parameters() if p.requires_grad], lr=3e-5),
        "fine_tuning": torch.optim.AdamW([p for p in ft_model.parameters() if p.requires_grad], lr=3e-5),
    }
    samples = int(16000 * args.train_clip_seconds)
    inputs = torch.randn(args.train_batch_size, samples, device=device)
    labels = torch.randint(0, args.num_labels, (args.train_batch_size,), device=device)

    def sd_step():
        out = sd_model(inputs, output_exits=True)
        loss, _ = self_distillation_loss(
            out.logits, out.exit_logits, labels, out.pooled_output, out.exit_pooled_outputs,
            gamma=sd_args.gamma, alpha=sd_args.alpha, beta=sd_args.beta, similarity=sd_args.similarity,
            temperature=sd_args.kd_temperature, detach_deep_target=sd_args.detach_deep_target,
        )
        loss.backward()
        optimizers["self_distillation"].step()
        optimizers["self_distillation"].zero_grad(set_to_none=True)

    def ft_step():
        ft_model(inputs, labels=labels).loss.backward()
        optimizers["fine_tuning"].step()
        optimizers["fine_tuning"].zero_grad(set_to_none=True)

    steps = {"self_distillation": sd_step, "fine_tuning": ft_step}
    times = {name: [] for name in steps}
    for step in range(1 + args.train_steps):
        for name, fn in steps.items():
            seconds = timed(fn, device)
            if step >= 1:
                times[name].append(seconds)
    summary = {name: summarize(values) for name, values in times.items()}
    return {
        "seconds_per_step": summary,
        "median_seconds_per_step": {name: statistics.median(values) for name, values in times.items()},
        "overhead": summary["self_distillation"] / summary["fine_tuning"] - 1.0,
        "trainable_parameters": {
            "self_distillation": sum(p.numel() for p in sd_model.parameters() if p.requires_grad),
            "fine_tuning": sum(p.numel() for p in ft_model.parameters() if p.requires_grad),
        },
        "raw": times,
    }


def main(argv=None):
    args = parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    torch.manual_seed(0)
    model = EarlyExitForAudioClassification(
        EarlyExitAudioConfig(
            backbone_config=base_config(), exit_layers=args.exit_layers, exit_block=args.exit_block,
            num_labels=args.num_labels,
        )
    ).to(device).eval()
    n_layers = model.num_hidden_layers

    raw = inference_latency(model, args, device)
    summarize = min if args.statistic == "min" else statistics.median
    timings = {name: summarize(values) for name, values in raw.items()}
    t_fe, t_layers, t_full = timings["feature_encoder"], timings["all_layers"], timings["full"]
    rows = []
    for layer in [*args.exit_layers, n_layers]:
        seconds = t_full if layer == n_layers else timings[f"exit_{layer}"]
        measured = seconds / t_full
        expected = (t_fe + layer * t_layers / n_layers) / (t_fe + t_layers)
        rows.append(
            {
                "head": "deepest" if layer == n_layers else f"exit {layer}",
                "layer": layer,
                "parameters": model.num_parameters_at_exit(layer),
                "latency_s": seconds,
                "ratio_to_full": measured,
                "expected_ratio": expected,
                "relative_gap": measured / expected - 1.0,
                "within_tolerance": abs(measured / expected - 1.0) <= args.tolerance,
            }
        )
    train = training_steps(args, device, summarize)

    result = {
        "setup": {
            "backbone": "wav2vec2-base shapes (random init), layerdrop 0",
            "exit_layers": args.exit_layers,
            "exit_block": args.exit_block,
            "device": str(device),
            "threads": torch.get_num_threads(),
            "inference": {"batch_size": args.batch_size, "clip_seconds": args.clip_seconds, "repeats": args.repeats},
            "training": {
                "batch_size": args.train_batch_size,
                "clip_seconds": args.train_clip_seconds,
                "steps": args.train_steps,
                "feature_encoder": "frozen",
                "optimizer": "AdamW",
            },
            "torch": torch.__version__,
            "python": sys.version.split()[0],
            "machine": platform.machine(),
            "processor": platform.processor(),
        },
        "inference_s": {
            "statistic": args.statistic,
            "summary": timings,
            "median": {name: statistics.median(values) for name, values in raw.items()},
            "raw": raw,
        },
        "exits": rows,
        "training": train,
        "all_within_tolerance": all(row["within_tolerance"] for row in rows),
    }
    with open(args.output, "w", encoding="utf-8") as handle:
        json.dump(result, handle, indent=2)

    print(
        f"wav2vec2-base shapes, exits {args.exit_layers} (block {args.exit_block}), {device}, "
        f"{torch.get_num_threads()} threads; batch {args.batch_size} x {args.clip_seconds:g} s, "
        f"{args.statistic} of {args.repeats} interleaved repeats\n"
    )
    print(f"feature encoder {t_fe * 1e3:.1f} ms, 12 layers {t_layers * 1e3:.1f} ms, full model {t_full * 1e3:.1f} ms "
          f"(with exit heads: {timings['full_with_exits'] * 1e3:.1f} ms)\n")
    print("| head | parameters | latency (ms) | latency / full | expected (FE + k layers) / (FE + 12 layers) | gap |")
    print("| --- | ---: | ---: | ---: | ---: | ---: |")
    for row in rows:
        print(
            f"| {row['head']} | {row['parameters'] / 1e6:.1f} M | {row['latency_s'] * 1e3:.1f} | "
            f"{row['ratio_to_full']:.3f} | {row['expected_ratio']:.3f} | {row['relative_gap']:+.1%} |"
        )
    sd, ft = train["seconds_per_step"]["self_distillation"], train["seconds_per_step"]["fine_tuning"]
    print(
        f"\nTraining step (batch {args.train_batch_size} x {args.train_clip_seconds:g} s, {args.statistic} of "
        f"{args.train_steps}): self-distillation with {len(args.exit_layers)} exits {sd:.3f} s, plain fine-tuning "
        f"{ft:.3f} s, overhead {train['overhead']:+.1%}"
    )
    print(f"\nAll exits within {args.tolerance:.0%} of the expected ratio: {result['all_within_tolerance']}")
    return result


if __name__ == "__main__":
    main()
