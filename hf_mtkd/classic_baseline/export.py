"""The GE2E pretrained floor as a transformers model.

With `classic_feature_set: ge2e` the floor is a linear function of the window statistics that
`GE2EForAudioClassification` computes itself, so it fits in that model exactly: no hidden layer, no LayerNorm
(`classifier_norm: none`), and a Linear layer holding the logistic regression with the StandardScaler folded in,
W' = W / sigma, b' = b - W' mu. Saved beside `classic_baseline.json`, it loads through the Auto classes and
`pipeline("audio-classification")` and serves as an MTKD teacher at the cost of one encoder pass, where training a
head on the frozen encoder runs the encoder every epoch.

The floor scores whole clips (features of everything decoded, up to `max_duration_seconds`), so the export records
that length as its window (`train_window_seconds`): evaluation, `hf-mtkd predict` and a teacher on whole clips then
see each clip as the floor did.
"""

from __future__ import annotations

import numpy as np

from .model import ClassicBaseline


def linear_weights(baseline: ClassicBaseline) -> tuple[np.ndarray, np.ndarray]:
    """(weight (K, D), bias (K,)) in label order, float64, such that softmax(x @ weight.T + bias) equals the fitted
    pipeline's predict_proba(x) on raw (unscaled) features.

    scikit-learn's binary logistic regression keeps one row (the logit of classes_[1] against classes_[0]); as a
    two-way softmax that is logits (0, z). Multinomial keeps one row per class, in classes_ order."""
    scaler = baseline.pipeline.named_steps["standardscaler"]
    classifier = baseline.pipeline.named_steps["logisticregression"]
    num_labels = len(baseline.label_names)
    classes = np.asarray(classifier.classes_)
    if sorted(classes.tolist()) != list(range(num_labels)):
        raise ValueError(f"The floor was fitted on classes {classes.tolist()} of {num_labels} labels "
                         f"{baseline.label_names}: a linear export needs every class in training.")
    coef = np.asarray(classifier.coef_, dtype=np.float64)
    intercept = np.asarray(classifier.intercept_, dtype=np.float64)
    if coef.shape[0] == 1 and num_labels == 2:
        coef, intercept = np.vstack([np.zeros_like(coef), coef]), np.concatenate([[0.0], intercept])
    if coef.shape[0] != num_labels:
        raise ValueError(f"coef_ has {coef.shape[0]} rows for {num_labels} classes.")
    mean = np.asarray(scaler.mean_, dtype=np.float64) if scaler.with_mean else 0.0
    scale = np.asarray(scaler.scale_, dtype=np.float64) if scaler.with_std else 1.0
    weight = np.zeros_like(coef)
    bias = np.zeros_like(intercept)
    weight[classes] = coef / scale
    bias[classes] = intercept - (weight[classes] * mean).sum(axis=1)
    return weight, bias


def export_ge2e_floor(baseline: ClassicBaseline, output_dir: str, *, window_seconds: float):
    """Save the fitted GE2E floor into `output_dir` as a GE2EForAudioClassification (classifier_hidden_size 0,
    classifier_norm none) with its feature extractor and id2label; returns the model."""
    import torch

    from ..models.ge2e import GE2EForAudioClassification
    from ..windowing import save_window_to_config
    from .features import _ge2e_encoder

    encoder, feature_extractor = _ge2e_encoder()  # the very encoder and front end the floor's features came from
    labels = list(baseline.label_names)
    model = GE2EForAudioClassification.from_resemblyzer(
        classifier_hidden_size=0, classifier_norm="none", num_labels=len(labels),
        id2label=dict(enumerate(labels)), label2id={label: i for i, label in enumerate(labels)})
    model.ge2e.load_state_dict(encoder.state_dict())
    weight, bias = linear_weights(baseline)
    linear = model.classifier[-1]
    with torch.no_grad():
        linear.weight.copy_(torch.from_numpy(weight))
        linear.bias.copy_(torch.from_numpy(bias))
    save_window_to_config(model.config, window_seconds)
    model.eval().save_pretrained(output_dir)
    feature_extractor.save_pretrained(output_dir)
    return model


__all__ = ["export_ge2e_floor", "linear_weights"]
