"""The compact-student recipes smoke-run (one step) on fake corpora in their own layouts, like every recipe."""

import pytest

from hf_mtkd.config_parser import load_recipe
from hf_mtkd.registry import get_method
from hf_mtkd.training.run import run
from corpora_fakes import write_emodb, write_ravdess
from testing_utils import RECIPES, SMOKE

SMALL = {
    "config_overrides": {
        "num_mel_bins": 16,
        "conv_channels": [8, 8],
        "conv_kernels": [3, 3],
        "conv_strides": [2, 1],
        "classifier_hidden_size": 8,
        "spec_augment_freq_width": 4,
    }
}


@pytest.mark.parametrize("name", ["emodb_ravdess/logmel_cnn.yaml", "demo/logmel_cnn.yaml"])
def test_logmel_cnn_recipe_smoke(name, tone_corpus, tmp_path):
    recipe = load_recipe(RECIPES / name)
    recipe.update(SMALL, **SMOKE, output_dir=str(tmp_path / "out"))
    if "corpus" in recipe:
        recipe["corpus_root"] = [str(write_emodb(tmp_path / "emodb")), str(write_ravdess(tmp_path / "ravdess"))]
    else:
        recipe.update(demo_corpus=False, data_dir=str(tone_corpus))
    summary = run(get_method(recipe["method"]), recipe=recipe)
    assert summary["results"]["test"]["overall"]["n"] > 0
    assert (tmp_path / "out" / "preprocessor_config.json").exists()
