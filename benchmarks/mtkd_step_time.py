"""MTKD step time and peak memory against plain fine-tuning, on wav2vec2-base-sized random-init models.

Times `trainer.training_step` (forward, backward) + optimizer step on the same batch for:

  ft              plain fine-tuning (SERTrainer)
  teacher_fwd     one teacher's forward pass alone (for the bound below)
  mtkd_online_N   MTKD with N online float32 teachers, for each N in --teachers (cosine weights: every
                  teacher runs on every sample)
  mtkd_language_N the same with `teacher_weighting: language`, the batch's samples spread over the N
                  teachers' languages: each teacher runs only on its own samples
  mtkd_bf16_N     MTKD with N online bfloat16 teachers (N = --main-teachers)
  mtkd_cache_N    MTKD from cached teacher logits (no teacher runs)

Targets (issue: MTKD trainer):
  step(mtkd_online_N) / step(ft) <= (1 + N * fwd(teacher) / step(ft)) + 10 %
  step(mtkd_language_N) / step(ft) about flat in N (one teacher forward per sample), unlike cosine's
  step(mtkd_cache) / step(ft)    <= 1.10
  peak(mtkd_bf16_N) <= peak(ft) + N * bytes(teacher in bf16) + 10 %

Step times come from one subprocess in which every configuration is built around one student (and one
set of teachers) and timed in turn, one step each per round after a warm-up round, so that drifts in
machine load hit all of them alike; --statistic summarises the rounds. Peak memory comes from each
configuration run alone in a subprocess of its own: peak RSS on CPU, `torch.cuda.max_memory_allocated`
on GPU. Both wall-clock and CPU time (`time.process_time`) are recorded; `--clock` picks the one the
ratios use (CPU time on a shared CPU machine, where other processes stretch wall time but not the work
done; wall time on a GPU).

Usage: python benchmarks/mtkd_step_time.py [--teachers 1 3 5] [--batch 2] [--seconds 1.0] [--steps 5]
                                            [--device cpu] [--clock cpu] [--statistic median] [--output r.json]
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

CLOCKS = ("wall", "cpu")


def _model(seed: int):
    import torch
    from transformers import Wav2Vec2Config, Wav2Vec2ForSequenceClassification

    torch.manual_seed(seed)
    labels = ["angry", "happy", "neutral", "sad"]
    config = Wav2Vec2Config(  # wav2vec2-base shapes
        num_labels=4, id2label=dict(enumerate(labels)), label2id={label: i for i, label in enumerate(labels)},
        layerdrop=0.0, mask_time_prob=0.0,
    )
    return Wav2Vec2ForSequenceClassification(config)


def _student():
    student = _model(0)
    student.freeze_feature_encoder()
    return student


def _teachers(n_teachers: int, dtype) -> list:
    import torch
    from transformers import Wav2Vec2FeatureExtractor

    from hf_mtkd.distillation.teachers import TeacherSpec
    from hf_mtkd.distillation.teachers import Teacher, freeze

    fe = Wav2Vec2FeatureExtractor()
    return [
        Teacher(
            TeacherSpec(model=f"t{i}", language=f"l{i}"), freeze(_model(i + 1).to(dtype)), fe, torch.arange(4), True
        )
        for i in range(n_teachers)
    ]


def _trainer(kind: str, n_teachers: int, tmp: str, device: str, student, teachers=None):
    """A trainer for `kind` around `student`; online kinds build their teachers unless given."""
    import torch

    from hf_mtkd.mtkd.config import MultiTeacherDistillationConfig
    from hf_mtkd.mtkd.trainer import MultiTeacherDistillationTrainer
    from hf_mtkd.training import SERTrainer, SERTrainingArguments

    common = dict(output_dir=tmp, report_to="none", use_cpu=device == "cpu", eval_strategy="no", save_strategy="no",
                  load_best_model_at_end=False, learning_rate=3e-5)
    if kind == "ft":
        trainer = SERTrainer(model=student, args=SERTrainingArguments(**common))
    else:
        teachers_spec = [{"model": f"t{i}", "language": f"l{i}"} for i in range(n_teachers)]
        weighting = "language" if kind == "mtkd_language" else "cosine"
        args = MultiTeacherDistillationConfig(**common, teachers=teachers_spec, teacher_weighting=weighting)
        if teachers is None and kind != "mtkd_cache":
            teachers = _teachers(n_teachers, torch.bfloat16 if kind == "mtkd_bf16" else torch.float32)
        trainer = MultiTeacherDistillationTrainer(model=student, args=args, teachers=teachers or [],
                                                  languages=[f"l{i}" for i in range(n_teachers)])
    trainer.current_gradient_accumulation_steps = 1  # set by Trainer.train(), which we bypass
    return trainer


def _peak_bytes(device) -> int:
    import torch

    if device.type == "cuda":
        return int(torch.cuda.max_memory_allocated(device))
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def _inputs(batch: int, seconds: float, n_teachers: int) -> dict:
    import torch

    torch.manual_seed(0)
    return {
        "input_values": torch.randn(batch, int(seconds * 16000)),
        "labels": torch.randint(0, 4, (batch,)),
        "language_id": torch.arange(batch) % max(n_teachers, 1),
        "teacher_logits": torch.randn(batch, max(n_teachers, 1), 4),
    }


def _step_fn(trainer, optimizer, inputs: dict, kind: str):
    """One training step (forward, backward, optimizer step) of `trainer` on the same batch."""
    batch = {k: v for k, v in inputs.items() if k != "teacher_logits" or kind == "mtkd_cache"}
    model = trainer.model

    def step():
        model.train()
        trainer.training_step(model, dict(batch))
        optimizer.step()
        optimizer.zero_grad()

    return step


def measure_memory(kind: str, n_teachers: int, batch: int, seconds: float, threads: int, device: str) -> dict:
    """Peak memory of one configuration alone in this process (two steps: the second reuses the first's buffers)."""
    import torch

    torch.set_num_threads(threads)
    dev = torch.device(device)
    inputs = _inputs(batch, seconds, n_teachers)
    with tempfile.TemporaryDirectory() as tmp:
        if kind == "teacher_fwd":
            teacher = _model(1).eval().to(dev)
            with torch.no_grad():
                teacher(input_values=inputs["input_values"].to(dev))
            return {
                "teacher_bf16_bytes": sum(p.numel() * 2 for p in teacher.parameters()),
                "peak_bytes": _peak_bytes(dev),
            }
        student = _student()
        trainer = _trainer(kind, n_teachers, tmp, device, student)
        optimizer = torch.optim.AdamW([p for p in trainer.model.parameters() if p.requires_grad], lr=3e-5)
        step = _step_fn(trainer, optimizer, inputs, kind)
        step()
        step()
        return {"peak_bytes": _peak_bytes(dev)}


def time_interleaved(teachers: list[int], main_teachers: int, batch: int, seconds: float, rounds: int, threads: int,
                     device: str, statistic: str) -> dict:
    """Seconds per step of every configuration, all built in this process around one student and timed in turn,
    one step each per round (after a warm-up round), so that drifts in machine load hit all of them alike."""
    import torch
    # the same clock as the exit-latency benchmark (benchmarks/ is on sys.path)
    from self_distillation_latency import timed

    torch.set_num_threads(threads)
    dev = torch.device(device)
    inputs = _inputs(batch, seconds, max(teachers))
    fp32 = _teachers(max(teachers), torch.float32)
    bf16 = _teachers(main_teachers, torch.bfloat16)
    with tempfile.TemporaryDirectory() as tmp:
        student = _student()
        probes = {}
        optimizer = None
        for label, kind, n in configurations(teachers, main_teachers):
            if kind == "teacher_fwd":
                continue
            given = {"mtkd_online": fp32[:n], "mtkd_language": fp32[:n], "mtkd_bf16": bf16[:n], "mtkd_cache": []}.get(
                kind
            )
            trainer = _trainer(kind, n, tmp, device, student, given)
            if optimizer is None:
                optimizer = torch.optim.AdamW([p for p in trainer.model.parameters() if p.requires_grad], lr=3e-5)
            own = {
                **inputs,
                "language_id": inputs["language_id"] % max(n, 1),
                "teacher_logits": inputs["teacher_logits"][:, :n],
            }
            probes[label] = _step_fn(trainer, optimizer, own, kind)
        teacher = fp32[0].model.to(dev)
        values = inputs["input_values"].to(dev)

        def teacher_forward():
            with torch.no_grad():
                teacher(input_values=values)

        probes = {"ft": probes.pop("ft"), "teacher_fwd": teacher_forward, **probes}
        times = {label: [] for label in probes}
        for round_index in range(rounds + 1):  # round 0 warms up allocators and optimizer state
            for label, fn in probes.items():
                measured = timed(fn, dev)
                if round_index:
                    times[label].append(measured)
    reduce = min if statistic == "min" else statistics.median
    return {
        label: {f"{clock}_s": reduce(t[clock] for t in values) for clock in CLOCKS} for label, values in times.items()
    }


def configurations(teachers: list[int], main_teachers: int) -> list[tuple[str, str, int]]:
    """(label, kind, number of teachers) in the order they run."""
    configs = [("ft", "ft", 0), ("teacher_fwd", "teacher_fwd", 1)]
    configs += [(f"mtkd_online_{n}", "mtkd_online", n) for n in teachers]
    configs += [(f"mtkd_language_{n}", "mtkd_language", n) for n in teachers]
    configs += [
        (f"mtkd_bf16_{main_teachers}", "mtkd_bf16", main_teachers),
        (f"mtkd_cache_{main_teachers}", "mtkd_cache", main_teachers),
    ]
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
        out[f"mtkd_language_{n}_over_ft"] = results[f"mtkd_language_{n}"][key] / ft
    n = main_teachers
    out[f"mtkd_bf16_{n}_over_ft"] = results[f"mtkd_bf16_{n}"][key] / ft
    out[f"mtkd_cache_{n}_over_ft"] = results[f"mtkd_cache_{n}"][key] / ft
    out[f"mtkd_cache_{n}_within_1_10"] = out[f"mtkd_cache_{n}_over_ft"] <= 1.10
    mem_bound = results["ft"]["peak_bytes"] + n * results["teacher_fwd"]["teacher_bf16_bytes"]
    out[f"peak_bf16_{n}_over_bound"] = results[f"mtkd_bf16_{n}"]["peak_bytes"] / mem_bound
    out[f"peak_bf16_{n}_within_bound_plus_10pct"] = results[f"mtkd_bf16_{n}"]["peak_bytes"] <= mem_bound * 1.10
    return out


def _subprocess(args, *extra: str) -> dict:
    cmd = [sys.executable, os.path.abspath(__file__), "--batch", str(args.batch), "--seconds", str(args.seconds),
           "--steps", str(args.steps), "--threads", str(args.threads), "--device", args.device,
           "--statistic", args.statistic, *extra]
    return json.loads(subprocess.run(cmd, check=True, capture_output=True, text=True).stdout.strip().splitlines()[-1])


def run(args) -> dict:
    """Peak memory: each configuration alone in a subprocess. Step times: all of them interleaved in one subprocess."""
    results = {}
    for label, kind, n in configurations(args.teachers, args.main_teachers):
        results[label] = _subprocess(args, "--_memory", kind, "--teachers", str(n))
    teachers = [str(n) for n in args.teachers]
    times = _subprocess(args, "--_timing", "--teachers", *teachers, "--main-teachers", str(args.main_teachers))
    for label, r in results.items():
        r.update(times[label])
        print(f"{label:<16} wall {r['wall_s'] * 1e3:8.1f} ms  cpu {r['cpu_s'] * 1e3:8.1f} ms  "
              f"peak {r['peak_bytes'] / 2**30:.2f} GiB", flush=True)
    return {
        "config": {k: v for k, v in vars(args).items() if not k.startswith("_")},
        "results": results,
        "ratios": ratios(results, args.teachers, args.main_teachers, args.clock),
    }


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--teachers", type=int, nargs="+", default=[1, 3, 5], help="Numbers of online teachers to "
                                                                                   "time.")
    parser.add_argument("--main-teachers", type=int, default=None, help="N for the bf16 and cache runs (default: 3 "
                                                                        "if listed, else the largest).")
    parser.add_argument("--batch", type=int, default=2)
    parser.add_argument("--seconds", type=float, default=1.0)
    parser.add_argument("--steps", type=int, default=5, help="Timed rounds (one step of every configuration each).")
    parser.add_argument("--statistic", choices=["min", "median"], default="median", help="Summary over rounds.")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--clock", choices=CLOCKS, default=None, help="Clock for the ratios (default: cpu on CPU, "
                                                                      "wall on GPU).")
    parser.add_argument("--output", default=None, help="JSON file for the results")
    parser.add_argument("--_memory", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--_timing", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.main_teachers is None:
        args.main_teachers = 3 if 3 in args.teachers else max(args.teachers)
    if args.clock is None:
        args.clock = "cpu" if args.device == "cpu" else "wall"
    return args


def main(argv=None) -> dict:
    args = parse_args(argv)
    if args._memory:
        print(
            json.dumps(
                measure_memory(args._memory, args.teachers[0], args.batch, args.seconds, args.threads, args.device)
            )
        )
        return {}
    if args._timing:
        print(json.dumps(time_interleaved(args.teachers, args.main_teachers, args.batch, args.seconds, args.steps,
                                          args.threads, args.device, args.statistic)))
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
