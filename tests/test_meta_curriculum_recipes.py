"""The meta-curriculum recipes parse onto the method's dataclasses, hold the paper's Table 3 values, and the
parameter / latency benchmark runs (tiny shapes)."""

import json
import sys
from pathlib import Path

import pytest

from hf_mtkd.config_parser import load_recipe, parse_config
from hf_mtkd.registry import get_method

ROOT = Path(__file__).resolve().parents[1]
DATACLASSES = get_method("meta_curriculum").dataclass_types()
RECIPES = sorted((ROOT / "recipes").glob("*/meta_curriculum.yaml"))
TABLE_3 = {  # (lambda, tau1, alpha, beta, tau2, student epochs, meta epochs, episodes)
    "iemocap": (0.05, 0.07, 0.1, 100.0, 5.0, 30, 30, 100),
    "meld": (0.2, 1.0, 0.5, 100.0, 6.0, 100, 100, 100),
}


def test_every_dataset_has_a_recipe():
    assert {p.parent.name for p in RECIPES} >= {"demo", "emodb_ravdess", "iemocap", "meld"}


@pytest.mark.parametrize("path", RECIPES, ids=lambda p: p.parent.name)
def test_recipe_parses(path):
    recipe = load_recipe(path)
    assert recipe["method"] == "meta_curriculum"
    model_args, data_args, config = parse_config(DATACLASSES, str(path), recipe=recipe)
    assert model_args.model_type == "hf_mtkd_inverted_transformer" and config.teacher_model_name_or_path
    name = path.parent.name
    if name in TABLE_3:
        found = (
            config.supcon_lambda,
            config.supcon_temperature,
            config.kd_alpha,
            config.kd_beta,
            config.kd_temperature,
            config.num_train_epochs,
            config.meta_epochs,
            config.curriculum_episodes,
        )
        assert found == TABLE_3[name]
        assert (config.learning_rate, config.meta_learning_rate, config.curriculum_learning_rate) == (1e-4, 1e-3, 1e-3)
        assert (
            config.per_device_train_batch_size == 32
            and config.upstream_model_name_or_path == "facebook/hubert-large-ll60k"
        )
        assert config.max_frames == {"iemocap": 326, "meld": 224}[name]
    if name == "meld":
        assert config.metric_for_best_model == "weighted_f1"
    if name == "emodb_ravdess":
        assert config.difficulty_column == "intensity" and config.difficulty_levels == ["strong", "normal"]


def test_benchmark_runs_and_reports_ratios(tmp_path):
    sys.path.insert(0, str(ROOT / "benchmarks"))
    import meta_curriculum_size_latency as benchmark

    out = tmp_path / "bench.json"
    benchmark.main(["--tiny", "--clip-seconds", "0.3", "--repeats", "1", "--warmup", "0", "--output", str(out)])
    rows = {row["model"]: row for row in json.loads(out.read_text())["rows"]}
    assert set(rows) == {"teacher", "student", "export_hubert", "export_mel"}
    assert rows["teacher"]["parameters_over_teacher"] == 1.0
    assert rows["export_hubert"]["parameters"] > rows["student"]["parameters"] > 0
