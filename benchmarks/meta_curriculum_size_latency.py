"""Parameters and inference time per clip of the meta-curriculum teacher and student, as ratios (SPEC section 3).

Random-init models of the paper's shapes (only shapes matter): the teacher is HuBERT-large with a classification
head (`facebook/hubert-large-ls960-ft` fine-tuned); the student is the 4-layer inverted transformer (d_model 512,
8 heads, feed-forward 2048) on 326 frames x 1024 channels (IEMOCAP). Timed per clip (batch 1, `--clip-seconds`
of audio), interleaved round by round so that drifts in machine load hit every probe alike:

  teacher                   the teacher on the waveform
  student on features       the student alone on cached upstream features (what training and the paper's Table 7 count)
  export, HuBERT upstream   the exported waveform model: HuBERT-large-ll60k (frozen, last layer) + the student
  export, log-mel upstream  the exported waveform model with an 80-band log-mel filterbank (what the offline recipes
  use)

The paper's parameter ratio (Table 7: 11.92 M / 302.45 M) counts the student without its upstream; deploying the
student on waveforms also needs the upstream, which for HuBERT features is as large as the teacher.

    python benchmarks/meta_curriculum_size_latency.py --output meta_curriculum.json            # CPU, wall clock
    python benchmarks/meta_curriculum_size_latency.py --output mc.json --clock cpu --threads 1  # a shared CPU
    python benchmarks/meta_curriculum_size_latency.py --output mc.json --device cuda

prints a markdown table and writes everything as JSON to --output.
"""

from __future__ import annotations

import argparse
import json
import os
import sys

import torch
from transformers import HubertConfig, HubertForSequenceClassification, HubertModel

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from self_distillation_latency import CLOCKS, run_interleaved, summarize  # noqa: E402  (the same clock as the other benchmarks)

from hf_mtkd.models.inverted_transformer import (
    InvertedTransformerConfig,
    InvertedTransformerForFeatureClassification,
    WaveformStudentConfig,
    WaveformStudentForAudioClassification,
)
from hf_mtkd.models.inverted_transformer.upstream import build_upstream  # noqa: E402

RATE = 16000
HUBERT_LARGE = {"hidden_size": 1024, "num_hidden_layers": 24, "num_attention_heads": 16, "intermediate_size": 4096,
                "feat_extract_norm": "layer", "do_stable_layer_norm": True, "conv_bias": True, "layerdrop": 0.0}
PAPER_STUDENT = {"d_model": 512, "num_hidden_layers": 4, "num_attention_heads": 8, "intermediate_size": 2048}
# --tiny: shapes small enough for a test run.
TINY_HUBERT = {
    "hidden_size": 16,
    "num_hidden_layers": 2,
    "num_attention_heads": 2,
    "intermediate_size": 32,
    "conv_dim": [16, 16, 16],
    "conv_stride": [5, 8, 8],
    "conv_kernel": [10, 8, 8],
    "num_conv_pos_embeddings": 16,
    "num_conv_pos_embedding_groups": 2,
    "feat_extract_norm": "layer",
    "do_stable_layer_norm": True,
    "layerdrop": 0.0,
}
TINY_STUDENT = {"d_model": 8, "num_hidden_layers": 1, "num_attention_heads": 2, "intermediate_size": 16,
                "classifier_hidden_size": 8, "contrastive_dim": 4}


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--output", required=True, help="Where to write the JSON results.")
    parser.add_argument("--clip-seconds", type=float, default=6.525, help="Clip length (6.525 s = 326 HuBERT frames).")
    parser.add_argument("--num-labels", type=int, default=4)
    parser.add_argument("--repeats", type=int, default=5, help="Timed rounds (after the warm-up rounds).")
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--threads", type=int, default=None, help="torch.set_num_threads (default: torch's).")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--clock", default="wall", choices=CLOCKS, help="wall, or cpu (CPU time: a shared machine).")
    parser.add_argument("--statistic", default="median", choices=["min", "median"], help="Summary over rounds.")
    parser.add_argument("--tiny", action="store_true", help="Tiny shapes (a smoke test of the script).")
    args = parser.parse_args(argv)
    if args.clock == "cpu" and args.device != "cpu":
        parser.error("--clock cpu measures host CPU time; use --clock wall on an accelerator.")
    return args


def parameters(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def build(args, device):
    hubert = TINY_HUBERT if args.tiny else HUBERT_LARGE
    student_shape = TINY_STUDENT if args.tiny else PAPER_STUDENT
    labels = {"num_labels": args.num_labels}
    teacher = HubertForSequenceClassification(HubertConfig(**hubert, **labels))
    samples = int(args.clip_seconds * RATE)
    upstream_model = HubertModel(HubertConfig(**hubert))
    hubert_frames = int(upstream_model._get_feat_extract_output_lengths(torch.tensor(samples)))
    hubert_config = WaveformStudentConfig(upstream_config=upstream_model.config.to_dict(), upstream_layer=-1,
                                          max_frames=hubert_frames, max_input_samples=samples)
    student = InvertedTransformerForFeatureClassification(InvertedTransformerConfig(
        **student_shape, num_frames=hubert_frames, num_channels=hubert_config.feature_width, **labels))
    export_hubert = WaveformStudentForAudioClassification.from_parts(build_upstream(hubert_config, upstream_model),
                                                                     hubert_config, student)
    mel_config = WaveformStudentConfig(n_mels=80, max_frames=1 + samples // 160, max_input_samples=samples)
    mel_student = InvertedTransformerForFeatureClassification(InvertedTransformerConfig(
        **student_shape, num_frames=mel_config.max_frames, num_channels=80, **labels))
    export_mel = WaveformStudentForAudioClassification.from_parts(build_upstream(mel_config), mel_config, mel_student)
    models = {"teacher": teacher, "student": student, "export_hubert": export_hubert, "export_mel": export_mel}
    for model in models.values():
        model.to(device).eval()
    return models, hubert_frames, samples


def main(argv=None) -> dict:
    args = parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    torch.manual_seed(0)
    models, frames, samples = build(args, device)
    waveform = torch.randn(1, samples, device=device)
    features = torch.randn(1, frames, models["student"].config.num_channels, device=device)
    with torch.no_grad():
        probes = {
            "teacher": lambda: models["teacher"](waveform),
            "student": lambda: models["student"](features),
            "export_hubert": lambda: models["export_hubert"](waveform),
            "export_mel": lambda: models["export_mel"](waveform),
        }
        raw = run_interleaved(probes, args.repeats, args.warmup, device)
    summary = summarize(raw, args.statistic)
    seconds = {name: clocks[args.clock] for name, clocks in summary.items()}
    counts = {
        "teacher": parameters(models["teacher"]),
        "student": parameters(models["student"]),
        "export_hubert": parameters(models["export_hubert"]),
        "export_mel": parameters(models["export_mel"]),
    }
    rows = [
        {
            "model": name,
            "parameters": counts[name],
            "seconds_per_clip": seconds[name],
            "parameters_over_teacher": counts[name] / counts["teacher"],
            "time_over_teacher": seconds[name] / seconds["teacher"],
        }
        for name in ("teacher", "student", "export_hubert", "export_mel")
    ]
    result = {
        "setup": {"teacher": "HuBERT-large + classification head" if not args.tiny else "tiny HuBERT",
                  "student": "inverted transformer, 4 layers, d_model 512" if not args.tiny else "tiny",
                  "clip_seconds": args.clip_seconds, "frames": frames, "device": str(device),
                  "threads": torch.get_num_threads(), "clock": args.clock, "statistic": args.statistic,
                  "repeats": args.repeats, "random_init": True},
        "rows": rows,
        "raw_seconds": raw,
    }
    with open(args.output, "w") as handle:
        json.dump(result, handle, indent=2)
    print(markdown(result))
    return result


LABELS = {
    "teacher": "teacher (waveform in)",
    "student": "student on cached features",
    "export_hubert": "export: HuBERT-large upstream + student",
    "export_mel": "export: log-mel upstream + student",
}


def markdown(result: dict) -> str:
    setup = result["setup"]
    lines = [
        f"Meta-curriculum KD: {setup['teacher']} vs {setup['student']}; one {setup['clip_seconds']:g} s clip "
        f"({setup['frames']} frames), {setup['device']}, {setup['threads']} thread(s), {setup['statistic']} of "
        f"{setup['repeats']} rounds, {setup['clock']} time, random init.",
        "",
        "| model | parameters | / teacher | time per clip (ms) | / teacher |",
        "|---|---:|---:|---:|---:|",
    ]
    for row in result["rows"]:
        lines.append(f"| {LABELS[row['model']]} | {row['parameters'] / 1e6:.2f} M | "
                     f"{row['parameters_over_teacher']:.3f} "
                     f"| {row['seconds_per_clip'] * 1e3:.1f} | {row['time_over_teacher']:.3f} |")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
