"""hf_mtkd's model types in transformers' Auto classes (`hf_mtkd.auto_classes`): configs and feature extractors
registered by `import hf_mtkd`, model classes when the first config of their type is made."""

import json
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch
from transformers import AutoConfig, AutoFeatureExtractor, AutoModelForAudioClassification, pipeline

import hf_mtkd.auto_classes as auto_classes
from testing_utils import LABELS, TINY_W2V2

TOY_TYPE = "hf_mtkd_test_toy"
TOY_MODULES = {
    "toy_config.py": f'''
        from transformers import PretrainedConfig
        from hf_mtkd.auto_classes import LazyAutoModelsMixin

        class ToyConfig(LazyAutoModelsMixin, PretrainedConfig):
            model_type = "{TOY_TYPE}"
            hidden_size: int = 8
    ''',
    "toy_features.py": """
        import numpy as np
        from transformers import BatchFeature, SequenceFeatureExtractor

        class ToyFeatureExtractor(SequenceFeatureExtractor):
            model_input_names = ["input_values"]

            def __init__(self, feature_size=1, sampling_rate=16000, padding_value=0.0, **kwargs):
                super().__init__(
                    feature_size=feature_size, sampling_rate=sampling_rate, padding_value=padding_value, **kwargs
                )

            def __call__(self, raw_speech, sampling_rate=None, return_tensors=None, **kwargs):
                batch = raw_speech if isinstance(raw_speech, list) else [raw_speech]
                frames = [np.abs(np.asarray(w, dtype=np.float32))[:1600].reshape(-1, 160).mean(-1) for w in batch]
                return BatchFeature({"input_values": np.stack(frames)}, tensor_type=return_tensors)
    """,
    "toy_modeling.py": """
        import torch
        from transformers import PreTrainedModel
        from transformers.modeling_outputs import SequenceClassifierOutput
        from toy_config import ToyConfig

        class ToyForAudioClassification(PreTrainedModel):
            config_class = ToyConfig
            main_input_name = "input_values"

            def __init__(self, config):
                super().__init__(config)
                self.classifier = torch.nn.Linear(10, config.num_labels)
                self.post_init()

            def forward(self, input_values, attention_mask=None, labels=None, **kwargs):
                return SequenceClassifierOutput(logits=self.classifier(input_values))
    """,
}


@pytest.fixture
def toy_model_type(tmp_path, monkeypatch):
    for name, text in TOY_MODULES.items():
        (tmp_path / name).write_text(textwrap.dedent(text))
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setitem(auto_classes.AUTO_MODELS, TOY_TYPE, auto_classes.AutoModelEntry(
        config="toy_config:ToyConfig",
        models={"AutoModelForAudioClassification": "toy_modeling:ToyForAudioClassification"},
        feature_extractor="toy_features:ToyFeatureExtractor",
    ))
    yield
    for name in ("toy_config", "toy_features", "toy_modeling"):
        sys.modules.pop(name, None)


def test_a_row_in_the_table_is_all_a_new_model_type_needs(toy_model_type, tmp_path):
    auto_classes.register_auto_configs()
    assert "toy_modeling" not in sys.modules  # registering imported the config and feature extractor only
    config = AutoConfig.for_model(TOY_TYPE, num_labels=4, id2label=dict(enumerate(LABELS)),
                                  label2id={label: i for i, label in enumerate(LABELS)})
    assert "toy_modeling" in sys.modules  # the first config registered the model class
    model = AutoModelForAudioClassification.from_config(config)
    assert type(model).__name__ == "ToyForAudioClassification"
    model.save_pretrained(tmp_path / "saved")
    from toy_features import ToyFeatureExtractor

    ToyFeatureExtractor().save_pretrained(tmp_path / "saved")
    assert type(AutoFeatureExtractor.from_pretrained(tmp_path / "saved")).__name__ == "ToyFeatureExtractor"
    reloaded = AutoModelForAudioClassification.from_pretrained(tmp_path / "saved")
    assert all(torch.equal(p, model.state_dict()[k]) for k, p in reloaded.state_dict().items())
    scores = pipeline("audio-classification", model=str(tmp_path / "saved"))(
        np.random.default_rng(0).standard_normal(16000).astype(np.float32), top_k=None)
    assert sorted(s["label"] for s in scores) == sorted(LABELS)


def test_a_table_row_whose_config_disagrees_is_an_error(toy_model_type, monkeypatch):
    monkeypatch.setitem(auto_classes.AUTO_MODELS, "another_type",
                        auto_classes.AutoModelEntry(config="toy_config:ToyConfig"))
    with pytest.raises(ValueError, match=r"AUTO_MODELS\['another_type'\]: toy_config:ToyConfig has model_type"):
        auto_classes.register_auto_configs()


@pytest.mark.parametrize("model_type", sorted(auto_classes.AUTO_MODELS))
def test_every_row_of_the_table_resolves_to_its_classes(model_type):
    """hf_mtkd's own rows: `import hf_mtkd` made the config known, and the first config registered its models."""
    import transformers

    entry = auto_classes.AUTO_MODELS[model_type]
    config = AutoConfig.for_model(model_type)
    assert f"{type(config).__module__}:{type(config).__name__}" == entry.config
    for auto_name, path in entry.models.items():
        model_class = getattr(transformers, auto_name)._model_mapping[type(config)]
        assert f"{model_class.__module__}:{model_class.__name__}" == path


@pytest.mark.slow  # a fresh interpreter imports torch and transformers: 10-30 s on a busy 2-core machine
def test_import_hf_mtkd_registers_without_loading_models_and_pipeline_loads_an_early_exit_model(tmp_path):
    from hf_mtkd.models.early_exit import EarlyExitForAudioClassification
    from transformers import Wav2Vec2FeatureExtractor

    model = EarlyExitForAudioClassification.from_backbone(
        AutoConfig.for_model("wav2vec2", **TINY_W2V2), exit_layers=[1], head_hidden_size=8,
        id2label=dict(enumerate(LABELS)), label2id={label: i for i, label in enumerate(LABELS)},
    )
    model.save_pretrained(tmp_path / "ee")
    Wav2Vec2FeatureExtractor(return_attention_mask=False).save_pretrained(tmp_path / "ee")
    script = textwrap.dedent(f"""
        import json, sys
        import hf_mtkd
        loaded = {{name: name in sys.modules for name in
                  ("transformers.modeling_utils", "transformers.trainer", "datasets",
                   "hf_mtkd.models.early_exit.modeling_early_exit", "hf_mtkd.training",
                   "hf_mtkd.models.inverted_transformer.modeling_inverted_transformer",
                   "hf_mtkd.models.inverted_transformer.modeling_waveform_student", "torchaudio")}}
        from transformers import pipeline
        classifier = pipeline("audio-classification", model={str(tmp_path / 'ee')!r})
        print(json.dumps({{"loaded": loaded, "class": type(classifier.model).__name__}}))
    """)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=600,
                          env={"OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1", "PATH": "/usr/bin:/bin",
                               **{k: v for k, v in __import__("os").environ.items() if k == "PYTHONPATH"}})
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert not any(result["loaded"].values()), result["loaded"]
    assert result["class"] == "EarlyExitForAudioClassification"
