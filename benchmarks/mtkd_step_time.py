"""MTKD step time and peak memory against plain fine-tuning, on wav2vec2-base-sized random-init models.

Each configuration runs in its own subprocess (so peak RSS is its own) and times
`trainer.training_step` (forward, backward) + optimizer step on the same batch:

  ft            plain fine-tuning (SERTrainer)
  mtkd_online   MTKD with N online float32 teachers
  mtkd_bf16     MTKD with N online bfloat16 teachers
  mtkd_cache    MTKD from cached teacher logits (no teacher runs)
  teacher_fwd   one teacher's forward pass alone (for the bound below)

Targets (issue: MTKD trainer):
  step(mtkd_online) / step(ft) <= 1 + N * fwd(teacher) / step(ft) + 10 %
  step(mtkd_cache) / step(ft)  <= 1.10
  peak(mtkd_bf16) <= peak(ft) + N * bytes(teacher in bf16) + 10 %

Usage: python benchmarks/mtkd_step_time.py [--teachers 3] [--batch 2] [--seconds 1.0] [--steps 3] [--output r.json]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time


def _model(seed: int):
    import torch
    from transformers import Wav2Vec2Config, Wav2Vec2ForSequenceClassification

    torch.manual_seed(seed)
    labels = ["angry", "happy", "neutral", "sad"]
    config = Wav2Vec2Config(  # wav2vec2-base shapes
        num_labels=4, id2label=dict(enumerate(labels)), label2id={l: i for i, l in enumerate(labels)},
        layerdrop=0.0, mask_time_prob=0.0,
    )
    return Wav2Vec2ForSequenceClassification(config)


def _trainer(kind: str, n_teachers: int, tmp: str):
    import torch
    from transformers import Wav2Vec2FeatureExtractor

    from hf_mtkd.multi_teacher.config import MultiTeacherDistillationConfig, TeacherSpec
    from hf_mtkd.multi_teacher.teachers import Teacher, freeze
    from hf_mtkd.multi_teacher.trainer import MultiTeacherDistillationTrainer
    from hf_mtkd.training import SERTrainer, SERTrainingArguments

    common = dict(output_dir=tmp, report_to="none", use_cpu=True, eval_strategy="no", save_strategy="no",
                  load_best_model_at_end=False, learning_rate=3e-5)
    student = _model(0)
    student.freeze_feature_encoder()
    if kind == "ft":
        return SERTrainer(model=student, args=SERTrainingArguments(**common)), []
    teachers_spec = [{"model": f"t{i}", "language": f"l{i}"} for i in range(n_teachers)]
    args = MultiTeacherDistillationConfig(**common, teachers=teachers_spec)
    teachers = []
    if kind in ("mtkd_online", "mtkd_bf16"):
        dtype = torch.bfloat16 if kind == "mtkd_bf16" else torch.float32
        fe = Wav2Vec2FeatureExtractor()
        for i in range(n_teachers):
            model = freeze(_model(i + 1).to(dtype))
            teachers.append(Teacher(TeacherSpec(model=f"t{i}", language=f"l{i}"), model, fe, torch.arange(4), True))
    trainer = MultiTeacherDistillationTrainer(model=student, args=args, teachers=teachers, languages=[f"l{i}" for i in range(n_teachers)])
    return trainer, teachers


def measure(kind: str, n_teachers: int, batch: int, seconds: float, steps: int, threads: int) -> dict:
    import torch

    torch.set_num_threads(threads)
    torch.manual_seed(0)
    inputs = {
        "input_values": torch.randn(batch, int(seconds * 16000)),
        "labels": torch.randint(0, 4, (batch,)),
        "language_id": torch.arange(batch) % max(n_teachers, 1),
    }
    with tempfile.TemporaryDirectory() as tmp:
        if kind == "teacher_fwd":
            teacher = _model(1).eval()
            times = []
            with torch.no_grad():
                teacher(input_values=inputs["input_values"])
                for _ in range(steps):
                    start = time.perf_counter()
                    teacher(input_values=inputs["input_values"])
                    times.append(time.perf_counter() - start)
            bf16_bytes = sum(p.numel() * 2 for p in teacher.parameters())
            return {"seconds": statistics.median(times), "teacher_bf16_bytes": bf16_bytes,
                    "peak_rss_bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024}
        trainer, _ = _trainer(kind, n_teachers, tmp)
        if kind == "mtkd_cache":
            inputs["teacher_logits"] = torch.randn(batch, n_teachers, 4)
        model = trainer.model
        model.train()
        trainer.current_gradient_accumulation_steps = 1  # set by Trainer.train(), which we bypass
        optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=3e-5)
        times = []
        for i in range(steps + 1):  # the first step warms up allocators and optimizer state
            start = time.perf_counter()
            trainer.training_step(model, dict(inputs))
            optimizer.step()
            optimizer.zero_grad()
            if i:
                times.append(time.perf_counter() - start)
        return {"seconds": statistics.median(times), "peak_rss_bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--teachers", type=int, default=3)
    parser.add_argument("--batch", type=int, default=2)
    parser.add_argument("--seconds", type=float, default=1.0)
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--output", default=None, help="JSON file for the results")
    parser.add_argument("--_one", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args._one:
        print(json.dumps(measure(args._one, args.teachers, args.batch, args.seconds, args.steps, args.threads)))
        return
    results = {}
    for kind in ("ft", "teacher_fwd", "mtkd_online", "mtkd_bf16", "mtkd_cache"):
        cmd = [sys.executable, __file__, "--_one", kind, "--teachers", str(args.teachers), "--batch", str(args.batch),
               "--seconds", str(args.seconds), "--steps", str(args.steps), "--threads", str(args.threads)]
        out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout.strip().splitlines()[-1]
        results[kind] = json.loads(out)
        print(f"{kind:<12} {results[kind]['seconds'] * 1e3:9.1f} ms   peak RSS {results[kind]['peak_rss_bytes'] / 2**30:.2f} GiB", flush=True)
    ft, fwd = results["ft"]["seconds"], results["teacher_fwd"]["seconds"]
    n = args.teachers
    bound = 1 + n * fwd / ft
    mem_bound = results["ft"]["peak_rss_bytes"] + n * results["teacher_fwd"]["teacher_bf16_bytes"]
    ratios = {
        "mtkd_online_over_ft": results["mtkd_online"]["seconds"] / ft,
        "mtkd_online_bound": bound,
        "mtkd_online_within_bound_plus_10pct": results["mtkd_online"]["seconds"] / ft <= bound * 1.10,
        "mtkd_bf16_over_ft": results["mtkd_bf16"]["seconds"] / ft,
        "mtkd_cache_over_ft": results["mtkd_cache"]["seconds"] / ft,
        "mtkd_cache_within_1_10": results["mtkd_cache"]["seconds"] / ft <= 1.10,
        "peak_bf16_over_bound": results["mtkd_bf16"]["peak_rss_bytes"] / mem_bound,
        "peak_bf16_within_bound_plus_10pct": results["mtkd_bf16"]["peak_rss_bytes"] <= mem_bound * 1.10,
    }
    report = {"config": vars(args), "machine": {"cpus": os.cpu_count(), "platform": sys.platform}, "results": results, "ratios": ratios}
    print("\n| ratio | value |\n|---|---|")
    for key, value in ratios.items():
        print(f"| {key} | {value if isinstance(value, bool) else f'{value:.3f}'} |")
    if args.output:
        with open(args.output, "w") as handle:
            json.dump(report, handle, indent=2)


if __name__ == "__main__":
    main()
