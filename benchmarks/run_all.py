"""The side-by-side benchmark suite: every speed and memory ratio hf_mtkd promises, measured in one run.

Runs, one after the other on the same machine (wav2vec2-base-sized random-init models; batch 2 x 1 s):

  mtkd_step_time.py             FT step; one teacher's forward; MTKD step with 1, 3 and 5 online float32
                                teachers (cosine weights, and routed by language), with 3 bfloat16 teachers, and
                                from cached teacher logits; peak memory
  self_distillation_latency.py  self-distillation step (exits 3, 8, 10) against FT; latency of each exit
                                against the full model
  data_pipeline.py              decode + resample + features, clips/s and x real time, first pass and later
                                epochs, with and without num_proc
  real_time_factor.py           single-clip inference, x real time on one CPU thread: wav2vec2-base, each
                                self-distillation exit, the compact log-mel CNN student (always on the CPU)

and writes benchmarks/results/<machine>.json (everything) and <machine>.md (the tables and the targets).
On a CPU the ratios use CPU time with one torch thread per process and the best of the timed rounds (a
shared machine stretches wall time at random, and CPU time somewhat, never shortens either); on a GPU,
wall time and the median.

    python benchmarks/run_all.py                 # CPU
    python benchmarks/run_all.py --device cuda   # GPU machine (data pipeline stays on the CPU)
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import re
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))


def machine_info(device: str) -> dict:
    import torch

    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as handle:
            cpu = next(line.split(":", 1)[1].strip() for line in handle if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    try:
        with open("/proc/cpuinfo") as handle:
            flags = set(next(line for line in handle if line.startswith("flags")).split())
    except (OSError, StopIteration):
        flags = set()
    info = {
        "cpu": cpu,
        "cpu_bf16_flags": sorted(flags & {"avx512_bf16", "amx_bf16"}),  # bf16 teachers run faster with these
        "cpu_cores": os.cpu_count(),
        "load_average_at_start": os.getloadavg(),
        "python": sys.version.split()[0],
        "torch": torch.__version__,
        "device": device,
    }
    if device.startswith("cuda"):
        info["gpu"] = torch.cuda.get_device_name(0)
    return info


def default_machine_name(info: dict) -> str:
    if info.get("gpu"):
        return re.sub(r"[^a-z0-9]+", "-", info["gpu"].lower()).strip("-")
    return f"cpu-{info['cpu_cores']}core"


def _script(name: str, args: list[str], output: str) -> dict:
    cmd = [sys.executable, os.path.join(HERE, name), *args, "--output", output]
    print(f"\n$ {' '.join(cmd[1:])}", flush=True)
    subprocess.run(cmd, check=True)
    with open(output) as handle:
        return json.load(handle)


def _ms(seconds: float) -> str:
    return f"{seconds * 1e3:.0f}"


def _ok(flag: bool) -> str:
    return "yes" if flag else "**no**"


def summary_table(report: dict) -> str:
    """The ratios and their targets in one table (the README quotes it)."""
    clock = report["clock"]
    mtkd, sd, data = report["mtkd"], report["self_distillation"], report["data_pipeline"]
    rat = mtkd["ratios"]
    teachers, n = mtkd["config"]["teachers"], mtkd["config"]["main_teachers"]
    step = {name: clocks[clock] for name, clocks in sd["training"]["summary_s"].items()}
    exits = [row for row in sd["exits"] if row["head"] != "deepest"]
    runs = data["runs"]
    first = min(runs, key=lambda r: r["first_pass"]["x_real_time_per_core"])
    later = min(runs, key=lambda r: r["later_epoch"]["x_real_time_per_core"])

    def joined(values, fmt="{:.2f}"):
        return " / ".join(fmt.format(v) for v in values)

    online = joined(rat[f"mtkd_online_{t}_over_ft"] for t in teachers)
    bounds = joined(1.1 * rat[f"mtkd_online_{t}_bound"] for t in teachers)
    online_ok = all(rat[f"mtkd_online_{t}_within_bound_plus_10pct"] for t in teachers)
    rows = [
        "| ratio | measured | target | met |",
        "|---|---:|---|---|",
        f"| MTKD step / FT step, {joined(teachers, '{}')} online fp32 teachers | {online} "
        f"| <= 1.1 x (1 + N x teacher forward / FT step) = {bounds} | {_ok(online_ok)} |",
        *_language_rows(rat, teachers, joined),
        f"| MTKD step / FT step, {n} online bf16 teachers | {rat[f'mtkd_bf16_{n}_over_ft']:.2f} | | |",
        f"| MTKD step from the teacher-logit cache / FT step | {rat[f'mtkd_cache_{n}_over_ft']:.2f} | <= 1.10 "
        f"| {_ok(rat[f'mtkd_cache_{n}_within_1_10'])} |",
        f"| peak memory with {n} bf16 teachers / (FT peak + {n} bf16 teachers' weights) "
        f"| {rat[f'peak_bf16_{n}_over_bound']:.2f} | <= 1.10 | {_ok(rat[f'peak_bf16_{n}_within_bound_plus_10pct'])} |",
        f"| self-distillation step / FT step (exits {joined([r['layer'] for r in exits], '{}')}) "
        f"| {step['self_distillation'] / step['fine_tuning']:.2f} | | |",
        f"| exit latency / full model, exits {joined([r['layer'] for r in exits], '{}')} "
        f"| {joined(r['ratio_to_full'] for r in exits)} "
        f"| within 10 % of (FE + k layers) / (FE + 12 layers) = {joined(r['expected_ratio'] for r in exits)} "
        f"| {_ok(sd['all_within_tolerance'])} |",
        f"| data pipeline, first pass, x real time per core (lowest: {first['rate']} Hz source, num_proc "
        f"{first['num_proc']}) | {first['first_pass']['x_real_time_per_core']:.0f} | >= 100 "
        f"| {_ok(data['targets']['first_pass_at_least_100x'])} |",
        f"| data pipeline, later epochs from the datasets cache, x real time per core (lowest) "
        f"| {later['later_epoch']['x_real_time_per_core']:.0f} | >= 1000 "
        f"| {_ok(data['targets']['later_epoch_at_least_1000x'])} |",
        *_rtf_rows(report.get("real_time_factor")),
    ]
    return "\n".join(rows)


def _rtf_rows(rtf) -> list[str]:
    """Single-clip speed on one CPU thread; absent from older results."""
    if rtf is None:
        return []
    by_name = {row["model"]: row for row in rtf["rows"]}
    compact, base = by_name["compact log-mel CNN student"], by_name["wav2vec2-base"]
    exits = [row for name, row in by_name.items() if name.startswith("self-distillation exit")]
    exit_names = " / ".join(row["model"].rsplit(" ", 1)[1] for row in exits)
    exit_speeds = " / ".join(f"{row['real_time_factor']:.1f}" for row in exits)
    return [
        f"| compact student speed / wav2vec2-base speed, one {rtf['config']['clip_seconds']:g} s clip, 1 CPU thread "
        f"({compact['real_time_factor']:.0f} vs {base['real_time_factor']:.1f} x real time) "
        f"| {compact['speedup_over_wav2vec2_base']:.0f} | >= {rtf['target']['compact_speedup_at_least']:g} "
        f"| {_ok(rtf['target']['met'])} |",
        f"| self-distillation exits {exit_names}, x real time, one clip, 1 CPU thread | {exit_speeds} | | |",
    ]


def _language_rows(rat: dict, teachers: list, joined) -> list[str]:
    """MTKD with language routing (one teacher forward per sample) beside cosine; absent from older results."""
    if f"mtkd_language_{teachers[0]}_over_ft" not in rat:
        return []
    routed = joined(rat[f"mtkd_language_{t}_over_ft"] for t in teachers)
    cosine = joined(rat[f"mtkd_online_{t}_over_ft"] for t in teachers)
    return [f"| MTKD step / FT step, {joined(teachers, '{}')} online fp32 teachers, routed by language "
            f"| {routed} | about flat in N (cosine, every teacher on every sample: {cosine}) | |"]


def markdown(report: dict) -> str:
    info, clock = report["machine"], report["clock"]
    mtkd, sd, data = report["mtkd"], report["self_distillation"], report["data_pipeline"]
    res, rat = mtkd["results"], mtkd["ratios"]
    key = f"{clock}_s"
    ft = res["ft"][key]
    n = mtkd["config"]["main_teachers"]
    lines = [
        f"# Benchmarks: {report['machine_name']}",
        "",
        f"{info['cpu']}"
        + (f" ({', '.join(info['cpu_bf16_flags'])})" if info.get("cpu_bf16_flags") else "")
        + f", {info['cpu_cores']} cores"
        + (f", GPU {info['gpu']}" if info.get("gpu") else "")
        + f"; torch {info['torch']}; {report['date']}. Load average {info['load_average_at_start'][0]:.1f} at the "
          f"start, "
        f"{report['load_average_at_end'][0]:.1f} at the end"
        + (" (a shared machine: other jobs ran alongside, so the ratios use CPU time)." if clock == "cpu" else "."),
        "",
        f"wav2vec2-base shapes, random init; batch {mtkd['config']['batch']} x {mtkd['config']['seconds']:g} s; "
        f"{mtkd['config']['statistic']} of {mtkd['config']['steps']} interleaved rounds after a warm-up round; "
        f"{clock} time; "
        f"{mtkd['config']['threads']} torch thread(s) per process; feature encoder frozen; AdamW.",
        "",
        summary_table(report),
        "",
        "## Training step",
        "",
        "| configuration | step (ms) | / FT step | target | met | peak memory (GiB) |",
        "|---|---:|---:|---|---|---:|",
        f"| FT (SERTrainer) | {_ms(ft)} | 1.00 | | | {res['ft']['peak_bytes'] / 2**30:.2f} |",
        f"| one teacher's forward alone | {_ms(res['teacher_fwd'][key])} | {res['teacher_fwd'][key] / ft:.2f} | | | |",
    ]
    for t in mtkd["config"]["teachers"]:
        r = res[f"mtkd_online_{t}"]
        lines.append(
            f"| MTKD, {t} online fp32 teacher{'s' if t > 1 else ''} | {_ms(r[key])} | "
            f"{rat[f'mtkd_online_{t}_over_ft']:.2f} "
            f"| <= 1.1 x (1 + {t} fwd/FT) = {1.1 * rat[f'mtkd_online_{t}_bound']:.2f} "
            f"| {_ok(rat[f'mtkd_online_{t}_within_bound_plus_10pct'])} | {r['peak_bytes'] / 2**30:.2f} |"
        )
    for t in mtkd["config"]["teachers"]:
        r = res.get(f"mtkd_language_{t}")
        if r is not None:  # absent from older results
            lines.append(
                f"| MTKD, {t} online fp32 teacher{'s' if t > 1 else ''} routed by language | {_ms(r[key])} "
                f"| {rat[f'mtkd_language_{t}_over_ft']:.2f} | about flat in N | | {r['peak_bytes'] / 2**30:.2f} |"
            )
    mem_bound = res["ft"]["peak_bytes"] + n * res["teacher_fwd"]["teacher_bf16_bytes"]
    lines += [
        f"| MTKD, {n} online bf16 teachers | {_ms(res[f'mtkd_bf16_{n}'][key])} | {rat[f'mtkd_bf16_{n}_over_ft']:.2f} "
        f"| peak <= 1.1 x (FT peak + {n} bf16 teachers) = {1.1 * mem_bound / 2**30:.2f} GiB "
        f"| {_ok(rat[f'peak_bf16_{n}_within_bound_plus_10pct'])} | {res[f'mtkd_bf16_{n}']['peak_bytes'] / 2**30:.2f} "
        f"|",
        f"| MTKD from the teacher-logit cache ({n} teachers) | {_ms(res[f'mtkd_cache_{n}'][key])} "
        f"| {rat[f'mtkd_cache_{n}_over_ft']:.2f} | <= 1.10 | {_ok(rat[f'mtkd_cache_{n}_within_1_10'])} "
        f"| {res[f'mtkd_cache_{n}']['peak_bytes'] / 2**30:.2f} |",
    ]
    step = {name: clocks[clock] for name, clocks in sd["training"]["summary_s"].items()}
    setup = sd["setup"]
    lines += [
        f"| self-distillation, exits {setup['exit_layers']} (block {setup['exit_block']}) "
        f"| {_ms(step['self_distillation'])} | {step['self_distillation'] / step['fine_tuning']:.2f} "
        f"(to FT timed beside it: {_ms(step['fine_tuning'])} ms) | | | |",
        "",
        "## Exit latency (self-distillation model, inference)",
        "",
        f"Batch {setup['inference']['batch_size']} x {setup['inference']['clip_seconds']:g} s, "
        f"{setup['statistic']} of {setup['inference']['repeats']} interleaved repeats, {setup['clock']} time. "
        f"Expected ratio: "
        "(feature encoder + k layers) / (feature encoder + 12 layers), from the same run; target: within 10 %.",
        "",
        "| head | layer | parameters | latency (ms) | / full model | expected | gap | met |",
        "|---|---:|---:|---:|---:|---:|---:|---|",
    ]
    exit_clock = f"{setup['clock']}_s"
    for row in sd["exits"]:
        lines.append(
            f"| {row['head']} | {row['layer']} | {row['parameters'] / 1e6:.1f} M | {_ms(row[exit_clock])} "
            f"| {row['ratio_to_full']:.3f} | {row['expected_ratio']:.3f} | {row['relative_gap']:+.1%} | "
            f"{_ok(row['within_tolerance'])} |"
        )
    corpora = ", ".join(
        f"{c['clips']} clips, {c['audio_s']:.0f} s of audio at {rate} Hz" for rate, c in data["corpora"].items()
    )
    targets = data["targets"]
    lines += [
        "",
        "## Data pipeline (decode + resample to 16 kHz + features)",
        "",
        f'{next(iter(data["corpora"].values()))["origin"]}: {corpora}. "x real time per core" = audio seconds / CPU '
        f'seconds '
        "(the process and its datasets workers). first_pass = decode + resample + crop + datasets cache write + "
        "features; later_epoch = rows read back from the datasets cache + features; rerun = a second run's "
        "prepare step (cache hit); baseline = soundfile + torchaudio resampling + features, clip by clip.",
        "",
        _data_markdown(data),
        "",
        f"First pass >= 100x real time per core: {_ok(targets['first_pass_at_least_100x'])} "
        f"(lowest {targets['first_pass_min_x_real_time_per_core']:.0f}x); later epochs >= 1000x: "
        f"{_ok(targets['later_epoch_at_least_1000x'])} (lowest "
        f"{targets['later_epoch_min_x_real_time_per_core']:.0f}x).",
    ]
    if report.get("real_time_factor") is not None:  # absent from older results
        sys.path.insert(0, HERE)
        import real_time_factor

        lines += ["", "## Real-time factor (single clip, one CPU thread)", "",
                  real_time_factor.markdown(report["real_time_factor"])]
    return "\n".join(lines) + "\n"


def _data_markdown(data: dict) -> str:
    sys.path.insert(0, HERE)
    import data_pipeline

    return data_pipeline.markdown(data)


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--machine", default=None, help="Name of the result files (default: from the hardware).")
    parser.add_argument("--results-dir", default=os.path.join(HERE, "results"))
    parser.add_argument("--steps", type=int, default=5, help="Timed training steps (rounds) per configuration.")
    parser.add_argument("--repeats", type=int, default=15, help="Timed inference repeats per exit.")
    parser.add_argument(
        "--statistic",
        choices=["min", "median"],
        default=None,
        help="Summary over rounds (default: min on CPU, where interference only adds time; median on GPU).",
    )
    parser.add_argument("--max-clips", type=int, default=0, help="Data pipeline: at most this many clips (0: all).")
    parser.add_argument("--render", default=None, help="Only rewrite the .md next to this results .json.")
    args = parser.parse_args(argv)
    if args.render:
        with open(args.render) as handle:
            report = json.load(handle)
        with open(os.path.splitext(args.render)[0] + ".md", "w") as handle:
            handle.write(markdown(report))
        return report

    info = machine_info(args.device)
    clock = "cpu" if args.device == "cpu" else "wall"
    statistic = args.statistic or ("min" if args.device == "cpu" else "median")
    threads = ["--threads", "1"] if args.device == "cpu" else []
    with tempfile.TemporaryDirectory() as tmp:
        mtkd = _script("mtkd_step_time.py", ["--teachers", "1", "3", "5", "--steps", str(args.steps), "--device",
                                             args.device, "--clock", clock, "--statistic", statistic, *threads],
                       os.path.join(tmp, "mtkd.json"))
        sd = _script(
            "self_distillation_latency.py",
            [
                "--device",
                args.device,
                "--clock",
                clock,
                "--statistic",
                statistic,
                "--repeats",
                str(args.repeats),
                "--train-steps",
                str(args.steps),
                *threads,
            ],
            os.path.join(tmp, "sd.json"),
        )
        data = _script("data_pipeline.py", ["--max-clips", str(args.max_clips)], os.path.join(tmp, "data.json"))
        rtf = _script("real_time_factor.py", [], os.path.join(tmp, "rtf.json"))
    report = {
        "machine_name": args.machine or default_machine_name(info),
        "machine": info,
        "date": datetime.date.today().isoformat(),
        "clock": clock,
        "load_average_at_end": os.getloadavg(),
        "mtkd": mtkd,
        "self_distillation": sd,
        "data_pipeline": data,
        "real_time_factor": rtf,
    }
    os.makedirs(args.results_dir, exist_ok=True)
    base = os.path.join(args.results_dir, report["machine_name"])
    with open(base + ".json", "w") as handle:
        json.dump(report, handle, indent=2)
    text = markdown(report)
    with open(base + ".md", "w") as handle:
        handle.write(text)
    print("\n" + text)
    print(f"Wrote {base}.md and {base}.json")
    return report


if __name__ == "__main__":
    main()
