"""SelfDistillationTrainer and SelfDistillationConfig on a tiny model and a few random clips."""

import numpy as np
import pytest
import torch
from torch.nn import functional as F
from transformers import AutoConfig, HfArgumentParser

from hf_mtkd.self_distillation import (
    EarlyExitModelArguments,
    SelfDistillationConfig,
    SelfDistillationTrainer,
    make_exit_compute_metrics,
)
from hf_mtkd.models.early_exit import EarlyExitForAudioClassification, fuse_by_margin


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    """Tiny models run 10-20x faster on one intra-op thread than on two contended ones (shared CI machines)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def tiny_model(exit_block="lstm", **backbone_overrides):
    torch.manual_seed(0)
    backbone = AutoConfig.for_model(
        "wav2vec2",
        hidden_size=32,
        num_hidden_layers=4,
        num_attention_heads=2,
        intermediate_size=37,
        conv_dim=(32, 32, 32),
        conv_kernel=(8, 4, 4),
        conv_stride=(4, 4, 4),
        num_conv_pos_embeddings=16,
        num_conv_pos_embedding_groups=2,
        mask_time_prob=0.0,
        **backbone_overrides,
    )
    return EarlyExitForAudioClassification.from_backbone(
        backbone, exit_layers=[1, 3], exit_block=exit_block, head_hidden_size=16, id2label={0: "angry", 1: "sad"}
    )


class Clips(torch.utils.data.Dataset):
    """Random clips whose class is their loudness, with a language id the model does not take."""

    def __init__(self, n=8, samples=2000):
        rng = np.random.default_rng(0)
        self.items = []
        for index in range(n):
            label = index % 2
            audio = rng.standard_normal(samples).astype("float32") * (0.2 + label)
            self.items.append({"input_values": audio, "labels": label, "language_id": index % 3})

    def __len__(self):
        return len(self.items)

    def __getitem__(self, index):
        return self.items[index]


def collate(examples):
    return {
        "input_values": torch.tensor(np.stack([e["input_values"] for e in examples])),
        "attention_mask": torch.ones(len(examples), len(examples[0]["input_values"]), dtype=torch.long),
        "labels": torch.tensor([e["labels"] for e in examples]),
        "language_id": torch.tensor([e["language_id"] for e in examples]),
    }


def accuracy(predictions, references):
    return {"wr": float((predictions == references).mean())}


def make_args(tmp_path, **overrides):
    options = dict(
        output_dir=str(tmp_path),
        max_steps=3,
        per_device_train_batch_size=4,
        per_device_eval_batch_size=4,
        learning_rate=1e-3,
        logging_steps=1,
        report_to=[],
        save_strategy="no",
        eval_strategy="no",
        load_best_model_at_end=False,
        use_cpu=True,
        remove_unused_columns=False,
        similarity="l2+cosine",
    )
    options.update(overrides)
    return SelfDistillationConfig(**options)


def test_training_updates_every_head_and_logs_each_part(tmp_path):
    model = tiny_model()
    model.freeze_feature_encoder()
    before = {name: param.detach().clone() for name, param in model.named_parameters()}
    trainer = SelfDistillationTrainer(
        model=model,
        args=make_args(tmp_path),
        train_dataset=Clips(),
        eval_dataset=Clips(4),
        data_collator=collate,
        compute_metrics=make_exit_compute_metrics(model.config.exit_layers, accuracy),
    )
    trainer.train()
    changed = {name for name, param in model.named_parameters() if not torch.equal(before[name], param)}
    for prefix in (
        "backbone.encoder.layers.0.",
        "backbone.encoder.layers.3.",
        "exit_heads.0.",
        "exit_heads.1.",
        "head.",
    ):
        assert any(name.startswith(prefix) for name in changed), prefix
    assert not any(name.startswith("backbone.feature_extractor.") for name in changed)

    logged = [entry for entry in trainer.state.log_history if "ce" in entry]
    assert len(logged) == 3
    # The values of each part: test_logged_parts_equal_the_loss_computed_by_hand_on_the_same_batch. The logged loss is
    # the weighted sum of the logged parts (gamma = alpha = beta = 1).
    first = logged[0]
    assert first["loss"] == pytest.approx(
        first["ce"] + first["ce_exits"] + first["kl"] + first["similarity"], rel=1e-4
    )

    # Evaluation: every head's accuracy and loss part against the trained model run here on the same clips.
    metrics = trainer.evaluate()
    batch = collate([Clips(4)[i] for i in range(4)])
    model.eval()
    with torch.no_grad():
        out = model(batch["input_values"], attention_mask=batch["attention_mask"])
    labels = batch["labels"]
    heads = {"": out.logits, "layer_1_": out.exit_logits[0], "layer_3_": out.exit_logits[1],
             "fusion_": fuse_by_margin(list(out.exit_logits))[0]}
    for prefix, logits in heads.items():
        assert metrics[f"eval_{prefix}wr"] == pytest.approx((logits.argmax(-1) == labels).float().mean().item()), (
            prefix
        )
    assert metrics["eval_ce"] == pytest.approx(F.cross_entropy(out.logits, labels).item(), rel=1e-5)
    for layer, logits in zip((1, 3), out.exit_logits):
        assert metrics[f"eval_ce_exit_{layer}"] == pytest.approx(F.cross_entropy(logits, labels).item(), rel=1e-5)
    kl = np.mean([hand_kl(out.logits, e, 1.0) for e in out.exit_logits])
    assert metrics["eval_kl"] == pytest.approx(kl, rel=1e-4, abs=1e-9)


def hand_kl(deep, exit_, temperature):
    """KL(softmax(deep / T) || softmax(exit / T)) from its definition, batch mean, times T^2."""
    log_p, log_q = (deep / temperature).log_softmax(-1), (exit_ / temperature).log_softmax(-1)
    return ((log_p.exp() * (log_p - log_q)).sum(-1).mean() * temperature**2).item()


def hand_similarity(deep, exit_):
    """Centred L2 + cosine between (batch, dim) representations, written out."""
    deep, exit_ = deep - deep.mean(0), exit_ - exit_.mean(0)
    l2 = ((exit_ - deep) ** 2).mean()
    cosine = 1 - (exit_ * deep).sum(-1) / (exit_.norm(dim=-1) * deep.norm(dim=-1))
    return (l2 + cosine.mean()).item()


def test_logged_parts_equal_the_loss_computed_by_hand_on_the_same_batch(tmp_path):
    """One step on one batch holding every clip: the logged CE of each head, KL, similarity and loss are what the
    definitions give on the untrained model's outputs for that batch (no dropout, so the training forward is the
    forward run here). T = 2 and unequal weights, so that a dropped T^2 or a swapped weight shows."""
    model = tiny_model(hidden_dropout=0.0, attention_dropout=0.0, activation_dropout=0.0, feat_proj_dropout=0.0,
                       layerdrop=0.0)
    with torch.no_grad():  # heads of O(1) logits: KL terms far from 0, so that a wrong exit changes them
        for head in [*model.exit_heads, model.head]:
            head.projector.weight.normal_(0, 0.5)
            head.classifier.weight.normal_(0, 0.5)
    clips = Clips()
    batch = collate([clips[i] for i in range(len(clips))])
    with torch.no_grad():
        out = model.eval()(batch["input_values"], attention_mask=batch["attention_mask"])
    labels = batch["labels"]
    gamma, alpha, beta, temperature = 0.5, 2.0, 3.0, 2.0
    args = make_args(tmp_path, max_steps=1, per_device_train_batch_size=len(clips), gamma=gamma, alpha=alpha,
                     beta=beta, kd_temperature=temperature, similarity="l2+cosine", similarity_level="embedding")
    trainer = SelfDistillationTrainer(model=model, args=args, train_dataset=clips, data_collator=collate)
    trainer.train()
    (logged,) = [entry for entry in trainer.state.log_history if "ce" in entry]

    ce = -out.logits.log_softmax(-1)[torch.arange(len(labels)), labels].mean().item()
    ce_exit = [-e.log_softmax(-1)[torch.arange(len(labels)), labels].mean().item() for e in out.exit_logits]
    kl = [hand_kl(out.logits, e, temperature) for e in out.exit_logits]
    similarity = [hand_similarity(out.pooled_output, e) for e in out.exit_pooled_outputs]
    assert len(set(np.round(kl, 6))) == 2  # the exits disagree with the deepest head differently
    assert logged["ce"] == pytest.approx(ce, rel=1e-5)
    assert logged["ce_exit_1"] == pytest.approx(ce_exit[0], rel=1e-5)
    assert logged["ce_exit_3"] == pytest.approx(ce_exit[1], rel=1e-5)
    assert logged["ce_exits"] == pytest.approx(np.mean(ce_exit), rel=1e-5)
    assert logged["kl"] == pytest.approx(np.mean(kl), rel=1e-5)
    assert logged["similarity"] == pytest.approx(np.mean(similarity), rel=1e-5)
    expected = ce + gamma * np.mean(ce_exit) + alpha * np.mean(kl) + beta * np.mean(similarity)
    assert logged["loss"] == pytest.approx(expected, rel=1e-4)


def test_zero_weights_reduce_to_fine_tuning_the_deepest_head(tmp_path):
    model = tiny_model()
    trainer = SelfDistillationTrainer(
        model=model,
        args=make_args(tmp_path, gamma=0.0, alpha=0.0, beta=0.0),
        train_dataset=Clips(),
        data_collator=collate,
    )
    batch = collate([Clips()[i] for i in range(4)])
    model.eval()
    loss = trainer.compute_loss(model, batch)
    expected = model(batch["input_values"], attention_mask=batch["attention_mask"], labels=batch["labels"]).loss
    assert loss.item() == pytest.approx(expected.item(), rel=1e-6)
    loss.backward()
    assert all(param.grad is None or not param.grad.any() for param in model.exit_heads.parameters())


@pytest.mark.parametrize("centre", [True, False])
@pytest.mark.parametrize("level", ["embedding", "linear"])
def test_similarity_level_picks_the_representations(tmp_path, level, centre):
    model = tiny_model().eval()
    args = make_args(tmp_path, gamma=0.0, alpha=0.0, beta=1.0, similarity="l1", similarity_level=level,
                     centre_similarity=centre)
    trainer = SelfDistillationTrainer(model=model, args=args, data_collator=collate)
    batch = collate([Clips()[i] for i in range(4)])
    loss = trainer.compute_loss(model, batch)
    out = model(batch["input_values"], attention_mask=batch["attention_mask"])
    deep = out.pooled_output if level == "embedding" else out.projected_output
    exits = out.exit_pooled_outputs if level == "embedding" else out.exit_projected_outputs
    assert deep.shape[-1] == (32 if level == "embedding" else 16)
    if centre:  # each representation minus its batch mean (the default; the paper's raw form without)
        deep, exits = deep - deep.mean(0), [e - e.mean(0) for e in exits]
    similarity = sum((e - deep).abs().mean() for e in exits) / len(exits)
    ce = torch.nn.functional.cross_entropy(out.logits, batch["labels"])
    assert loss.item() == pytest.approx((ce + similarity).item(), rel=1e-5)


def test_config_validation_and_cli_parsing(tmp_path):
    for bad, message in [
        (dict(similarity="l3"), "Unknown similarity"),
        (dict(similarity_level="logits"), "similarity_level"),
        (dict(kd_temperature=0.0), "kd_temperature"),
        (dict(beta=-1.0), "beta"),
    ]:
        with pytest.raises(ValueError, match=message):
            SelfDistillationConfig(output_dir=str(tmp_path), **bad)
    parser = HfArgumentParser((EarlyExitModelArguments, SelfDistillationConfig))
    model_args, args = parser.parse_args_into_dataclasses(
        ["--exit_layers", "10", "3", "8", "--exit_block", "gru", "--output_dir", str(tmp_path), "--alpha", "0.5",
         "--similarity", "l1+cosine", "--detach_deep_target", "false"]
    )
    assert model_args.exit_layers == [3, 8, 10] and model_args.model_kwargs()["exit_block"] == "gru"
    assert args.alpha == 0.5 and args.similarity == "l1+cosine" and args.detach_deep_target is False
    with pytest.raises(ValueError, match="duplicates"):
        EarlyExitModelArguments(exit_layers=[3, 3])
    with pytest.raises(ValueError, match="Unknown exit_block"):
        EarlyExitModelArguments(exit_block="attention")
    with pytest.raises(TypeError, match="SelfDistillationConfig"):
        from transformers import TrainingArguments

        SelfDistillationTrainer(model=tiny_model(), args=TrainingArguments(output_dir=str(tmp_path)))


def test_label_smoothing_factor_is_honoured_like_plain_fine_tuning(tmp_path):
    from transformers.trainer_pt_utils import LabelSmoother

    model = tiny_model().eval()
    args = make_args(tmp_path, gamma=0.0, alpha=0.0, beta=0.0, label_smoothing_factor=0.1)
    trainer = SelfDistillationTrainer(model=model, args=args, data_collator=collate)
    batch = collate([Clips()[i] for i in range(4)])
    logits = model(batch["input_values"], attention_mask=batch["attention_mask"]).logits
    # What the stock Trainer computes for a plain fine-tuning run with the same argument.
    assert trainer.compute_loss(model, batch).item() == pytest.approx(
        LabelSmoother(epsilon=0.1)({"logits": logits}, batch["labels"]).item(), rel=1e-6)
