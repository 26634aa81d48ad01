"""Two processes on this CPU (torch.distributed over gloo) against one process with the same global batch.

One launch of `tests/distributed_worker.py` with two processes runs the MTKD jobs (online, cached teacher
logits, bf16), another (slow) the self-distillation job; the single-process references run in this process. Dropout,
LayerDrop and time masking are off and the clips are cropped to
one length (no padding), so the two runs must give the same weights up to float summation order.
The test split has an odd size (15): evaluation must gather every sample once, in dataset order.

`accelerate launch --cpu --num_processes 2` starts one process; two processes come from torchrun (or
`accelerate launch --multi_gpu --num_processes 2`) with `use_cpu: true` in the training arguments.
"""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
from safetensors.torch import load_file

from testing_utils import LABELS, TINY_W2V2, save_tiny_classifier, tiny_recipe, write_tone_corpus
from distributed_worker import run_job
from hf_mtkd.training.run import check_world_size

WORKER = Path(__file__).with_name("distributed_worker.py")
NO_DROPOUT = {
    **TINY_W2V2,
    "hidden_dropout": 0.0,
    "attention_dropout": 0.0,
    "activation_dropout": 0.0,
    "feat_proj_dropout": 0.0,
    "final_dropout": 0.0,
    "layerdrop": 0.0,
    "mask_time_prob": 0.0,
}
GLOBAL_BATCH = 4


def _odd_corpus(root: Path) -> Path:
    """The tone corpus with one test and one validation clip dropped (15 each; 16 training clips)."""
    write_tone_corpus(root)
    with open(root / "metadata.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    for split in ("test", "validation"):
        rows.remove(next(row for row in rows if row["split"] == split))
    with open(root / "metadata.csv", "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return root


def _jobs(root: Path, corpus: Path, processes: int, device: str = "cpu") -> list[dict]:
    teachers = [{"model": str(root / "t_en"), "language": "en"}, {"model": str(root / "t_fi"), "language": "fi"}]
    common = dict(
        config_overrides=NO_DROPOUT, max_steps=3, logging_steps=1, max_duration_seconds=0.3, use_cpu=device == "cpu",
        per_device_train_batch_size=GLOBAL_BATCH // processes, per_device_eval_batch_size=2, n_bootstrap=10,
        # Plain SGD: the update is linear in the gradient. Adam divides by sqrt(v), which turns float-order
        # noise in near-zero gradients into visible weight differences.
        optim="sgd", learning_rate=0.05,
    )
    mtkd = dict(method="mtkd", teachers=teachers, teacher_weighting="cosine", cosine_per_sample=True, kd_lambda=0.5)
    if device != "cpu":  # FSDP on GPUs: one job per method, in folders of their own
        return [{"name": f"fsdp_{name}", "method": recipe["method"], "recipe": recipe} for name, recipe in {
            "ft": tiny_recipe(corpus, root / f"fsdp_ft_{processes}", **common),
            "mtkd": tiny_recipe(corpus, root / f"fsdp_mtkd_{processes}", **common, **mtkd),
        }.items()]
    recipes = {
        "ft": tiny_recipe(corpus, root / f"ft_{processes}", **common),
        "mtkd": tiny_recipe(corpus, root / f"mtkd_{processes}", **common, **mtkd),
        "mtkd_cache": tiny_recipe(
            corpus, root / f"mtkd_cache_{processes}", **common, **mtkd, use_teacher_logit_cache=True
        ),
        "mtkd_bf16": tiny_recipe(
            corpus, root / f"mtkd_bf16_{processes}", **common, **mtkd, bf16=True, teacher_dtype="bfloat16"
        ),
        "self_distillation": tiny_recipe(
            corpus,
            root / f"sd_{processes}",
            **common,
            method="self_distillation",
            exit_layers=[1],
            head_hidden_size=16,
        ),
    }
    return [{"name": name, "method": recipe["method"], "recipe": recipe} for name, recipe in recipes.items()]


@pytest.fixture(scope="module")
def workdir(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("distributed")
    _odd_corpus(root / "corpus")
    save_tiny_classifier(root / "t_en", LABELS, seed=3)
    save_tiny_classifier(root / "t_fi", list(reversed(LABELS)), seed=4)
    return root


def launch_two_processes(root: Path, names: tuple[str, ...], tag: str, device: str = "cpu",
                         extra_env: dict | None = None) -> dict[str, list[dict]]:
    """{job name: [rank 0 record, rank 1 record]} from one two-process launch of the jobs named."""
    jobs_path, out = root / f"jobs_{tag}.json", root / f"records_{tag}"
    out.mkdir()
    jobs = [job for job in _jobs(root, root / "corpus", processes=2, device=device) if job["name"] in names]
    jobs_path.write_text(json.dumps(jobs))
    env = {
        **os.environ,
        "OMP_NUM_THREADS": "1",
        "HF_HUB_OFFLINE": "1",
        "HF_DATASETS_OFFLINE": "1",
        "HF_DATASETS_CACHE": str(root / "datasets_cache"),
        "TOKENIZERS_PARALLELISM": "false",
        **(extra_env or {}),
    }
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", str(WORKER),
           str(jobs_path), str(out)]
    result = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-6000:]
    return {
        job["name"]: [json.loads((out / f"{job['name']}.rank{rank}.json").read_text()) for rank in (0, 1)]
        for job in jobs
    }


@pytest.fixture(scope="module")
def two_processes(workdir) -> dict[str, list[dict]]:
    return launch_two_processes(workdir, ("ft", "mtkd", "mtkd_cache", "mtkd_bf16"), "mtkd")


@pytest.fixture(scope="module")
def two_processes_sd(workdir) -> dict[str, list[dict]]:
    return launch_two_processes(workdir, ("self_distillation",), "sd")


@pytest.fixture(scope="module")
def one_process(workdir) -> dict[str, dict]:
    """Single-process references (same global batch and seed), run in this process when first asked for."""
    jobs = {job["name"]: job for device in ("cpu", "cuda") for job in _jobs(workdir, workdir / "corpus", 1, device)}
    done: dict[str, dict] = {}

    def get(name: str) -> dict:
        if name not in done:
            done[name] = run_job(jobs[name])
        return done[name]

    return get


def _weights(output_dir) -> dict[str, torch.Tensor]:
    return load_file(os.path.join(output_dir, "model.safetensors"))


def _assert_same_weights(a_dir, b_dir, rtol=1e-5, atol=1e-6) -> None:
    a, b = _weights(a_dir), _weights(b_dir)
    assert a.keys() == b.keys()
    for name in a:
        torch.testing.assert_close(a[name], b[name], rtol=rtol, atol=atol, msg=lambda m, n=name: f"{n}: {m}")


def _log_rows(output_dir, keys, marker_key: str | None = None) -> list[dict]:
    state = json.loads((Path(output_dir) / "trainer_state.json").read_text())
    rows = [e for e in state["log_history"] if (marker_key in e if marker_key else "ce_loss" in e or "ce" in e)]
    return [{k: entry[k] for k in keys} for entry in rows if "train_runtime" not in entry]


def test_two_processes_really_run_data_parallel(two_processes):
    for name, (rank0, rank1) in two_processes.items():
        assert (rank0["world_size"], rank1["world_size"]) == (2, 2), name
        assert {rank0["process_index"], rank1["process_index"]} == {0, 1}, name
        assert rank0["student_wrapper"] == "DistributedDataParallel", name
    # Teachers are placed on each process's device, never wrapped for gradients, frozen and in eval mode.
    for rank in two_processes["mtkd"]:
        assert rank["teacher_wrappers"] == ["Wav2Vec2ForSequenceClassification"] * 2
        assert rank["teacher_devices"] == [rank["student_device"]] * 2
        assert not rank["teachers_need_grad"] and not rank["teachers_training"]


def test_finetune_two_processes_equal_one_process(two_processes, one_process, workdir):
    # A stock classifier takes **kwargs, so the Trainer would count it as normalising by num_items_in_batch and
    # scale its (per-batch mean) loss by the number of processes: twice the gradient of one process.
    one_process("ft")
    _assert_same_weights(workdir / "ft_2", workdir / "ft_1")
    keys = ["loss", "grad_norm"]
    two, one = _log_rows(workdir / "ft_2", keys, "loss"), _log_rows(workdir / "ft_1", keys, "loss")
    assert len(two) == len(one) == 3
    for row_two, row_one in zip(two, one):
        assert row_two == pytest.approx(row_one, rel=1e-5, abs=1e-7)


def test_mtkd_two_processes_equal_one_process(two_processes, one_process, workdir):
    reference, (rank0, rank1) = one_process("mtkd"), two_processes["mtkd"]
    _assert_same_weights(workdir / "mtkd_2", workdir / "mtkd_1")
    # Logged extras are pooled over processes: the per-step CE, KD and overall teacher weights match.
    keys = ["loss", "grad_norm", "ce_loss", "kd_loss", "teacher_weight/en", "teacher_weight/fi"]
    for two, one in zip(_log_rows(workdir / "mtkd_2", keys), _log_rows(workdir / "mtkd_1", keys), strict=True):
        assert two == pytest.approx(one, rel=1e-5, abs=1e-7)
    # The per-language teacher-weight table covers the samples of every process.
    weights_two = rank0["summary"]["teacher_weights_per_language"]
    assert rank1["summary"]["teacher_weights_per_language"] == weights_two
    weights_one = reference["summary"]["teacher_weights_per_language"]
    assert weights_two.keys() == weights_one.keys() == {"en", "fi"}
    for lang in weights_one:
        assert weights_two[lang] == pytest.approx(weights_one[lang], rel=1e-5)


def _assert_same_predictions(records: list[dict], reference: dict) -> None:
    rank0, rank1 = records
    assert rank0["test_size"] == 15
    assert rank0["predictions"] == rank1["predictions"] == reference["predictions"]
    assert len(rank0["predictions"]) == 15
    report, expected = (
        rank0["summary"]["results"]["test"]["overall"],
        reference["summary"]["results"]["test"]["overall"],
    )
    assert report["n"] == 15
    assert {k: report[k] for k in ("UR", "WR", "macro_f1")} == {k: expected[k] for k in ("UR", "WR", "macro_f1")}


def test_evaluation_gathers_every_sample_once_in_order(two_processes, one_process, workdir):
    _assert_same_predictions(two_processes["mtkd"], one_process("mtkd"))
    metrics = json.loads((workdir / "mtkd_2" / "test_metrics.json").read_text())
    assert metrics["overall"]["n"] == 15 and sum(m["n"] for m in metrics["per_language"].values()) == 15


def test_teacher_logit_cache_is_built_once_and_shared(two_processes, workdir):
    rank0, rank1 = two_processes["mtkd_cache"]
    # The main process fills the cache (3 splits, clip by clip); the other reads the datasets cache files.
    assert rank0["cache_teacher_forwards"] == 16 + 15 + 15
    assert rank1["cache_teacher_forwards"] == 0
    assert rank0["cache_fingerprints"] == rank1["cache_fingerprints"] and len(rank0["cache_fingerprints"]) == 3
    assert rank0["teacher_wrappers"] == []  # training runs no teacher
    # Cached logits are the online teachers' logits (clips are cropped to one length: no padding).
    _assert_same_weights(workdir / "mtkd_cache_2", workdir / "mtkd_2")


@pytest.mark.slow
def test_self_distillation_two_processes_equal_one_process(two_processes_sd, one_process, workdir):
    reference = one_process("self_distillation")
    rank0, rank1 = two_processes_sd["self_distillation"]
    assert (rank0["world_size"], rank0["student_wrapper"]) == (2, "DistributedDataParallel")
    _assert_same_weights(workdir / "sd_2", workdir / "sd_1")
    keys = ["loss", "grad_norm", "ce", "ce_exits", "kl", "similarity", "ce_exit_1"]
    for two, one in zip(_log_rows(workdir / "sd_2", keys), _log_rows(workdir / "sd_1", keys), strict=True):
        assert two == pytest.approx(one, rel=1e-5, abs=1e-7)
    _assert_same_predictions([rank0, rank1], reference)
    assert rank0["summary"]["exported_exits"] and not rank1["summary"].get("exported_exits")


def test_bf16_with_bf16_teachers_on_two_processes(two_processes, workdir):
    rank0, rank1 = two_processes["mtkd_bf16"]
    assert rank0["teacher_dtypes"] == ["torch.bfloat16"] * 2
    # The student's training forwards ran under bf16 autocast on both processes; the float32 run's did not.
    assert rank0["student_forward_dtypes"] == rank1["student_forward_dtypes"] == [["torch.bfloat16", True]]
    assert two_processes["mtkd"][0]["student_forward_dtypes"] == [["torch.float32", False]]
    state = json.loads((workdir / "mtkd_bf16_2" / "trainer_state.json").read_text())
    losses = [entry["loss"] for entry in state["log_history"] if "loss" in entry]
    assert len(losses) == 3 and all(torch.isfinite(torch.tensor(losses)))
    trained = _weights(workdir / "mtkd_bf16_2")
    assert all(t.dtype == torch.float32 for t in trained.values())  # autocast: the master weights stay float32
    # bf16 autocast changes the numbers a little, not the run: close to the float32 run.
    fp32 = _weights(workdir / "mtkd_2")
    assert max((trained[k] - fp32[k]).abs().max().item() for k in fp32) < 5e-2


#: Found with accelerate 1.15 and torch 2.11 on this CPU. torch's own FSDP2 (`fully_shard`) shards and trains over
#: gloo, but accelerate turns FSDP on only for accelerator devices: with `use_cpu` (or ACCELERATE_USE_FSDP=true)
#: the Trainer dropped the FSDP plugin without a word and wrapped the student in DistributedDataParallel. hf_mtkd
#: now refuses that launch (`check_fsdp_device`); the equality test needs two GPUs.
FSDP_ON_CPU = ("accelerate 1.15 runs FSDP only on accelerators: on CPU it keeps no FSDP plugin and the Trainer wraps "
               "the student in plain DDP (hf_mtkd refuses that launch); FSDP equality needs 2 GPUs")
FSDP_ENV = {  # what `accelerate launch --config_file recipes/accelerate_configs/fsdp.yaml` sets
    "ACCELERATE_USE_FSDP": "true", "FSDP_VERSION": "2", "FSDP_AUTO_WRAP_POLICY": "TRANSFORMER_BASED_WRAP",
    "FSDP_TRANSFORMER_CLS_TO_WRAP": "Wav2Vec2EncoderLayer", "FSDP_STATE_DICT_TYPE": "FULL_STATE_DICT",
    "FSDP_CPU_RAM_EFFICIENT_LOADING": "false", "FSDP_RESHARD_AFTER_FORWARD": "true",
}


@pytest.mark.skipif(torch.cuda.device_count() < 2, reason=FSDP_ON_CPU)
@pytest.mark.parametrize("name", ["ft", "mtkd"])
def test_fsdp_two_processes_equal_one_process(name, workdir, one_process):
    job = f"fsdp_{name}"
    rank0, rank1 = launch_two_processes(workdir, (job,), job, device="cuda", extra_env=FSDP_ENV)[job]
    assert (rank0["world_size"], rank1["world_size"]) == (2, 2)
    assert rank0["student_wrapper"].startswith("FSDP"), rank0["student_wrapper"]  # fully_shard's class
    assert all(not wrapper.startswith("FSDP") for wrapper in rank0["teacher_wrappers"])  # teachers stay whole
    reference = one_process(job)
    # GPUs reduce in other orders (and convolutions may use TF32): close, not bit-equal.
    _assert_same_weights(workdir / f"{job}_2", workdir / f"{job}_1", rtol=1e-3, atol=1e-4)
    _assert_same_predictions([rank0, rank1], reference)


def test_fsdp_on_cpu_is_refused(monkeypatch):
    from transformers import TrainingArguments

    from hf_mtkd.training.run import check_fsdp_device

    args = TrainingArguments(output_dir="unused", use_cpu=True, report_to="none")
    check_fsdp_device(args, environ={})
    with pytest.raises(ValueError, match="FSDP was asked for .* on CPU"):
        check_fsdp_device(args, environ={"ACCELERATE_USE_FSDP": "true"})


def test_launch_the_trainer_does_not_see_is_refused(monkeypatch):
    monkeypatch.setenv("WORLD_SIZE", "2")
    with pytest.raises(RuntimeError, match="--use_cpu true"):
        check_world_size(SimpleNamespace(world_size=1))
    check_world_size(SimpleNamespace(world_size=2))
    monkeypatch.delenv("WORLD_SIZE")
    check_world_size(SimpleNamespace(world_size=1))
