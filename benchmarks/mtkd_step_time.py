"""MTKD step time and peak memory against plain fine-tuning, on wav2vec2-base-sized random-init models.

Each configuration runs in its own subprocess (so peak memory is its own) and times
`trainer.training_step` (forward, backward) + optimizer step on the same batch:

  ft              plain fine-tuning (SERTrainer)
  teacher_fwd     one teacher's forward pass alone (for the bound below)
  mtkd_online_N   MTKD with N online float32 teachers, for each N in --teachers
  mtkd_bf16_N     MTKD with N online bfloat16 teachers (N = --main-teachers)
  mtkd_cache_N    MTKD from cached teacher logits (no teacher runs)

Targets (issue: MTKD trainer):
  step(mtkd_online_N) / step(ft) <= (1 + N * fwd(teacher) / step(ft)) + 10 %
  step(mtkd_cache) / step(ft)    <= 1.10
  peak(mtkd_bf16_N) <= peak(ft) + N * bytes(teacher in bf16) + 10 %

Both wall-clock and CPU time (`time.process_time`) are recorded; `--clock` picks the one the ratios use
(CPU time on a shared CPU machine, where other processes stretch wall time but not the work done; wall
time on a GPU). Peak memory is the subprocess's peak RSS on CPU, `torch.cuda.max_memory_allocated` on GPU.

Usage: python benchmarks/mtkd_step_time.py [--teachers 1 3 5] [--batch 2] [--seconds 1.0] [--steps 3]
                                            [--device cpu] [--clock cpu] [--output r.json]
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

CLOCKS = ("wall", "cpu")


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


def _trainer(kind: str, n_teachers: int, tmp: str, device: str):
    import torch
    from transformers import Wav2Vec2FeatureExtractor

    from hf_mtkd.multi_teacher.config import MultiTeacherDistillationConfig, TeacherSpec
    from hf_mtkd.multi_teacher.teachers import Teacher, freeze
    from hf_mtkd.multi_teacher.trainer import MultiTeacherDistillationTrainer
    from hf_mtkd.training import SERTrainer, SERTrainingArguments

    common = dict(output_dir=tmp, report_to="none", use_cpu=device == "cpu", eval_strategy="no", save_strategy="no",
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


def _clocked(fn, device) -> dict[str, float]:
    import torch

    if device.type == "cuda":
        torch.cuda.synchronize(device)
    wall, cpu = time.perf_counter(), time.process_time()
    fn()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return {"wall": time.perf_counter() - wall, "cpu": time.process_time() - cpu}


def _peak_bytes(device) -> int:
    import torch

    if device.type == "cuda":
        return int(torch.cuda.max_memory_allocated(device))
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def measure(kind: str, n_teachers: int, batch: int, seconds: float, steps: int, threads: int, device: str) -> dict:
    """Median seconds per step (both clocks) and peak memory of one configuration, in this process."""
    import torch

    torch.set_num_threads(threads)
    torch.manual_seed(0)
    dev = torch.device(device)
    inputs = {
        "input_values": torch.randn(batch, int(seconds * 16000)),
        "labels": torch.randint(0, 4, (batch,)),
        "language_id": torch.arange(batch) % max(n_teachers, 1),
    }
    with tempfile.TemporaryDirectory() as tmp:
        if kind == "teacher_fwd":
            teacher = _model(1).eval().to(dev)
            values = inputs["input_values"].to(dev)
            with torch.no_grad():
                teacher(input_values=values)
                times = [_clocked(lambda: teacher(input_values=values), dev) for _ in range(steps)]
            bf16_bytes = sum(p.numel() * 2 for p in teacher.parameters())
            return {**_median(times), "teacher_bf16_bytes": bf16_bytes, "peak_bytes": _peak_bytes(dev)}
        trainer, _ = _trainer(kind, n_teachers, tmp, device)
        if kind == "mtkd_cache":
            inputs["teacher_logits"] = torch.randn(batch, n_teachers, 4)
        model = trainer.model
        model.train()
        trainer.current_gradient_accumulation_steps = 1  # set by Trainer.train(), which we bypass
        optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=3e-5)

        def step():
            trainer.training_step(model, dict(inputs))
            optimizer.step()
            optimizer.zero_grad()

        step()  # warms up allocators and optimizer state
        times = [_clocked(step, dev) for _ in range(steps)]
        return {**_median(times), "peak_bytes": _peak_bytes(dev)}


def _median(times: list[dict]) -> dict:
    return {f"{clock}_s": statistics.median(t[clock] for t in times) for clock in CLOCKS}


def configurations(teachers: list[int], main_teachers: int) -> list[tuple[str, str, int]]:
    """(label, kind, number of teachers) in the order they run."""
    configs = [("ft", "ft", 0), ("teacher_fwd", "teacher_fwd", 1)]
    configs += [(f"mtkd_online_{n}", "mtkd_online", n) for n in teachers]
    configs += [(f"mtkd_bf16_{main_teachers}", "mtkd_bf16", main_teachers), (f"mtkd_cache_{main_teachers}", "mtkd_cache", main_teachers)]
    return configs


def ratios(results: dict, teachers: list[int], main_teachers: int, clock: str) -> dict:
    key = f"{clock}_s"
    ft, fwd = results["ft"][key], results["teacher_fwd"][key]
    out = {}
    for n in teachers:
        value, bound = results[f"mtkd_online_{n}"][key] / ft, 1 + n * fwd / ft
        out[f"mtkd_online_{n}_over_ft"] = value
        out[f"mtkd_online_{n}_bound"] = bound
        out[f"mtkd_online_{n}_within_bound_plus_10pct"] = value <= bound * 1.10
    n = main_teachers
    out[f"mtkd_bf16_{n}_over_ft"] = results[f"mtkd_bf16_{n}"][key] / ft
    out[f"mtkd_cache_{n}_over_ft"] = results[f"mtkd_cache_{n}"][key] / ft
    out[f"mtkd_cache_{n}_within_1_10"] = out[f"mtkd_cache_{n}_over_ft"] <= 1.10
    mem_bound = results["ft"]["peak_bytes"] + n * results["teacher_fwd"]["teacher_bf16_bytes"]
    out[f"peak_bf16_{n}_over_bound"] = results[f"mtkd_bf16_{n}"]["peak_bytes"] / mem_bound
    out[f"peak_bf16_{n}_within_bound_plus_10pct"] = results[f"mtkd_bf16_{n}"]["peak_bytes"] <= mem_bound * 1.10
    return out


def run(args) -> dict:
    results = {}
    for label, kind, n in configurations(args.teachers, args.main_teachers):
        cmd = [sys.executable, os.path.abspath(__file__), "--_one", kind, "--teachers", str(n), "--batch", str(args.batch),
               "--seconds", str(args.seconds), "--steps", str(args.steps), "--threads", str(args.threads),
               "--device", args.device]
        out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout.strip().splitlines()[-1]
        results[label] = json.loads(out)
        r = results[label]
        print(f"{label:<16} wall {r['wall_s'] * 1e3:8.1f} ms  cpu {r['cpu_s'] * 1e3:8.1f} ms  "
              f"peak {r['peak_bytes'] / 2**30:.2f} GiB", flush=True)
    return {
        "config": {k: v for k, v in vars(args).items() if not k.startswith("_")},
        "results": results,
        "ratios": ratios(results, args.teachers, args.main_teachers, args.clock),
    }


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--teachers", type=int, nargs="+", default=[1, 3, 5], help="Numbers of online teachers to time.")
    parser.add_argument("--main-teachers", type=int, default=None, help="N for the bf16 and cache runs (default: 3 if listed, else the largest).")
    parser.add_argument("--batch", type=int, default=2)
    parser.add_argument("--seconds", type=float, default=1.0)
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--clock", choices=CLOCKS, default=None, help="Clock for the ratios (default: cpu on CPU, wall on GPU).")
    parser.add_argument("--output", default=None, help="JSON file for the results")
    parser.add_argument("--_one", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.main_teachers is None:
        args.main_teachers = 3 if 3 in args.teachers else max(args.teachers)
    if args.clock is None:
        args.clock = "cpu" if args.device == "cpu" else "wall"
    return args


def main(argv=None) -> dict:
    args = parse_args(argv)
    if args._one:
        print(json.dumps(measure(args._one, args.teachers[0], args.batch, args.seconds, args.steps, args.threads, args.device)))
        return {}
    report = run(args)
    print("\n| ratio | value |\n|---|---|")
    for key, value in report["ratios"].items():
        print(f"| {key} | {value if isinstance(value, bool) else f'{value:.3f}'} |")
    if args.output:
        with open(args.output, "w") as handle:
            json.dump(report, handle, indent=2)
    return report


if __name__ == "__main__":
    main()
