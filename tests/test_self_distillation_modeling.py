"""EarlyExitForAudioClassification: real early exits, round trips, Auto classes, export, bad input."""

import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch
from transformers import (
    AutoConfig,
    AutoModelForAudioClassification,
    BertConfig,
    Wav2Vec2FeatureExtractor,
    Wav2Vec2ForSequenceClassification,
    Wav2Vec2Model,
    pipeline,
)

from hf_mtkd.self_distillation import build_exit_model, early_exit_from_logits, evaluate_exits, export_exit
from hf_mtkd.models.early_exit import EarlyExitAudioConfig, EarlyExitForAudioClassification, fuse_by_margin

LABELS = {0: "angry", 1: "happy", 2: "neutral", 3: "sad"}


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    """Tiny models run 10-20x faster on one intra-op thread than on two contended ones (shared CI machines)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def tiny_backbone(model_type="wav2vec2", stable=False, **overrides):
    """A 4-layer, hidden-32 backbone config (the scale of transformers' own tests); no dropout, no masking."""
    kwargs = dict(
        hidden_size=32,
        num_hidden_layers=4,
        num_attention_heads=2,
        intermediate_size=37,
        conv_dim=(32, 32, 32),
        conv_kernel=(8, 4, 4),
        conv_stride=(4, 4, 4),
        num_conv_pos_embeddings=16,
        num_conv_pos_embedding_groups=2,
        layerdrop=0.0,
        mask_time_prob=0.0,
        hidden_dropout=0.0,
        attention_dropout=0.0,
        activation_dropout=0.0,
    )
    if model_type != "data2vec-audio":
        kwargs["do_stable_layer_norm"] = stable
    if stable:
        kwargs["feat_extract_norm"] = "layer"
    kwargs.update(overrides)
    return AutoConfig.for_model(model_type, **kwargs)


def tiny_model(model_type="wav2vec2", stable=False, exit_layers=(1, 3), exit_block="none", seed=0):
    torch.manual_seed(seed)
    config = EarlyExitAudioConfig(
        backbone_config=tiny_backbone(model_type, stable),
        exit_layers=list(exit_layers),
        exit_block=exit_block,
        head_hidden_size=16,
        id2label=LABELS,
    )
    model = EarlyExitForAudioClassification(config).eval()
    with torch.no_grad():  # heads of O(1) logits, so that equalities are not trivially small numbers
        for head in [*model.exit_heads, model.head]:
            head.projector.weight.normal_(0, 0.5)
            head.classifier.weight.normal_(0, 0.5)
    return model


def waveforms(batch=3, samples=4000, seed=0):
    generator = torch.Generator().manual_seed(seed)
    values = torch.randn(batch, samples, generator=generator)
    mask = torch.ones(batch, samples, dtype=torch.long)
    mask[1, samples * 2 // 3 :] = 0
    mask[-1, samples // 3 :] = 0
    values = values * mask
    return values, mask


class LayerCounter:
    """Counts forward calls of the backbone's transformer layers and the batch size each saw."""

    def __init__(self, model):
        self.calls = []
        self.handles = [
            layer.register_forward_hook(self._hook(index)) for index, layer in enumerate(model.backbone.encoder.layers)
        ]

    def _hook(self, index):
        def hook(module, args, output):
            hidden = output[0] if isinstance(output, tuple) else output
            self.calls.append((index, hidden.shape[0]))

        return hook

    def reset(self):
        self.calls = []

    def close(self):
        for handle in self.handles:
            handle.remove()


# ---------------------------------------------------------------------------------------------- config
def test_config_validation_errors():
    backbone = tiny_backbone()
    with pytest.raises(ValueError, match="outside 1..3"):
        EarlyExitAudioConfig(backbone_config=backbone, exit_layers=[4])
    with pytest.raises(ValueError, match="outside 1..3"):
        EarlyExitAudioConfig(backbone_config=backbone, exit_layers=[0, 2])
    with pytest.raises(ValueError, match="duplicates"):
        EarlyExitAudioConfig(backbone_config=backbone, exit_layers=[2, 2])
    with pytest.raises(ValueError, match="Unknown exit_block 'transformer'"):
        EarlyExitAudioConfig(backbone_config=backbone, exit_layers=[2], exit_block="transformer")
    with pytest.raises(ValueError, match="model_type 'bert'"):
        EarlyExitAudioConfig(backbone_config=BertConfig(), exit_layers=[2])
    with pytest.raises(ValueError, match="use_weighted_layer_sum"):
        EarlyExitAudioConfig(backbone_config=tiny_backbone(use_weighted_layer_sum=True), exit_layers=[2])
    config = EarlyExitAudioConfig(backbone_config=backbone, exit_layers=[3, 1], id2label=LABELS)
    assert config.exit_layers == [1, 3]
    assert config.label2id == {"angry": 0, "happy": 1, "neutral": 2, "sad": 3}


def test_backbone_without_hidden_states_is_rejected():
    # A text encoder (or any model without wav2vec2-style transformer layers) cannot host exits.
    from transformers import BertModel

    bert = BertModel(BertConfig(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=37))
    with pytest.raises(ValueError, match="early exits are implemented for"):
        EarlyExitForAudioClassification.from_backbone(bert, exit_layers=[1], num_labels=2)


def test_unknown_exit_layer_at_inference():
    model = tiny_model()
    with pytest.raises(ValueError, match=r"heads sit after layers \[1, 3, 4\]"):
        model(waveforms()[0], exit_layer=2)


# ---------------------------------------------------------------------------------------------- forward
def test_forward_outputs_and_labels():
    # Layer-norm conv features: with group norm (wav2vec2-base) padding changes the features, which is why
    # its feature extractor returns no attention mask.
    model = tiny_model(stable=True, exit_block="lstm")
    values, mask = waveforms()
    out = model(values, attention_mask=mask, labels=torch.tensor([0, 1, 3]))
    assert out.logits.shape == (3, 4)
    assert len(out.exit_logits) == 2 and out.exit_logits[0].shape == (3, 4)
    assert out.pooled_output.shape == (3, 32) and out.projected_output.shape == (3, 16)
    assert out.exit_pooled_outputs[1].shape == (3, 32) and out.exit_projected_outputs[1].shape == (3, 16)
    assert torch.isclose(out.loss, torch.nn.functional.cross_entropy(out.logits, torch.tensor([0, 1, 3])))
    # Per-exit inference gives what the full pass gave for that exit.
    for index, layer in enumerate(model.config.exit_layers):
        alone = model(values, attention_mask=mask, exit_layer=layer)
        torch.testing.assert_close(alone.logits, out.exit_logits[index])
        assert alone.exit_logits is None
    # Padding does not leak into the pooled result: a padded sample equals the same sample alone.
    single = model(values[1:2, : mask[1].sum()], attention_mask=mask[1:2, : mask[1].sum()])
    torch.testing.assert_close(single.logits[0], out.logits[1], atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("model_type,stable", [("wav2vec2", False), ("wav2vec2", True), ("wavlm", False)])
def test_exit_runs_only_the_layers_below_it(model_type, stable):
    model = tiny_model(model_type, stable)
    counter = LayerCounter(model)
    values, mask = waveforms()
    for exit_layer, expected in [(1, [0]), (3, [0, 1, 2]), (4, [0, 1, 2, 3]), (None, [0, 1, 2, 3])]:
        counter.reset()
        model(values, attention_mask=mask, exit_layer=exit_layer)
        assert [index for index, _ in counter.calls] == expected
    counter.close()


@pytest.mark.parametrize("model_type", ["wav2vec2", "wavlm"])  # WavLM: its position bias is subset too
def test_confidence_early_exit_is_real_and_per_sample(model_type):
    model = tiny_model(model_type, stable=True, exit_block="gru")
    values, mask = waveforms(batch=4)
    counter = LayerCounter(model)

    # Threshold 0: everything leaves at the first exit; only layer 1 runs.
    result = model.predict_early_exit(values, mask, threshold=0.0)
    assert result.exit_layer.tolist() == [1, 1, 1, 1] and result.layers_run == 1
    assert [index for index, _ in counter.calls] == [0]
    torch.testing.assert_close(result.logits, model(values, attention_mask=mask, exit_layer=1).logits)

    # Threshold 1: nothing is confident enough; the deepest head answers after all layers.
    counter.reset()
    result = model.predict_early_exit(values, mask, threshold=1.0)
    assert result.exit_layer.tolist() == [4, 4, 4, 4] and len(counter.calls) == 4
    torch.testing.assert_close(result.logits, model(values, attention_mask=mask, output_exits=False).logits)

    # A threshold between the first exit's confidences: the confident half stops at layer 1 and the layers
    # above run on the other half only.
    first = model(values, attention_mask=mask, exit_layer=1).logits.softmax(-1).max(-1).values
    threshold = first.sort().values[1:3].mean().item()
    stops = first >= threshold
    counter.reset()
    result = model.predict_early_exit(values, mask, threshold=threshold)
    assert (result.exit_layer[stops] == 1).all() and (result.exit_layer[~stops] > 1).all()
    assert counter.calls[0] == (0, 4)
    assert all(batch == int((~stops).sum()) for index, batch in counter.calls[1:] if index < 3)
    for row in range(4):  # every sample got the logits of the head it stopped at
        layer = int(result.exit_layer[row])
        length = int(mask[row].sum())
        alone = model(values[row : row + 1, :length], exit_layer=layer).logits[0]
        torch.testing.assert_close(result.logits[row], alone, atol=1e-5, rtol=1e-5)

    # Batch size 1: a sample that exits at layer 1 runs one layer.
    counter.reset()
    model.predict_early_exit(values[:1], threshold=0.0)
    assert len(counter.calls) == 1
    counter.close()


def test_margin_fusion():
    a = torch.tensor([[3.0, 1.0, 0.0], [0.0, 0.5, 0.4]])  # margins 2.0, 0.1
    b = torch.tensor([[0.0, 2.5, 0.0], [0.0, 0.0, 3.0]])  # margins 2.5, 3.0
    c = torch.tensor([[5.0, 0.0, 0.0], [1.0, 0.0, 0.0]])  # margins 5.0, 1.0
    fused, chosen = fuse_by_margin([a, b, c])
    assert chosen.tolist() == [2, 1]
    torch.testing.assert_close(fused, torch.stack([c[0], b[1]]))


def test_evaluate_exits_scores_clips_by_the_models_window_rule():
    """A model trained on windows (train_window_seconds in its config): every head's clip logits are the mean of
    its windows' logits (hf_mtkd.windowing's rule, each window alone here), and fusion and early exit decide on
    those clip logits; without the sampling rate the rule cannot be applied, and evaluate_exits says so."""
    from hf_mtkd.windowing import WindowRule, save_window_to_config

    model = tiny_model(seed=2)
    save_window_to_config(model.config, 0.125)  # 2000 samples at 16 kHz
    rng = np.random.default_rng(1)
    lengths = [4500, 1500, 3000, 2000]  # 3, 1 (shorter than a window), 2 and 1 windows; 4500 ends overlapping
    data = [{"input_values": (np.sin(np.arange(n) * 0.03 * (i + 1)) * (1 + i) + 0.3 * rng.standard_normal(n))
             .astype("float32"), "label": i} for i, n in enumerate(lengths)]
    rule = WindowRule.from_config(model.config, 16000)
    heads = {"layer_1": [], "layer_3": [], "deepest": []}
    with torch.no_grad():
        for example in data:
            windows = [model(torch.from_numpy(w)[None]) for w in rule.windows(example["input_values"])]
            for index, name in enumerate(heads):
                per_window = [w.exit_logits[index] if index < 2 else w.logits for w in windows]
                heads[name].append(torch.cat(per_window).mean(0))
    heads = {name: torch.stack(rows) for name, rows in heads.items()}
    confidence = heads["layer_1"].softmax(-1).max(-1).values
    threshold = float(confidence.median())
    # One window per batch, as in the reference (padding next to a longer window changes this model's outputs).
    result = evaluate_exits(model, data, batch_size=1, threshold=threshold, latency_repeats=0, sampling_rate=16000)
    for name, logits in heads.items():
        assert result.predictions[name].tolist() == logits.argmax(-1).tolist(), name
    fused, _ = fuse_by_margin([heads["layer_1"], heads["layer_3"]])
    assert result.predictions["fusion"].tolist() == fused.argmax(-1).tolist()
    expected, layers = early_exit_from_logits(
        [heads["layer_1"], heads["layer_3"]], heads["deepest"], [1, 3], 4, threshold
    )
    assert result.predictions["early_exit"].tolist() == expected.tolist()
    assert (
        result.exit_layer_used.tolist() == layers.tolist() and 1 in layers.tolist() and len(set(layers.tolist())) > 1
    )
    with pytest.raises(ValueError, match="sampling_rate"):
        evaluate_exits(model, data, latency_repeats=0)


def test_early_exit_from_logits_is_predict_early_exit_on_single_inputs():
    model = tiny_model(seed=3)
    values = torch.randn(6, 3000)
    with torch.no_grad():
        out = model(values)
        for threshold in (0.0, 0.3, 0.4, 1.0):
            early = model.predict_early_exit(values, threshold=threshold)
            predictions, layers = early_exit_from_logits(list(out.exit_logits), out.logits, [1, 3], 4, threshold)
            assert predictions.tolist() == early.predictions.tolist() and layers.tolist() == early.exit_layer.tolist()


def test_evaluate_exits_predictions_sizes_latency():
    model = tiny_model(seed=2)  # with these clips its heads disagree, and the fusions differ
    rng = np.random.default_rng(0)
    lengths = [3000, 4000, 2500, 3500, 4000, 3000]
    clips = [
        np.sin(np.arange(n) * 0.05 * (i + 1)) * (0.5 + i) + 0.3 * rng.standard_normal(n) for i, n in enumerate(lengths)
    ]
    data = [
        {"input_values": clip.astype("float32"), "label": i % 4, "language": "it" if i < 3 else "en"}
        for i, clip in enumerate(clips)
    ]
    # A threshold between the first exit's confidences, so that early exit stops at more than one head.
    with torch.no_grad():
        first = torch.cat([model(torch.from_numpy(d["input_values"])[None], exit_layer=1).logits for d in data])
    threshold = float(first.softmax(-1).max(-1).values.median())
    result = evaluate_exits(model, data, batch_size=2, threshold=threshold, latency_repeats=1)
    assert result.references.tolist() == [0, 1, 2, 3, 0, 1]
    assert set(result.latency_s) == {"layer_1", "layer_3", "deepest"}
    sizes = [result.num_parameters[name] for name in ("layer_1", "layer_3", "deepest")]
    assert sizes == [model.num_parameters_at_exit(layer) for layer in (1, 3, 4)]
    assert sizes == sorted(sizes) and len(set(sizes)) == 3

    # Reference: the model run here on the same zero-padded pairs, every head, the fusions and early exit by hand.
    heads = {"layer_1": [], "layer_3": [], "deepest": []}
    for start in range(0, len(data), 2):
        pair = data[start : start + 2]
        length = max(len(d["input_values"]) for d in pair)
        values, mask = torch.zeros(len(pair), length), torch.zeros(len(pair), length, dtype=torch.long)
        for row, d in enumerate(pair):
            values[row, : len(d["input_values"])] = torch.from_numpy(d["input_values"])
            mask[row, : len(d["input_values"])] = 1
        with torch.no_grad():
            out = model(values, attention_mask=mask)
        for name, logits in zip(heads, [*out.exit_logits, out.logits]):
            heads[name].append(logits)
    heads = {name: torch.cat(chunks) for name, chunks in heads.items()}
    top2 = {name: logits.topk(2, -1).values for name, logits in heads.items()}
    margin = {name: values[:, 0] - values[:, 1] for name, values in top2.items()}
    expected = {name: logits.argmax(-1) for name, logits in heads.items()}
    for fusion, names in (("fusion", ["layer_1", "layer_3"]), ("fusion_all", ["layer_1", "layer_3", "deepest"])):
        best = torch.stack([margin[name] for name in names]).argmax(0)
        expected[fusion] = torch.stack([expected[name] for name in names])[best, torch.arange(len(data))]
    confidence = {name: logits.softmax(-1).max(-1).values for name, logits in heads.items()}
    early_layer = [
        next((layer for name, layer in (("layer_1", 1), ("layer_3", 3)) if confidence[name][i] >= threshold), 4)
        for i in range(len(data))
    ]
    expected["early_exit"] = torch.stack(
        [expected[{1: "layer_1", 3: "layer_3", 4: "deepest"}[layer]][i] for i, layer in enumerate(early_layer)])
    assert set(result.predictions) == set(expected)
    for name, preds in expected.items():
        assert result.predictions[name].tolist() == preds.tolist(), name
    # the data tell them apart
    assert result.predictions["fusion"].tolist() != result.predictions["fusion_all"].tolist()
    assert result.exit_layer_used.tolist() == early_layer and len(set(early_layer)) > 1

    summary = result.summary()
    assert summary["deepest"]["layer"] == 4 and summary["layer_3"]["layer"] == 3
    references = np.array([0, 1, 2, 3, 0, 1])
    for name, preds in expected.items():
        assert summary[name]["accuracy"] == pytest.approx(float((preds.numpy() == references).mean())), name
    assert result.languages == ["it", "it", "it", "en", "en", "en"]
    metrics = result.metrics(list(LABELS.values()), n_bootstrap=0)
    for name, preds in result.predictions.items():
        assert metrics[name]["overall"]["WR"] == pytest.approx(float((preds == result.references).mean()))
        assert metrics[name]["per_language"]["it"]["WR"] == pytest.approx(float((preds[:3] == references[:3]).mean()))


@pytest.mark.parametrize("stable", [False, True])
def test_exit_probabilities_are_the_head_on_the_backbone_layer_output(stable):
    """Reference: the stock backbone's hidden state after layer a (the encoder's final layer norm on it in the
    stable variant), mean-pooled over the real frames, through the exit's two linear layers, softmax."""
    model = tiny_model(stable=stable)
    values, mask = waveforms()
    with torch.no_grad():
        out = model(values, attention_mask=mask)
        hidden = model.backbone(values, attention_mask=mask, output_hidden_states=True).hidden_states
        frames = model.backbone._get_feature_vector_attention_mask(hidden[0].shape[1], mask).float()
    assert frames.sum(1).tolist() != [frames.shape[1]] * 3  # padded samples: the pooling must skip their frames
    for index, layer in enumerate(model.config.exit_layers):
        states = hidden[layer]
        if stable:
            states = model.backbone.encoder.layer_norm(states)
        pooled = (states * frames[..., None]).sum(1) / frames.sum(1, keepdim=True)
        head = model.exit_heads[index]
        projected = pooled @ head.projector.weight.T + head.projector.bias
        logits = projected @ head.classifier.weight.T + head.classifier.bias
        torch.testing.assert_close(out.exit_pooled_outputs[index], pooled, atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(out.exit_projected_outputs[index], projected, atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(out.exit_logits[index].softmax(-1), logits.softmax(-1), atol=1e-5, rtol=1e-5)


# ---------------------------------------------------------------------------------------------- persistence
def test_save_from_pretrained_round_trip_and_auto_classes(tmp_path):
    model = tiny_model(exit_block="cnn")
    model.save_pretrained(tmp_path)
    assert (tmp_path / "config.json").is_file() and (tmp_path / "model.safetensors").is_file()
    saved = json.loads((tmp_path / "config.json").read_text())
    assert saved["model_type"] == "hf_mtkd_early_exit" and saved["backbone_config"]["model_type"] == "wav2vec2"
    assert saved["id2label"]["3"] == "sad"

    loaded = AutoModelForAudioClassification.from_pretrained(tmp_path).eval()
    assert isinstance(loaded, EarlyExitForAudioClassification)
    assert loaded.config.exit_layers == [1, 3] and loaded.config.exit_block == "cnn"
    for (name, tensor), (other_name, other) in zip(model.state_dict().items(), loaded.state_dict().items()):
        assert name == other_name and torch.equal(tensor, other), name
    values, mask = waveforms()
    torch.testing.assert_close(model(values, attention_mask=mask).logits, loaded(values, attention_mask=mask).logits)

    Wav2Vec2FeatureExtractor(return_attention_mask=True).save_pretrained(tmp_path)
    classifier = pipeline("audio-classification", model=str(tmp_path))
    result = classifier(np.random.default_rng(0).standard_normal(4000).astype("float32"), top_k=4)
    assert {row["label"] for row in result} == set(LABELS.values())


def test_from_backbone_loads_pretrained_weights(tmp_path):
    torch.manual_seed(3)
    source = Wav2Vec2Model(tiny_backbone())
    source.save_pretrained(tmp_path / "backbone")
    model = EarlyExitForAudioClassification.from_backbone(
        str(tmp_path / "backbone"), exit_layers=[2], exit_block="lstm", id2label=LABELS
    )
    assert model.config.exit_layers == [2] and model.config.num_labels == 4
    for name, tensor in source.state_dict().items():
        assert torch.equal(model.backbone.state_dict()[name], tensor), name
    # A fine-tuned classifier checkpoint gives its encoder too (the head is dropped).
    Wav2Vec2ForSequenceClassification(tiny_backbone()).save_pretrained(tmp_path / "classifier")
    model = EarlyExitForAudioClassification.from_backbone(
        str(tmp_path / "classifier"), exit_layers=[1, 3], backbone_config_overrides={"layerdrop": 0.05}, num_labels=2
    )
    assert model.config.backbone_config.layerdrop == 0.05
    with pytest.raises(ValueError, match="outside 1..3"):
        EarlyExitForAudioClassification.from_backbone(str(tmp_path / "backbone"), exit_layers=[4], num_labels=2)
    # An hf_mtkd checkpoint gives its encoder (e.g. new exits on a self-distilled model).
    model.save_pretrained(tmp_path / "early_exit")
    again = EarlyExitForAudioClassification.from_backbone(str(tmp_path / "early_exit"), exit_layers=[2], num_labels=2)
    for name, tensor in model.backbone.state_dict().items():
        assert torch.equal(again.backbone.state_dict()[name], tensor), name
    # A text encoder has no place for exits: the error comes before any weights are read.
    from transformers import BertModel

    BertModel(
        BertConfig(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=37)
    ).save_pretrained(tmp_path / "bert")
    with pytest.raises(ValueError, match="'bert' model; early exits are implemented for"):
        EarlyExitForAudioClassification.from_backbone(str(tmp_path / "bert"), exit_layers=[1], num_labels=2)


# ---------------------------------------------------------------------------------------------- export
@pytest.mark.parametrize(
    "model_type,stable",
    [("wav2vec2", False), ("wav2vec2", True), ("hubert", False), ("wavlm", True), ("data2vec-audio", False)],
)
def test_exported_stock_model_gives_the_exit_logits(tmp_path, model_type, stable):
    model = tiny_model(model_type, stable)
    values, mask = waveforms()
    full = model(values, attention_mask=mask)
    for layer, reference in [(1, full.exit_logits[0]), (3, full.exit_logits[1]), (4, full.logits)]:
        export_exit(model, layer, tmp_path / f"exit_{layer}")
        exported = AutoModelForAudioClassification.from_pretrained(tmp_path / f"exit_{layer}").eval()
        assert type(exported).__module__.startswith("transformers.models.")
        assert exported.config.num_hidden_layers == layer and exported.config.classifier_proj_size == 16
        assert not hasattr(exported.base_model, "masked_spec_embed")  # mask_time_prob=0
        assert exported.num_parameters() == model.num_parameters_at_exit(layer)
        with torch.no_grad():
            torch.testing.assert_close(exported(values, attention_mask=mask).logits, reference, atol=1e-5, rtol=1e-5)
            torch.testing.assert_close(
                exported(values).logits, model(values, exit_layer=layer).logits, atol=1e-5, rtol=1e-5
            )


@pytest.mark.parametrize("block", ["lstm", "cnn"])
def test_exit_with_block_exports_as_truncated_hf_mtkd_model(tmp_path, block):
    model = tiny_model(stable=True, exit_block=block)
    values, mask = waveforms()
    export_exit(model, 3, tmp_path)
    exported = AutoModelForAudioClassification.from_pretrained(tmp_path).eval()
    assert isinstance(exported, EarlyExitForAudioClassification)
    assert exported.config.exit_layers == [] and exported.config.final_block == block
    assert exported.config.backbone_config.num_hidden_layers == 3
    torch.testing.assert_close(
        exported(values, attention_mask=mask).logits, model(values, attention_mask=mask, exit_layer=3).logits
    )
    assert exported.num_parameters() == model.num_parameters_at_exit(3)


def test_exported_exit_loads_in_pipeline_without_hf_mtkd(tmp_path):
    model = tiny_model(stable=True)
    feature_extractor = Wav2Vec2FeatureExtractor(return_attention_mask=True)
    export_exit(model, 3, tmp_path, feature_extractor=feature_extractor)
    assert not any("auto_map" in json.loads((tmp_path / name).read_text()) for name in ("config.json",))
    audio = np.random.default_rng(1).standard_normal(4000).astype("float32")
    script = textwrap.dedent(
        f"""
        import json, sys
        import numpy as np
        from transformers import pipeline
        classifier = pipeline("audio-classification", model={str(tmp_path)!r})
        audio = np.load({str(tmp_path / "audio.npy")!r})
        result = classifier(audio, top_k=4)
        print(json.dumps({{"result": result, "hf_mtkd": any(m.startswith("hf_mtkd") for m in sys.modules),
                           "class": type(classifier.model).__name__}}))
        """
    )
    np.save(tmp_path / "audio.npy", audio)
    env = {key: value for key, value in os.environ.items() if key != "PYTHONPATH"} | {"OMP_NUM_THREADS": "1"}
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, cwd=tmp_path, env=env, timeout=300
    )
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report["hf_mtkd"] is False and report["class"] == "Wav2Vec2ForSequenceClassification"
    labels = [row["label"] for row in report["result"]]
    assert set(labels) == set(LABELS.values())
    # The pipeline's scores are the exit's softmax.
    with torch.no_grad():
        probs = model(
            torch.from_numpy(feature_extractor(audio, sampling_rate=16000, return_tensors="np").input_values),
            exit_layer=3,
        ).logits.softmax(-1)[0]
    for row in report["result"]:
        assert row["score"] == pytest.approx(probs[model.config.label2id[row["label"]]].item(), abs=1e-5)


def test_build_exit_model_rejects_unknown_layer():
    with pytest.raises(ValueError, match="not a head"):
        build_exit_model(tiny_model(), 2)
