"""The GE2E pretrained floor as a transformers model: `classic_feature_set: ge2e` also saves a
GE2EForAudioClassification whose linear layer is the fitted logistic regression with the scaler folded in, so the
floor loads through the Auto classes and pipeline() and teaches MTKD in seconds
(hf_mtkd/classic_baseline/export.py)."""

import csv
import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from transformers import AutoFeatureExtractor, AutoModelForAudioClassification, pipeline

import hf_mtkd  # noqa: F401  (registers the Auto classes)
from hf_mtkd.classic_baseline import clip_features, load_classic_baseline, predict_log_probabilities
from hf_mtkd.classic_baseline.export import linear_weights
from hf_mtkd.classic_baseline.model import ClassicBaseline
from hf_mtkd.inference import EmotionPredictor
from hf_mtkd.registry import get_method
from hf_mtkd.models import GE2EConfig, GE2EFeatureExtractor, GE2EForAudioClassification
from hf_mtkd.training.run import run
from testing_utils import LABELS, tiny_recipe

RATE = 16000


def softmax(logits: np.ndarray) -> np.ndarray:
    exp = np.exp(logits - logits.max(axis=-1, keepdims=True))
    return exp / exp.sum(axis=-1, keepdims=True)


@pytest.mark.parametrize("num_classes", [2, 3, 4])
def test_folded_weights_give_sklearns_probabilities(num_classes):
    # Binary logistic regression has one row of coefficients (the second class against the first); multinomial one per
    # class. Either way softmax(x W'^T + b') with the scaler folded in is predict_proba.
    rng = np.random.default_rng(num_classes)
    features = rng.normal(3.0, [0.01, 1.0, 50.0, 0.2, 5.0], size=(200, 5))
    labels = rng.integers(0, num_classes, size=200)
    features[:, 1] += labels  # something to learn
    pipe = make_pipeline(StandardScaler(), LogisticRegression(C=1.0, max_iter=5000)).fit(features, labels)
    weight, bias = linear_weights(
        ClassicBaseline(pipeline=pipe, C=1.0, label_names=[f"c{k}" for k in range(num_classes)])
    )
    assert weight.shape == (num_classes, 5) and bias.shape == (num_classes,)
    np.testing.assert_allclose(softmax(features @ weight.T + bias), pipe.predict_proba(features), atol=1e-10, rtol=0)


def test_classifier_norm_none_keeps_the_parameter_names():
    with pytest.raises(ValueError, match="classifier_norm must be one of"):
        GE2EConfig(classifier_norm="batch")
    tiny = {
        "hidden_size": 16,
        "num_hidden_layers": 2,
        "embedding_size": 8,
        "pretrained_encoder": None,
        "num_labels": 4,
    }
    layer, none = (GE2EForAudioClassification(GE2EConfig(**tiny, classifier_hidden_size=0, classifier_norm=norm))
                   for norm in ("layer", "none"))
    assert GE2EConfig().classifier_norm == "layer" and isinstance(layer.classifier[0], torch.nn.LayerNorm)
    assert isinstance(none.classifier[0], torch.nn.Identity)
    assert set(layer.state_dict()) - set(none.state_dict()) == {"classifier.0.weight", "classifier.0.bias"}
    assert set(none.state_dict()) <= set(layer.state_dict())  # the Linear keeps its name (classifier.2)


def write_corpus(root: Path) -> Path:
    """Clips of 0.5-4 s (one to several GE2E windows), 2 languages, a test, a validation and 2 training speakers
    each."""
    rng = np.random.default_rng(0)
    root.mkdir(parents=True, exist_ok=True)
    rows = []
    for language in ("en", "fi"):
        for s in range(4):
            speaker = f"{language}_spk{s}"
            split = "test" if s == 0 else "validation" if s == 1 else "train"
            for k, label in enumerate(LABELS):
                for c in range(2):
                    t = np.arange(int((0.5 + 3.5 * rng.random()) * RATE)) / RATE
                    wave = 0.3 * np.sin(2 * np.pi * (150.0 * (k + 1) + 10 * s) * t) + 0.02 * rng.standard_normal(
                        t.size
                    )
                    name = f"{speaker}_{label}_{c}.wav"
                    sf.write(root / name, wave.astype(np.float32), RATE)
                    rows.append({"file_name": name, "label": label, "language": language, "speaker": speaker,
                                 "split": split})
    with open(root / "metadata.csv", "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return root


@pytest.fixture(scope="module")
def floor(tmp_path_factory):
    pytest.importorskip("resemblyzer", reason="the GE2E weights ship in the resemblyzer wheel (hf_mtkd[ge2e])")
    root = tmp_path_factory.mktemp("ge2e_floor")
    corpus = write_corpus(root / "corpus")
    # A 1 s training window: the students' windowed evaluation would cut these clips; the floor scores whole clips.
    recipe = {"method": "classic_baseline", "classic_feature_set": "ge2e", "data_dir": str(corpus),
              "output_dir": str(root / "floor"), "classic_c_grid": [0.1, 1.0], "n_bootstrap": 20,
              "max_duration_seconds": 5.0, "train_window_seconds": 1.0, "report_to": "none"}
    run(get_method("classic_baseline"), recipe=recipe)
    return corpus, root / "floor"


def test_exported_floor_equals_the_classic_floor_and_loads_with_auto_classes_and_pipeline(floor):
    corpus, out = floor
    baseline, _ = load_classic_baseline(out)
    model = AutoModelForAudioClassification.from_pretrained(out).eval()
    feature_extractor = AutoFeatureExtractor.from_pretrained(out)
    assert type(model) is GE2EForAudioClassification and type(feature_extractor) is GE2EFeatureExtractor
    assert model.config.classifier_hidden_size == 0 and model.config.classifier_norm == "none"
    assert [model.config.id2label[i] for i in range(len(LABELS))] == LABELS
    assert model.config.train_window_seconds == 5.0  # whole clips (up to max_duration_seconds), as the floor saw them

    with open(corpus / "metadata.csv") as handle:
        rows = [row for row in csv.DictReader(handle) if row["split"] == "test"]
    waves = [sf.read(corpus / row["file_name"], dtype="float32")[0] for row in rows]
    assert max(w.size for w in waves) > 3 * RATE  # several GE2E windows and several 1 s training windows
    expected = np.exp(predict_log_probabilities(baseline, np.stack([clip_features(w, RATE, "ge2e") for w in waves])))
    with torch.no_grad():
        logits = torch.cat(
            [model(**feature_extractor(w, sampling_rate=RATE, return_tensors="pt")).logits for w in waves]
        )
    np.testing.assert_allclose(torch.softmax(logits, dim=-1).numpy(), expected, atol=1e-5, rtol=0)
    classifier = pipeline("audio-classification", model=str(out))
    scores = {r["label"]: r["score"] for r in classifier(str(corpus / rows[0]["file_name"]), top_k=None)}
    assert scores == pytest.approx(dict(zip(LABELS, expected[0].tolist())), abs=1e-5)
    predicted = EmotionPredictor(out).predict(str(corpus / rows[1]["file_name"]))
    assert predicted.num_chunks == 1
    assert predicted.scores == pytest.approx(dict(zip(LABELS, expected[1].tolist())), abs=1e-5)


def test_exported_floor_teaches_mtkd_from_the_logit_cache(floor, tmp_path):
    corpus, out = floor
    student = tmp_path / "student"
    run(get_method("mtkd"), recipe=tiny_recipe(
        corpus, student, method="mtkd", kd_lambda=0.5, logging_steps=1, max_steps=3, max_duration_seconds=5.0,
        train_window_seconds=0, use_teacher_logit_cache=True,
        teachers=[{"model": str(out), "language": "en"}, {"model": str(out), "language": "fi"}]))
    history = json.loads((student / "trainer_state.json").read_text())["log_history"]
    assert any(entry.get("kd_loss", 0) > 0 for entry in history)
    assert AutoModelForAudioClassification.from_pretrained(student).config.model_type == "wav2vec2"
