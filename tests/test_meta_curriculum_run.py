"""The demo meta_curriculum recipe through the entries everyone uses, with tiny settings: `hf-mtkd pipeline` with a
teacher stage before it, and `hf-mtkd train` on the recipe file itself, each to a finished run with its card."""

import json
from pathlib import Path

import numpy as np
import pytest
import yaml
from huggingface_hub import ModelCard
from transformers import AutoModelForAudioClassification, pipeline

from testing_utils import LABELS, tiny_recipe, write_tone_corpus
from hf_mtkd.cli.main import main as cli_main
from hf_mtkd.inference import EmotionPredictor
from hf_mtkd.config_parser import load_recipe
from hf_mtkd.meta_curriculum.report import STAGE_TITLES, STAGES, stage_results_of
from hf_mtkd.metrics.single_runs import collect_runs
from hf_mtkd.run_summary import RunSummary

RECIPE = Path(__file__).resolve().parents[1] / "recipes" / "demo" / "meta_curriculum.yaml"
# The demo recipe's model and method settings as they are; only the amount of training is cut.
TINY_TRAINING = {
    "num_train_epochs": 1, "meta_epochs": 1, "curriculum_episodes": 2, "curriculum_steps_per_episode": 2,
    "per_device_train_batch_size": 8, "n_bootstrap": 10, "report_to": "none",
}
EARLIER_STAGES = [stage for stage in STAGES if stage != "updated_student"]


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    # 4 speakers per language: two train each language (32 clips), enough for a quiz clip per label and language.
    return write_tone_corpus(tmp_path_factory.mktemp("mc_corpus"), speakers_per_language=4)


@pytest.fixture(scope="module")
def pipeline_run(corpus, tmp_path_factory):
    """`hf-mtkd pipeline`: a fine-tuned teacher stage, then the demo recipe's meta_curriculum stage on it."""
    root = tmp_path_factory.mktemp("mc_pipeline")
    meta = {key: value for key, value in load_recipe(RECIPE).items() if key not in ("output_dir", "demo_corpus")}
    meta.update(TINY_TRAINING, data_dir=str(corpus), teacher_model_name_or_path="{output_dir}/teacher")
    teacher = tiny_recipe(corpus, "unused", max_duration_seconds=1.3)
    teacher.pop("output_dir")
    spec = {"stages": {"teacher": teacher, "meta_curriculum": meta}, "compare": ["teacher", "meta_curriculum"]}
    (root / "pipeline.yaml").write_text(yaml.safe_dump(spec, sort_keys=False))  # stages in order
    return root, root / "pipeline.yaml"


def test_pipeline_with_a_teacher_stage_runs_the_demo_recipe_to_a_finished_run(pipeline_run, capsys):
    root, config = pipeline_run
    cli_main(["pipeline", "--config", str(config), "--output_dir", str(root / "out")])
    printed = capsys.readouterr().out
    out = root / "out" / "meta_curriculum"
    summary = RunSummary.load(out / "run_summary.json")
    assert summary.method == "meta_curriculum" and summary.sizes["quiz"] == 8 and summary.sizes["train"] == 24
    # S': one source, the shared reports; the stages before it: the summary's stage_results extra.
    test = json.loads((out / "test_metrics.json").read_text())
    assert summary.results["test"] == test and summary.results["validation"] == json.loads(
        (out / "validation_metrics.json").read_text()
    )
    assert sorted(summary["stage_results"]) == sorted(EARLIER_STAGES)
    assert not list(out.glob("stage_results*"))  # no second file that could disagree with the reports
    joined = stage_results_of(summary, "test")
    assert (
        list(joined) == EARLIER_STAGES + ["updated_student"] and joined["updated_student"] is summary.results["test"]
    )
    for stage, result in joined.items():
        assert (
            result["overall"]["n"] == 16 and set(result["per_language"]) == {"en", "fi"} and result["overall"]["UR_ci"]
        )
    buckets = summary["curriculum"]["buckets"]  # in action order, easy (most confident teacher) first
    lows = [float(b["name"].split()[-1].split("-")[0]) for b in buckets]
    assert lows == sorted(lows, reverse=True) and sum(b["size"] for b in buckets) == summary.sizes["train"]
    assert [len(counts) for counts in summary["curriculum"]["actions_per_episode"]] == [len(buckets)] * 2
    # The end of the pipeline: the comparison table (both stages) and the method's per-stage tables.
    lines = printed.splitlines()
    header = next(i for i, line in enumerate(lines) if line.startswith("model ") and "overall UR" in line)
    assert [line.split()[0] for line in lines[header + 2:header + 4]] == ["teacher", "meta_curriculum"]
    for split, n in (("validation", 16), ("test", 16)):
        assert f"Meta-curriculum stages of meta_curriculum: {split} ({n} clips)" in printed
    tail = printed[printed.index("Meta-curriculum stages of meta_curriculum: test"):]
    assert "updated student S' (curriculum)" in tail and "vs distilled" in tail and "UR en" in tail
    ur = f"{test['overall']['UR'] * 100:.1f} [{test['overall']['UR_ci'][0] * 100:.1f}"
    assert (
        ur
        in tail.splitlines()[[i for i, line in enumerate(tail.splitlines()) if line.startswith("updated student")][0]]
    )
    # A committed results table of this run has a row per stage, the final one the shared test report's numbers.
    runs = json.loads(collect_runs({"meta": out}, root / "results" / "meta").read_text())
    assert [row["model"] for row in runs["rows"]] == [f"meta: {STAGE_TITLES[stage]}" for stage in STAGES]
    assert runs["rows"][-1]["test"]["UR"] == test["overall"]["UR"]
    assert runs["rows"][0]["validation"]["UR"] == summary["stage_results"]["teacher"]["validation"]["overall"]["UR"]


def test_train_entry_runs_the_demo_recipe_to_a_finished_run_with_its_card(pipeline_run, corpus, capsys):
    root, _ = pipeline_run
    teacher = root / "out" / "teacher"
    if not (teacher / "run_summary.json").exists():
        pytest.skip("needs the teacher of the pipeline test (run the module)")
    out = root / "train"
    flags = ["--demo_corpus", "false", "--data_dir", str(corpus), "--teacher_model_name_or_path", str(teacher),
             "--output_dir", str(out)]
    flags += [token for key, value in TINY_TRAINING.items() for token in (f"--{key}", str(value))]
    cli_main(["train", "--config", str(RECIPE), *flags])
    printed = capsys.readouterr().out
    assert (
        "Stages before the curriculum: test (16 clips)" in printed and "Meta-curriculum S': test (16 clips)" in printed
    )
    for name in ("config.json", "model.safetensors", "preprocessor_config.json", "curriculum_actions.png",
                 "test_confusion_matrix_overall.png", "validation_metrics.json", "test_metrics.json",
                 "training_args.json", "run_summary.json", "README.md"):
        assert (out / name).exists(), name
    assert (out / "stages" / "student").is_dir() and (out / "stages" / "distilled_student").is_dir()

    summary = RunSummary.load(out / "run_summary.json")
    card = ModelCard((out / "README.md").read_text())
    assert {"meta_curriculum", "curriculum-learning"} <= set(card.data.tags)
    assert card.data.eval_results and card.data.eval_results[0].metric_value == pytest.approx(
        round(summary.results["test"]["overall"]["UR"] * 100, 1), abs=0.051)
    text = card.text
    assert "trained with **meta-teacher + curriculum knowledge distillation**" in text
    assert "import hf_mtkd  # registers this model's architecture" in text  # the template's Quick start
    assert "## Loading this model" in text and "run `import hf_mtkd` before" in text
    assert "## Results of every stage" in text and "| updated student S' (curriculum) |" in text
    assert "curriculum_actions.png" in text and "@article{zhao_kd_ser," in text and "| kd_beta | 1 |" in text
    s_prime = summary.results["test"]["overall"]
    assert f"{s_prime['UR'] * 100:.1f} [{s_prime['UR_ci'][0] * 100:.1f}, {s_prime['UR_ci'][1] * 100:.1f}]" in text

    # The run's model as users load it.
    model = AutoModelForAudioClassification.from_pretrained(out)
    assert type(model).__name__ == "WaveformStudentForAudioClassification" and model.config.id2label == dict(
        enumerate(LABELS)
    )
    clip = sorted(corpus.glob("*.wav"))[0]
    assert {p["label"] for p in pipeline("audio-classification", model=str(out))(str(clip))} <= set(LABELS)
    predicted = EmotionPredictor(out, chunk_seconds=1.3).predict(clip)  # hf-mtkd predict's engine
    assert predicted.label in LABELS and sum(predicted.scores.values()) == pytest.approx(1.0, abs=1e-5)
    assert np.isfinite(list(predicted.scores.values())).all()
    with pytest.raises(FileExistsError, match="finished run"):
        cli_main(["train", "--config", str(RECIPE), *flags])
