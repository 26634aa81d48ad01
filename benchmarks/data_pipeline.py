"""Throughput of hf_mtkd's data pipeline: decode + resample + features, in clips/s and times real time.

The corpus is EmoDB's FLAC files (16 kHz) from --source, or generated speech-band noise when that folder is
absent, written as an audiofolder at each rate in --rates (the 48 kHz copy makes the pipeline resample).
For every rate and every --num-proc, a fresh subprocess with an empty datasets cache times:

  index        load_raw_dataset on the audiofolder (file list + metadata; not audio)
  first_pass   prepare_audio_dataset (decode, resample to 16 kHz, downmix, crop, write the datasets cache)
               + features (Wav2Vec2FeatureExtractor through the training collator, batches of 8)
  later_epoch  one more pass over the prepared split: rows read back from the datasets cache + features
               (what every epoch after the first costs)
  rerun        prepare_audio_dataset again, as a second run does (a cache hit: no decoding)
  baseline     (num_proc 1 only) soundfile.read + torchaudio.functional.resample + features, clip by clip

Times are wall clock and CPU time (this process + its finished children, so datasets' worker processes
count); "x real time per core" = seconds of audio / CPU seconds, which a busy shared machine does not inflate.
Targets (issue: distributed/benchmarks): first pass >= 100x real time per core, later epochs >= 1000x.

    python benchmarks/data_pipeline.py --output data_pipeline.json
"""

from __future__ import annotations

import argparse
import csv
import glob
import json
import os
import resource
import subprocess
import sys
import tempfile
import time

import numpy as np

DEFAULT_SOURCE = os.path.join(os.path.dirname(__file__), "..", "..", "shared", "data", "emodb", "wav")
TARGET_RATE = 16000


def _cpu_now() -> float:
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def _timed(fn):
    wall, cpu = time.perf_counter(), _cpu_now()
    value = fn()
    return value, {"wall_s": time.perf_counter() - wall, "cpu_s": _cpu_now() - cpu}


def write_corpus(root: str, source: str, rate: int, max_clips: int) -> dict:
    """An audiofolder at `rate` (FLAC): links to the source files at their own rate, resampled copies otherwise."""
    import soundfile as sf

    os.makedirs(root, exist_ok=True)
    files = sorted(glob.glob(os.path.join(source, "*.flac")))[: max_clips or None] if os.path.isdir(source) else []
    rows, seconds = [], 0.0
    if files:
        import torch
        import torchaudio.functional as F

        for path in files:
            name = os.path.basename(path)
            label = name[5] if len(name) > 5 else "x"  # EmoDB: the emotion letter
            info = sf.info(path)
            if info.samplerate == rate:
                os.symlink(os.path.abspath(path), os.path.join(root, name))
            else:
                audio, source_rate = sf.read(path, dtype="float32")
                audio = F.resample(torch.from_numpy(audio), source_rate, rate).numpy()
                sf.write(os.path.join(root, name), audio, rate, format="FLAC")
            rows.append({"file_name": name, "label": label})
            seconds += info.duration
        origin = f"EmoDB ({source})"
    else:  # generated: speech-band noise bursts of 1-4 s
        rng = np.random.default_rng(0)
        for i in range(max_clips or 300):
            n = int(rate * rng.uniform(1.0, 4.0))
            audio = np.convolve(rng.standard_normal(n), np.ones(8) / 8, mode="same").astype(np.float32) * 0.1
            name = f"clip{i:04d}.flac"
            sf.write(os.path.join(root, name), audio, rate, format="FLAC")
            rows.append({"file_name": name, "label": "abcd"[i % 4]})
            seconds += n / rate
        origin = "generated noise (no EmoDB copy found)"
    with open(os.path.join(root, "metadata.csv"), "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=["file_name", "label"])
        writer.writeheader()
        writer.writerows(rows)
    return {"clips": len(rows), "audio_s": seconds, "rate": rate, "origin": origin}


def _feature_pass(dataset, collator, batch_size: int = 8) -> int:
    n = 0
    for start in range(0, len(dataset), batch_size):
        indices = list(range(start, min(start + batch_size, len(dataset))))
        rows = dataset.__getitems__(indices)  # how torch's DataLoader fetches a batch from a datasets.Dataset
        n += collator(rows)["input_values"].shape[0]
    return n


def measure(corpus: str, num_proc: int, baseline: bool, threads: int) -> dict:
    """Runs in a subprocess whose HF_DATASETS_CACHE is empty."""
    import torch
    from transformers import Wav2Vec2FeatureExtractor

    from hf_mtkd.arguments import DataArguments
    from hf_mtkd.data import AudioClassificationCollator, load_raw_dataset, prepare_audio_dataset

    torch.set_num_threads(threads)
    data_args = DataArguments(data_dir=corpus, max_duration_seconds=60.0,
                              preprocessing_num_workers=num_proc if num_proc > 1 else None)
    fe = Wav2Vec2FeatureExtractor()
    collator = AudioClassificationCollator(feature_extractor=fe, sampling_rate=TARGET_RATE)
    out = {}
    raw, out["index"] = _timed(lambda: load_raw_dataset(data_args))
    labels = sorted(set(raw["train"]["label"]))
    prepared, out["prepare"] = _timed(lambda: prepare_audio_dataset(raw, data_args, TARGET_RATE, labels))
    _, out["features"] = _timed(lambda: _feature_pass(prepared["train"], collator))
    out["first_pass"] = {k: out["prepare"][k] + out["features"][k] for k in ("wall_s", "cpu_s")}
    n, out["later_epoch"] = _timed(lambda: _feature_pass(prepared["train"], collator))
    _, out["rerun"] = _timed(lambda: prepare_audio_dataset(raw, data_args, TARGET_RATE, labels))
    out["clips"] = n
    if baseline:
        import soundfile as sf
        import torchaudio.functional as F

        with open(os.path.join(corpus, "metadata.csv"), newline="") as handle:
            paths = [os.path.join(corpus, row["file_name"]) for row in csv.DictReader(handle)]

        def plain():
            waveforms = []
            for path in paths:
                audio, rate = sf.read(path, dtype="float32", always_2d=True)
                audio = torch.from_numpy(audio.mean(axis=1))
                if rate != TARGET_RATE:
                    audio = F.resample(audio, rate, TARGET_RATE)
                waveforms.append(audio.numpy())
            for start in range(0, len(waveforms), 8):
                fe(waveforms[start : start + 8], sampling_rate=TARGET_RATE, padding="longest", return_tensors="pt")

        _, out["baseline"] = _timed(plain)
    return out


def run(args) -> dict:
    report = {"config": {k: v for k, v in vars(args).items() if not k.startswith("_")}, "corpora": {}, "runs": []}
    print(HEADER, flush=True)
    with tempfile.TemporaryDirectory() as work:
        for rate in args.rates:
            corpus = os.path.join(work, f"corpus_{rate}")
            info = write_corpus(corpus, args.source, rate, args.max_clips)
            report["corpora"][str(rate)] = info
            for num_proc in args.num_proc:
                cache = os.path.join(work, f"cache_{rate}_{num_proc}")
                env = {**os.environ, "HF_DATASETS_CACHE": cache, "HF_DATASETS_OFFLINE": "1", "HF_HUB_OFFLINE": "1",
                       "OMP_NUM_THREADS": str(args.threads)}
                cmd = [sys.executable, os.path.abspath(__file__), "--_one", corpus, "--_num_proc", str(num_proc),
                       "--threads", str(args.threads)] + (["--_baseline"] if num_proc == 1 else [])
                result = subprocess.run(cmd, env=env, check=True, capture_output=True, text=True)
                measured = json.loads(result.stdout.strip().splitlines()[-1])
                row = {"rate": rate, "num_proc": num_proc, "clips": info["clips"], "audio_s": info["audio_s"]}
                for stage in ("index", "prepare", "features", "first_pass", "later_epoch", "rerun", "baseline"):
                    if stage in measured:
                        m = measured[stage]
                        row[stage] = {**m, "clips_per_s": info["clips"] / m["wall_s"],
                                      "x_real_time": info["audio_s"] / m["wall_s"],
                                      "x_real_time_per_core": info["audio_s"] / max(m["cpu_s"], 1e-9)}
                report["runs"].append(row)
                print(markdown_row(row), flush=True)
    first = [r["first_pass"]["x_real_time_per_core"] for r in report["runs"]]
    later = [r["later_epoch"]["x_real_time_per_core"] for r in report["runs"]]
    report["targets"] = {
        "first_pass_min_x_real_time_per_core": min(first),
        "first_pass_at_least_100x": min(first) >= 100,
        "later_epoch_min_x_real_time_per_core": min(later),
        "later_epoch_at_least_1000x": min(later) >= 1000,
    }
    return report


HEADER = ("| source rate | num_proc | stage | clips/s (wall) | x real time (wall) | x real time per core (CPU) |\n"
          "|---:|---:|---|---:|---:|---:|")


def markdown_row(row: dict) -> str:
    lines = []
    for stage in ("first_pass", "later_epoch", "rerun", "baseline"):
        if stage in row:
            m = row[stage]
            lines.append(f"| {row['rate']} | {row['num_proc']} | {stage} | {m['clips_per_s']:.0f} | "
                         f"{m['x_real_time']:.0f} | {m['x_real_time_per_core']:.0f} |")
    return "\n".join(lines)


def markdown(report: dict) -> str:
    return "\n".join([HEADER] + [markdown_row(row) for row in report["runs"]])


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--source", default=os.path.normpath(DEFAULT_SOURCE), help="Folder of FLAC files (EmoDB).")
    parser.add_argument("--rates", type=int, nargs="+", default=[16000, 48000], help="Rates of the corpus copies.")
    parser.add_argument("--num-proc", type=int, nargs="+", default=[1, 2], help="datasets.map num_proc values.")
    parser.add_argument("--max-clips", type=int, default=0, help="Use at most this many clips (0: all).")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--output", default=None)
    parser.add_argument("--_one", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--_num_proc", type=int, default=1, help=argparse.SUPPRESS)
    parser.add_argument("--_baseline", action="store_true", help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def main(argv=None) -> dict:
    args = parse_args(argv)
    if args._one:
        print(json.dumps(measure(args._one, args._num_proc, args._baseline, args.threads)))
        return {}
    report = run(args)
    print("\n" + json.dumps(report["targets"], indent=2))
    if args.output:
        with open(args.output, "w") as handle:
            json.dump(report, handle, indent=2)
    return report


if __name__ == "__main__":
    main()
