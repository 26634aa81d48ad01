"""Latency of early exits and the training-step cost of self-distillation (SPEC section 2).

On a wav2vec2-base-sized model (random init: only shapes matter) with exits after layers {3, 8, 10}:

1. Inference time of every exit against the full model, next to the ratio expected if exit k ran exactly the
   feature encoder (everything before layer 1: conv feature encoder, projection, positional conv) and k of the
   12 transformer layers: (t_fe + k * t_layers / 12) / (t_fe + t_layers), with t_fe and t_layers measured in the
   same run. Every probe is timed once per repeat, interleaved, so drifts in machine load hit all of them alike.
2. One training step (forward, loss, backward, AdamW step) of self-distillation with three exits against plain
   fine-tuning of `Wav2Vec2ForSequenceClassification` on the same backbone config and batch.

Both wall-clock and CPU time (`time.process_time`) are recorded. `--clock` picks the one the ratios use: wall
time on a quiet machine; CPU time on a shared one, where other processes stretch wall time at random but not the
work done (with one thread, CPU time is the wall time the same work takes on an idle core). `--statistic` picks
the summary over repeats (min = best of n, or median).

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

from hf_mtkd.self_distillation import SelfDistillationConfig, self_distillation_loss
from hf_mtkd.models.early_exit import EarlyExitAudioConfig, EarlyExitForAudioClassification
from hf_mtkd.models.early_exit.modeling_early_exit import _EncoderState

CLOCKS = ("wall", "cpu")


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--output", required=True, help="Where to write the JSON results.")
    parser.add_argument("--exit-layers", type=int, nargs="+", default=[3, 8, 10])
    parser.add_argument("--exit-block", default="none", choices=["none", "cnn", "lstm", "gru"])
    parser.add_argument("--clip-seconds", type=float, default=2.0, help="Length of the inference clips.")
    parser.add_argument("--batch-size", type=int, default=1, help="Inference batch size.")
    parser.add_argument("--repeats", type=int, default=15, help="Timed inference repeats (after warm-up).")
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--train-steps", type=int, default=4, help="Timed training steps per method (after one "
                                                                   "warm-up).")
    parser.add_argument("--train-batch-size", type=int, default=2)
    parser.add_argument("--train-clip-seconds", type=float, default=1.0)
    parser.add_argument("--num-labels", type=int, default=7, help="DEMoS has 7 classes.")
    parser.add_argument("--threads", type=int, default=None, help="torch.set_num_threads (default: torch's).")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--clock", default="wall", choices=CLOCKS, help="Clock the ratios use (see the module doc).")
    parser.add_argument("--statistic", default="median", choices=["min", "median"], help="Summary over repeats.")
    parser.add_argument("--tolerance", type=float, default=0.10, help="Allowed relative gap to the expected ratio.")
    args = parser.parse_args(argv)
    if args.clock == "cpu" and args.device != "cpu":
        parser.error("--clock cpu measures host CPU time; use --clock wall on an accelerator.")
    return args


def base_config(**overrides) -> Wav2Vec2Config:
    """wav2vec2-base shapes (12 layers, hidden 768, 7 conv layers); no LayerDrop so timings are comparable."""
    return Wav2Vec2Config(layerdrop=0.0, **overrides)


def timed(fn, device) -> dict[str, float]:
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    wall, cpu = time.perf_counter(), time.process_time()
    fn()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return {"wall": time.perf_counter() - wall, "cpu": time.process_time() - cpu}


def run_interleaved(probes: dict, rounds: int, warmup: int, device) -> dict[str, dict[str, list[float]]]:
    """{probe: {clock: [seconds per timed round]}}; each round runs every probe once, in turn."""
    times = {name: {clock: [] for clock in CLOCKS} for name in probes}
    for step in range(warmup + rounds):
        for name, fn in probes.items():
            measured = timed(fn, device)
            if step >= warmup:
                for clock in CLOCKS:
                    times[name][clock].append(measured[clock])
    return times


def summarize(times: dict, statistic: str) -> dict[str, dict[str, float]]:
    reduce = min if statistic == "min" else statistics.median
    return {name: {clock: reduce(values) for clock, values in clocks.items()} for name, clocks in times.items()}


@torch.no_grad()
def inference_times(model, args, device) -> dict:
    inputs = torch.randn(args.batch_size, int(16000 * args.clip_seconds), device=device)
    embedded = model._embed(inputs, None)

    def run_layers():  # the 12 transformer layers alone, on the feature encoder's output
        state = _EncoderState(embedded.hidden, embedded.frame_mask, embedded.layer_mask)
        for index in range(model.num_hidden_layers):
            state = model._run_layer(state, index)

    probes = {"feature_encoder": lambda: model._embed(inputs, None), "all_layers": run_layers}
    for layer in model.config.exit_layers:
        probes[f"exit_{layer}"] = lambda layer=layer: model(inputs, exit_layer=layer)
    probes["full"] = lambda: model(inputs, output_exits=False)
    probes["full_with_exit_heads"] = lambda: model(inputs, output_exits=True)
    return run_interleaved(probes, args.repeats, args.warmup, device)


def training_times(args, device) -> tuple[dict, dict]:
    """Times of one optimizer step: self-distillation (with its exits) vs plain fine-tuning."""
    torch.manual_seed(0)
    sd_model = EarlyExitForAudioClassification(
        EarlyExitAudioConfig(
            backbone_config=base_config(),
            exit_layers=args.exit_layers,
            exit_block=args.exit_block,
            num_labels=args.num_labels,
        )
    ).to(device)
    ft_model = Wav2Vec2ForSequenceClassification(base_config(num_labels=args.num_labels)).to(device)
    for model in (sd_model, ft_model):
        model.freeze_feature_encoder()  # as the papers (and hf_mtkd's default) do
        model.train()
    loss_args = SelfDistillationConfig(output_dir="unused", report_to=[])  # the paper's loss settings
    sd_optimizer = torch.optim.AdamW([p for p in sd_model.parameters() if p.requires_grad], lr=3e-5)
    ft_optimizer = torch.optim.AdamW([p for p in ft_model.parameters() if p.requires_grad], lr=3e-5)
    inputs = torch.randn(args.train_batch_size, int(16000 * args.train_clip_seconds), device=device)
    labels = torch.randint(0, args.num_labels, (args.train_batch_size,), device=device)

    def sd_step():
        out = sd_model(inputs, output_exits=True)
        loss, _ = self_distillation_loss(
            out.logits,
            out.exit_logits,
            labels,
            out.pooled_output,
            out.exit_pooled_outputs,
            gamma=loss_args.gamma,
            alpha=loss_args.alpha,
            beta=loss_args.beta,
            similarity=loss_args.similarity,
            temperature=loss_args.kd_temperature,
            detach_deep_target=loss_args.detach_deep_target,
        )
        loss.backward()
        sd_optimizer.step()
        sd_optimizer.zero_grad(set_to_none=True)

    def ft_step():
        ft_model(inputs, labels=labels).loss.backward()
        ft_optimizer.step()
        ft_optimizer.zero_grad(set_to_none=True)

    times = run_interleaved({"self_distillation": sd_step, "fine_tuning": ft_step}, args.train_steps, 1, device)
    trainable = {
        "self_distillation": sum(p.numel() for p in sd_model.parameters() if p.requires_grad),
        "fine_tuning": sum(p.numel() for p in ft_model.parameters() if p.requires_grad),
    }
    return times, trainable


def main(argv=None):
    args = parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    torch.manual_seed(0)
    model = EarlyExitForAudioClassification(
        EarlyExitAudioConfig(
            backbone_config=base_config(),
            exit_layers=args.exit_layers,
            exit_block=args.exit_block,
            num_labels=args.num_labels,
        )
    ).to(device).eval()
    n_layers = model.num_hidden_layers

    raw = inference_times(model, args, device)
    summary = summarize(raw, args.statistic)
    pick = {name: clocks[args.clock] for name, clocks in summary.items()}
    t_fe, t_layers, t_full = pick["feature_encoder"], pick["all_layers"], pick["full"]
    rows = []
    for layer in [*args.exit_layers, n_layers]:
        name = "full" if layer == n_layers else f"exit_{layer}"
        measured = pick[name] / t_full
        expected = (t_fe + layer * t_layers / n_layers) / (t_fe + t_layers)
        rows.append(
            {
                "head": "deepest" if layer == n_layers else f"exit {layer}",
                "layer": layer,
                "parameters": model.num_parameters_at_exit(layer),
                "wall_s": summary[name]["wall"],
                "cpu_s": summary[name]["cpu"],
                "ratio_to_full": measured,
                "expected_ratio": expected,
                "relative_gap": measured / expected - 1.0,
                "within_tolerance": abs(measured / expected - 1.0) <= args.tolerance,
            }
        )
    train_raw, trainable = training_times(args, device)
    train_summary = summarize(train_raw, args.statistic)
    step = {name: clocks[args.clock] for name, clocks in train_summary.items()}
    overhead = step["self_distillation"] / step["fine_tuning"] - 1.0

    result = {
        "setup": {
            "backbone": "wav2vec2-base shapes (random init), layerdrop 0",
            "exit_layers": args.exit_layers,
            "exit_block": args.exit_block,
            "device": str(device),
            "threads": torch.get_num_threads(),
            "clock": args.clock,
            "statistic": args.statistic,
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
        },
        "inference": {"summary_s": summary, "raw_s": raw},
        "exits": rows,
        "all_within_tolerance": all(row["within_tolerance"] for row in rows),
        "training": {
            "summary_s": train_summary,
            "raw_s": train_raw,
            "overhead": overhead,
            "trainable_parameters": trainable,
        },
    }
    with open(args.output, "w", encoding="utf-8") as handle:
        json.dump(result, handle, indent=2)

    print(
        f"wav2vec2-base shapes, exits {args.exit_layers} (block {args.exit_block}), {device}, "
        f"{torch.get_num_threads()} thread(s); batch {args.batch_size} x {args.clip_seconds:g} s; "
        f"{args.statistic} of {args.repeats} interleaved repeats; ratios on {args.clock} time\n"
    )
    print(
        f"feature encoder {t_fe * 1e3:.1f} ms, 12 layers {t_layers * 1e3:.1f} ms, full model {t_full * 1e3:.1f} ms, "
        f"full model computing the exit heads too {pick['full_with_exit_heads'] * 1e3:.1f} ms ({args.clock})\n"
    )
    print("| head | parameters | wall (ms) | CPU (ms) | time / full | expected (FE + k layers) / (FE + 12 layers) | "
          "gap |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    for row in rows:
        print(
            f"| {row['head']} | {row['parameters'] / 1e6:.1f} M | {row['wall_s'] * 1e3:.1f} | "
            f"{row['cpu_s'] * 1e3:.1f} | "
            f"{row['ratio_to_full']:.3f} | {row['expected_ratio']:.3f} | {row['relative_gap']:+.1%} |"
        )
    print(
        f"\nTraining step (batch {args.train_batch_size} x {args.train_clip_seconds:g} s, {args.statistic} of "
        f"{args.train_steps}, {args.clock} time): self-distillation with {len(args.exit_layers)} exits "
        f"(block {args.exit_block}) {step['self_distillation']:.3f} s, plain fine-tuning {step['fine_tuning']:.3f} s, "
        f"overhead {overhead:+.1%}"
    )
    print(f"\nAll exits within {args.tolerance:.0%} of the expected ratio: {result['all_within_tolerance']}")
    return result


if __name__ == "__main__":
    main()
