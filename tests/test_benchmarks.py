"""run_all.py renders a report into its tables with the right numbers.

The report is written here by hand, with round numbers: the test never reads benchmarks/results/, which a
rerun of the benchmarks rewrites on whatever machine it ran.
"""

import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

import run_all  # noqa: E402

GIB = 2**30


def report() -> dict:
    """A CPU report for 1 and 3 teachers: FT step 1.0 s, teacher forward 0.25 s, MTKD 1.25 / 1.75 s."""
    timing = lambda seconds, peak=GIB: {"cpu_s": seconds, "wall_s": seconds * 1.1, "peak_bytes": peak}  # noqa: E731
    data_run = lambda rate, num_proc, first, later: {  # noqa: E731
        "rate": rate, "num_proc": num_proc,
        "first_pass": {"clips_per_s": 10.0, "x_real_time": first * num_proc, "x_real_time_per_core": first},
        "later_epoch": {"clips_per_s": 100.0, "x_real_time": later * num_proc, "x_real_time_per_core": later}}
    return {
        "machine_name": "hand-made", "date": "2026-01-01", "clock": "cpu", "load_average_at_end": [1.0, 1.0, 1.0],
        "machine": {"cpu": "test CPU", "cpu_cores": 2, "torch": "2.x", "load_average_at_start": [0.5, 0.5, 0.5]},
        "mtkd": {
            "config": {"teachers": [1, 3], "main_teachers": 3, "batch": 2, "seconds": 1.0, "steps": 5,
                       "statistic": "min", "threads": 1},
            "results": {"ft": timing(1.0, 2 * GIB), "teacher_fwd": {**timing(0.25), "teacher_bf16_bytes": GIB // 4},
                        "mtkd_online_1": timing(1.25), "mtkd_online_3": timing(1.75), "mtkd_bf16_3": timing(1.5),
                        "mtkd_cache_3": timing(0.95)},
            "ratios": {"mtkd_online_1_over_ft": 1.25, "mtkd_online_1_bound": 1.25,
                       "mtkd_online_1_within_bound_plus_10pct": True,
                       "mtkd_online_3_over_ft": 1.75, "mtkd_online_3_bound": 1.75,
                       "mtkd_online_3_within_bound_plus_10pct": True,
                       "mtkd_bf16_3_over_ft": 1.5, "mtkd_cache_3_over_ft": 0.95, "mtkd_cache_3_within_1_10": True,
                       "peak_bf16_3_over_bound": 1.2, "peak_bf16_3_within_bound_plus_10pct": False},
        },
        "self_distillation": {
            "setup": {"exit_layers": [3], "exit_block": "none", "clock": "cpu", "statistic": "min",
                      "inference": {"batch_size": 1, "clip_seconds": 2.0, "repeats": 3}},
            "exits": [{"head": "exit 3", "layer": 3, "parameters": 30e6, "cpu_s": 0.2, "ratio_to_full": 0.5,
                       "expected_ratio": 0.52, "relative_gap": -0.04, "within_tolerance": True},
                      {"head": "deepest", "layer": 12, "parameters": 90e6, "cpu_s": 0.4, "ratio_to_full": 1.0,
                       "expected_ratio": 1.0, "relative_gap": 0.0, "within_tolerance": True}],
            "all_within_tolerance": True,
            "training": {"summary_s": {"self_distillation": {"cpu": 1.1}, "fine_tuning": {"cpu": 1.0}}},
        },
        "data_pipeline": {
            "runs": [data_run(16000, 1, 500.0, 6000.0), data_run(48000, 1, 300.0, 5000.0)],
            "targets": {"first_pass_at_least_100x": True, "later_epoch_at_least_1000x": True,
                        "first_pass_min_x_real_time_per_core": 300.0, "later_epoch_min_x_real_time_per_core": 5000.0},
            "corpora": {"16000": {"clips": 10, "audio_s": 30.0, "origin": "test clips"}},
        },
    }


def test_summary_table_holds_the_reports_numbers():
    rows = run_all.summary_table(report()).splitlines()
    assert rows[0] == "| ratio | measured | target | met |"
    assert ("| MTKD step / FT step, 1 / 3 online fp32 teachers | 1.25 / 1.75 | <= 1.1 x (1 + N x teacher forward / "
            "FT step) = 1.38 / 1.93 | yes |") in rows
    assert "| MTKD step from the teacher-logit cache / FT step | 0.95 | <= 1.10 | yes |" in rows
    assert ("| peak memory with 3 bf16 teachers / (FT peak + 3 bf16 teachers' weights) | 1.20 | <= 1.10 | **no** |"
            in rows)
    assert "| self-distillation step / FT step (exits 3) | 1.10 | | |" in rows
    # The lowest rate of each pass is the one quoted.
    assert any(row.startswith("| data pipeline, first pass") and "48000 Hz" in row and "| 300 "
                                                                                       "|" in row for row in rows)
    assert any(row.startswith("| data pipeline, later epochs") and "| 5000 |" in row for row in rows)


def test_markdown_report_holds_the_summary_and_every_row():
    text = run_all.markdown(report())
    assert text.startswith("# Benchmarks: hand-made\n") and run_all.summary_table(report()) in text
    assert "| MTKD, 3 online fp32 teachers | 1750 | 1.75 |" in text
    assert "| exit 3 | 3 | 30.0 M | 200 | 0.500 | 0.520 | -4.0% | yes |" in text


def test_threads_benchmark_records_every_cell_and_judges_auto(tmp_path):
    import threads

    out = tmp_path / "threads.json"
    assert threads.main(["--output", str(out), "--seconds", "0.05", "--models", "compact student",
                         "--threads", "1", "2"]) == 0
    report = json.loads(out.read_text())
    assert {(c["condition"], c["threads"]) for c in report["cells"]} == {("quiet", 1), ("quiet", 2), ("busy", 1),
                                                                         ("busy", 2)}
    for verdict in report["auto"]:
        assert verdict["auto_threads"] == 1  # the compact student is small
        rates = {c["threads"]: c["steps_per_s"] for c in report["cells"] if c["condition"] == verdict["condition"]}
        assert verdict["best_over_auto"] == max(rates.values()) / rates[1]


def test_stage_step_clock_counts_cpu_seconds_per_step():
    import stage_step_time

    clock = stage_step_time.StepClock()
    clock.on_step_begin(None, None, None)
    sum(i * i for i in range(200_000))  # some CPU work inside the step
    clock.on_step_end(None, None, None)
    assert clock.steps == 1 and clock.seconds > 0
