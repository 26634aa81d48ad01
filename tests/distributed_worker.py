"""Runs training jobs through `hf_mtkd.training.run` and records what the distributed tests check.

    python -m torch.distributed.run --standalone --nproc_per_node 2 tests/distributed_worker.py JOBS.json OUT_DIR

JOBS.json is a list of {"name": ..., "method": ..., "recipe": {...}}. Every process writes
OUT_DIR/<name>.rank<k>.json with its world size, the test-set predictions (`trainer.predict`, in
dataset order), the run summary, how the student and the teachers were wrapped and placed, the dtype of
the student's training forwards (and whether autocast was on), and how many teacher forwards the teacher-logit cache
ran on this process. `run_job` is also called
in-process by the tests for the single-process reference runs.
"""

from __future__ import annotations

import json
import os
import sys

import torch

from hf_mtkd.utils.distributed import end_process_group


def run_job(job: dict) -> dict:
    from hf_mtkd.registry import get_method
    from hf_mtkd.distillation import cache
    from hf_mtkd.training.evaluation import predict_labels
    from hf_mtkd.training.run import run

    method = get_method(job["method"])
    built = {}
    build_trainer = method.build_trainer

    def capture(setup, **parts):
        built["trainer"] = trainer = build_trainer(setup, **parts)
        built["splits"] = parts["splits"]
        # The dtype the student's last linear layer computes in, and whether autocast was on, at each training
        # forward (bf16 autocast: bfloat16 outputs from float32 weights).
        last_linear = [m for m in trainer.model.modules() if isinstance(m, torch.nn.Linear)][-1]

        def record_dtype(module, args, output):
            if module.training:
                forward_dtypes.add((str(output.dtype), torch.is_autocast_enabled(output.device.type)))

        last_linear.register_forward_hook(record_dtype)
        return trainer

    method.build_trainer = capture
    forward_dtypes: set[tuple[str, bool]] = set()
    # Count teacher forwards inside the cache and record the fingerprints of the cached splits.
    cache_calls, fingerprints = [0], []
    real_forward, real_add = cache.teacher_logits_for_batch, cache.add_teacher_logits

    def counting_forward(*args, **kwargs):
        cache_calls[0] += 1
        return real_forward(*args, **kwargs)

    def recording_add(*args, **kwargs):
        out = real_add(*args, **kwargs)
        fingerprints.append(out._fingerprint)
        return out

    cache.teacher_logits_for_batch = counting_forward
    method_module = sys.modules[type(method).__module__]
    patched_add = hasattr(method_module, "add_teacher_logits")
    if patched_add:
        method_module.add_teacher_logits = recording_add
    try:
        summary = run(method, recipe=job["recipe"])
    finally:
        cache.teacher_logits_for_batch = real_forward
        if patched_add:
            method_module.add_teacher_logits = real_add
    trainer, splits = built["trainer"], built["splits"]
    predictions = predict_labels(trainer, splits["test"])  # a collective: every process calls it
    teachers = getattr(trainer, "teachers", [])
    return {
        "world_size": trainer.args.world_size,
        "process_index": trainer.args.process_index,
        "student_wrapper": type(trainer.model_wrapped).__name__,
        "teacher_wrappers": [type(t.model).__name__ for t in teachers],
        "teacher_devices": [str(next(t.model.parameters()).device) for t in teachers],
        "teacher_dtypes": [str(next(t.model.parameters()).dtype) for t in teachers],
        "teachers_need_grad": any(p.requires_grad for t in teachers for p in t.model.parameters()),
        "teachers_training": any(t.model.training for t in teachers),
        "student_device": str(next(trainer.model.parameters()).device),
        "student_forward_dtypes": sorted(forward_dtypes),
        "cache_teacher_forwards": cache_calls[0],
        "cache_fingerprints": fingerprints,
        "test_size": len(splits["test"]),
        "predictions": [int(p) for p in predictions],
        "summary": summary.to_dict(),
    }


def main(jobs_path: str, out_dir: str) -> None:
    torch.set_num_threads(1)
    with open(jobs_path, encoding="utf-8") as handle:
        jobs = json.load(handle)
    rank = int(os.environ.get("RANK", "0"))
    for job in jobs:
        record = run_job(job)
        with open(os.path.join(out_dir, f"{job['name']}.rank{rank}.json"), "w", encoding="utf-8") as handle:
            json.dump(record, handle, default=str)
    # Both processes are done (records written) before either tears its gloo group down; left to interpreter
    # exit, one process's teardown while the other is still in a collective aborted it under load (exit -6).
    end_process_group()


if __name__ == "__main__":
    main(*sys.argv[1:3])
