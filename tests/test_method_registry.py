"""The method registry from the outside: methods defined in this file (no edit to the package) run through the
entry `hf-mtkd train` uses, to a finished run with its card, and through a multi-stage run.

`toy_kd` uses every hook of the standard Trainer flow: its own training arguments, a split and a column it
adds, its own collators and a batch side key its trainer consumes, summary extras, a card section, a paper, and a
table printed at the end of a multi-stage run. `toy_centroid` owns its fitting (no Trainer, no torch model:
a nearest-centroid classifier on waveform statistics) and hands back a predictor, and still gets the same
reports, summary, card and comparison-table row. A third method comes from an installed package's entry point.
"""

from __future__ import annotations

import dataclasses
import json
import sys
import textwrap
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from datasets import DatasetDict
from huggingface_hub import ModelCard

from testing_utils import tiny_recipe
from hf_mtkd.cli.main import main as cli_main
from hf_mtkd.data import WAVEFORM, AudioClassificationCollator
from hf_mtkd.registry import (
    CardSection,
    MethodInfo,
    Paper,
    get_method,
    get_method_class,
    method_names,
    register_method,
    unregister_method,
)
from hf_mtkd.run_summary import RunSummary
from hf_mtkd.training import SERTrainer, SERTrainingArguments
from hf_mtkd.training.method import Method, SelfFittingMethod

TOY_PAPER = Paper(title="Loudness-aware toy distillation", authors="A. Tester and B. Tester",
                  citation="@misc{toy2024,\n  title={Loudness-aware toy distillation}\n}")


# ------------------------------------------------------------------------------------ toy_kd: the Trainer flow


@dataclass
class ToyConfig(SERTrainingArguments):
    loudness_weight: float = field(default=0.1, metadata={"help": "Weight of the loudness term."})
    quiz_size: int = field(default=4, metadata={"help": "Training clips moved to the quiz split."})

    def __post_init__(self):
        super().__post_init__()
        if self.loudness_weight < 0:
            raise ValueError(f"loudness_weight must be >= 0, got {self.loudness_weight}.")


@dataclass
class LoudnessCollator(AudioClassificationCollator):
    """The student's inputs plus each clip's RMS (a side key the model never sees)."""

    def __call__(self, rows):
        batch = super().__call__(rows)
        batch["rms"] = torch.tensor([float(row["rms"]) for row in rows], dtype=torch.float32)
        return batch


class ToyTrainer(SERTrainer):
    _name = "toy loudness-aware distillation"
    _description = "Cross-entropy plus a term tying the logit norm to the clip's loudness (a test method)."
    _paper = TOY_PAPER
    _tag_names = ("toy_kd", "toy-tag")
    side_keys = SERTrainer.side_keys + ("rms",)

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        model_inputs, side = self.split_inputs(inputs)  # the model would refuse an `rms` argument
        outputs = model(**model_inputs)
        term = ((outputs.logits.norm(dim=-1) - side["rms"]) ** 2).mean()
        self.record("rms_term", term)
        loss = outputs.loss + self.args.loudness_weight * term
        return (loss, outputs) if return_outputs else loss


class ToyKDMethod(Method):
    name = "toy_kd"
    display_name = "ToyKD"
    training_args_class = ToyConfig
    trainer_class = ToyTrainer

    def prepare_splits(self, setup, splits, *, model, feature_extractor):
        carved = splits["train"].train_test_split(test_size=setup.training_args.quiz_size, seed=0)
        out = DatasetDict({**splits, "train": carved["train"], "quiz": carved["test"]})
        add_rms = lambda row: {"rms": float(np.sqrt(np.mean(np.square(row[WAVEFORM]))))}  # noqa: E731
        return DatasetDict({name: ds.map(add_rms) for name, ds in out.items()})

    def make_collators(self, setup, splits, *, feature_extractor):
        student, evaluation = super().make_collators(setup, splits, feature_extractor=feature_extractor)
        return (LoudnessCollator(**{f.name: getattr(student, f.name) for f in dataclasses.fields(student)}),
                LoudnessCollator(**{f.name: getattr(evaluation, f.name) for f in dataclasses.fields(evaluation)}))

    def summary_extras(self, setup, fitted, *, splits, feature_extractor, collators):
        output = fitted.predict(splits["quiz"])
        correct = (output.predictions.argmax(-1) == np.asarray(splits["quiz"]["labels"])).mean()
        return {"quiz_accuracy": float(correct)}

    def card_sections(self, setup, summary):
        return [CardSection("Quiz split", f"{summary.sizes['quiz']} training clips were held out as a quiz; "
                                          f"accuracy there: {100 * summary['quiz_accuracy']:.1f}%.")]

    def multi_stage_tables(self, stage, summary):
        return [f"Toy quiz accuracy ({stage}): {summary['quiz_accuracy']:.3f}"]


# ------------------------------------------------------------------------------ toy_centroid: its own fitting


def clip_features(waveform: np.ndarray, rate: int) -> np.ndarray:
    """Zero-crossing rate (Hz) and spectral centroid (Hz, of the power spectrum) of a clip."""
    power = np.abs(np.fft.rfft(waveform)) ** 2
    freqs = np.fft.rfftfreq(waveform.size, 1.0 / rate)
    crossings = np.count_nonzero(np.diff(np.signbit(waveform))) * rate / (2.0 * waveform.size)
    return np.array([crossings, (power * freqs).sum() / max(power.sum(), 1e-12)])


class CentroidPredictor:
    def __init__(self, centroids: np.ndarray, scale: np.ndarray, rate: int):
        self.centroids, self.scale, self.rate = centroids, scale, rate

    def predict_scores(self, dataset) -> np.ndarray:
        feats = np.stack([clip_features(np.asarray(w), self.rate) for w in dataset[WAVEFORM]]) / self.scale
        return -np.linalg.norm(feats[:, None, :] - self.centroids[None], axis=-1)  # nearer = higher score

    def save(self, output_dir) -> None:
        Path(output_dir).mkdir(parents=True, exist_ok=True)
        (Path(output_dir) / "centroids.json").write_text(json.dumps(
            {"centroids": self.centroids.tolist(), "scale": self.scale.tolist(), "sampling_rate": self.rate}))


class ToyCentroidMethod(SelfFittingMethod):
    name = "toy_centroid"
    display_name = "Centroid"
    info = MethodInfo(display_name="nearest class centroid on zero-crossing rate and spectral centroid",
                      description="No neural network: each emotion is the mean of two clip statistics.",
                      paper=Paper(title="A toy baseline", authors="C. Tester"), tags=("toy-baseline",))

    def sampling_rate(self, setup):
        return 16000

    def fit(self, setup, *, model, splits, resume_from_checkpoint=None):
        train, rate = splits["train"], self.sampling_rate(setup)
        feats = np.stack([clip_features(np.asarray(w), rate) for w in train[WAVEFORM]])
        labels = np.asarray(train["labels"])
        scale = feats.std(axis=0) + 1e-9
        centroids = np.stack([feats[labels == k].mean(axis=0) for k in range(len(setup.label_names))]) / scale
        predictor = CentroidPredictor(centroids, scale, rate)
        predictor.save(setup.training_args.output_dir)
        return predictor

    def summary_extras(self, setup, fitted, *, splits):
        return {"features": ["zero_crossing_rate", "spectral_centroid"]}

    def card_sections(self, setup, summary):
        return [CardSection("How to use it", "Load `centroids.json`; a clip's class is its nearest centroid.")]


@pytest.fixture(scope="module")
def toy_methods():
    for method_class in (ToyKDMethod, ToyCentroidMethod):
        register_method(method_class)
    yield
    for method_class in (ToyKDMethod, ToyCentroidMethod):
        unregister_method(method_class.name)


def write_recipe(path: Path, recipe: dict) -> Path:
    path.write_text(yaml.safe_dump(recipe))
    return path


@pytest.fixture(scope="module")
def toy_kd_run(toy_methods, tone_corpus, tmp_path_factory):
    """`hf-mtkd train --config toy_kd.yaml` into <root>/stages/toy_kd."""
    root = tmp_path_factory.mktemp("toy")
    out = root / "stages" / "toy_kd"
    recipe = tiny_recipe(tone_corpus, out, method="toy_kd", loudness_weight=0.5, max_steps=3, logging_steps=1)
    cli_main(["train", "--config", str(write_recipe(root / "toy_kd.yaml", recipe))])
    return out


def test_a_method_from_outside_the_package_runs_to_a_finished_run_with_its_card(toy_kd_run):
    out = toy_kd_run
    summary = RunSummary.load(out / "run_summary.json")
    assert summary.method == "toy_kd" and summary.sizes == {"train": 12, "validation": 16, "test": 16, "quiz": 4}
    assert 0.0 <= summary["quiz_accuracy"] <= 1.0
    assert summary.results["test"]["overall"]["n"] == 16 and summary.method_info.paper == TOY_PAPER
    logged = json.loads((out / "trainer_state.json").read_text())["log_history"]
    assert [entry["rms_term"] for entry in logged if "rms_term" in entry][:3]  # the side key reached the loss
    card = ModelCard((out / "README.md").read_text())
    assert {"toy_kd", "toy-tag"} <= set(card.data.tags) and card.data.pipeline_tag == "audio-classification"
    text = card.text
    assert "trained with **toy loudness-aware distillation**" in text and "*Loudness-aware toy distillation*" in text
    assert "## Quiz split\n\n4 training clips were held out as a quiz" in text
    assert "@misc{toy2024," in text  # the paper's citation
    assert "| loudness_weight | 0.5 |" in text and "| quiz_size | 4 |" in text  # the method's own arguments
    assert 'pipeline("audio-classification"' in text


def test_a_method_that_fits_on_its_own_gets_reports_summary_card_and_a_comparison_row(toy_kd_run, tone_corpus, capsys):
    root = toy_kd_run.parent.parent
    pipeline = {"common": tiny_recipe(tone_corpus, "unused"),
                "stages": {"toy_kd": {"method": "toy_kd"}, "toy_centroid": {"method": "toy_centroid"}},
                "compare": ["toy_kd", "toy_centroid"]}
    for key in ("output_dir", "method"):
        pipeline["common"].pop(key)
    command = [
        "pipeline",
        "--config",
        str(write_recipe(root / "pipeline.yaml", pipeline)),
        "--output_dir",
        str(root / "stages"),
    ]
    cli_main(command)
    printed = capsys.readouterr().out
    # Trained by `hf-mtkd train`, not by the pipeline: nothing says which recipe and data it ran with.
    assert "===== Stage toy_kd" in printed and "no readable pipeline_stage.json" in printed
    assert "Centroid: test (16 clips)" in printed  # the shared report of a method without a Trainer
    cli_main(command)
    printed = capsys.readouterr().out
    assert "===== Stage" not in printed and "Stage toy_kd: reusing the finished run" in printed
    lines = printed.splitlines()
    header = next(i for i, line in enumerate(lines) if line.startswith("model ") and "overall UR" in line)
    assert [line.split()[0] for line in lines[header + 2:header + 4]] == ["toy_kd", "toy_centroid"]  # both stages
    assert "Toy quiz accuracy (toy_kd): " in printed  # the method's multi-stage table, from the reused summary

    out = root / "stages" / "toy_centroid"
    summary = RunSummary.load(out / "run_summary.json")
    test = json.loads((out / "test_metrics.json").read_text())
    assert summary.results["test"] == test and summary["features"] == ["zero_crossing_rate", "spectral_centroid"]
    assert test["overall"]["UR"] >= 0.75  # pitch is the emotion in the tone corpus: the centroids find it
    assert (out / "centroids.json").exists() and not (out / "config.json").exists()
    card = ModelCard((out / "README.md").read_text())
    assert "toy-baseline" in card.data.tags
    assert "is not a transformers model" in card.text and 'pipeline("audio-classification"' not in card.text
    assert "## How to use it" in card.text and "nearest class centroid" in card.text


def test_methods_of_installed_packages_come_from_the_entry_point_group(tmp_path, monkeypatch):
    (tmp_path / "toy_plugin.py").write_text(textwrap.dedent('''
        from hf_mtkd.training.method import Method

        class PluginMethod(Method):
            name = "toy_plugin"
            display_name = "Plugin"
    '''))
    dist = tmp_path / "toy_plugin-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: toy-plugin\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text("[hf_mtkd.methods]\ntoy_plugin = toy_plugin:PluginMethod\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    try:
        assert "toy_plugin" in method_names()  # listed without being imported
        assert "toy_plugin" not in sys.modules
        method = get_method("toy_plugin")
        assert type(method).__name__ == "PluginMethod" and get_method_class("toy_plugin") is type(method)
    finally:
        unregister_method("toy_plugin")
        sys.modules.pop("toy_plugin", None)


def test_registry_errors_name_the_problem():
    with pytest.raises(ValueError, match=r"Unknown method 'nope'; choose one of \[.*'finetune'.*'mtkd'"):
        get_method("nope")

    class Clash(Method):
        name = "mtkd"

    with pytest.raises(ValueError, match="'mtkd' is already registered"):
        register_method(Clash)

    class NoName(Method):
        pass

    with pytest.raises(ValueError, match="needs a `name`"):
        register_method(NoName)

    class NotAMethod:
        name = "plain"

    with pytest.raises(TypeError, match="subclass hf_mtkd.training.method.Method"):
        register_method(NotAMethod)
    assert get_method("mtkd").card_info().display_name.startswith("language-aware multi-teacher")


def test_train_help_exits_0_listing_the_methods_and_then_one_methods_keys(tmp_path, capsys):
    """`hf-mtkd train --help` used to print every TrainingArguments flag of fine-tuning (800 lines, whatever the
    method), then a traceback and exit 1."""
    with pytest.raises(SystemExit) as done:
        cli_main(["train", "--help"])
    assert done.value.code == 0
    printed = capsys.readouterr().out
    assert all(name in printed for name in method_names()) and "--method NAME --help" in printed

    with pytest.raises(SystemExit) as done:
        cli_main(["train", "--method", "mtkd", "--help"])
    assert done.value.code == 0
    printed = capsys.readouterr().out
    assert "--teachers" in printed and "--kd_lambda" in printed  # the method's own keys, with their help
    assert "--data_dir" in printed and "--learning_rate" in printed and "--exit_layers" not in printed
    assert "eval_steps" in printed  # every other TrainingArguments key is named
    assert len(printed.splitlines()) < 400

    # The method comes from the recipe when --method is not given.
    recipe = write_recipe(tmp_path / "sd.yaml", {"method": "self_distillation"})
    with pytest.raises(SystemExit) as done:
        cli_main(["train", "--config", str(recipe), "-h"])
    printed = capsys.readouterr().out
    assert done.value.code == 0 and "--exit_layers" in printed and "--teachers" not in printed
