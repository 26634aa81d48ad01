"""Self-distillation in the shared training flow: build the early-exit model, train, then report
every exit (UR/WR, parameters, latency) and export each exit as a model of its own."""

from __future__ import annotations

import logging
import os

from torch.utils.data import DataLoader
from transformers import AutoConfig

from ..registry import CardSection, register_method
from ..metrics import format_comparison_table, save_metrics_json
from ..modeling_utils import (
    default_feature_extractor,
    freeze_feature_encoder,
    label_config_kwargs,
    load_feature_extractor,
)
from ..training.method import Method, RunSetup
from .card import exit_summary, heads_section, layer_of
from .config import EarlyExitModelArguments, SelfDistillationConfig
from .export import export_exit
from .evaluation import evaluate_exits_with_trainer
from ..models.early_exit.modeling_early_exit import EarlyExitForAudioClassification
from .trainer import SelfDistillationTrainer

logger = logging.getLogger(__name__)

EXITS_DIR = "exits"  # <output_dir>/exits/layer_<a>: each exit exported as a model of its own


@register_method
class SelfDistillationMethod(Method):
    name = "self_distillation"
    display_name = "Self-distillation (deepest head)"
    training_args_class = SelfDistillationConfig
    trainer_class = SelfDistillationTrainer
    extra_dataclasses = (EarlyExitModelArguments,)

    def build_model(self, setup: RunSetup):
        model_args = setup.model_args
        (exit_args,) = setup.extra_args
        labels = label_config_kwargs(list(setup.label_names))
        if model_args.model_name_or_path is not None:
            model = EarlyExitForAudioClassification.from_backbone(
                model_args.model_name_or_path,
                **exit_args.model_kwargs(),
                id2label=labels["id2label"],
                label2id=labels["label2id"],
                backbone_config_overrides=model_args.config_overrides,
                cache_dir=model_args.cache_dir,
                revision=model_args.model_revision,
            )
            feature_extractor = load_feature_extractor(model_args)
        else:
            backbone_config = AutoConfig.for_model(model_args.model_type, **(model_args.config_overrides or {}))
            model = EarlyExitForAudioClassification.from_backbone(
                backbone_config, **exit_args.model_kwargs(), id2label=labels["id2label"], label2id=labels["label2id"]
            )
            feature_extractor = default_feature_extractor(backbone_config)
        if model_args.freeze_feature_encoder:
            freeze_feature_encoder(model)
        return model, feature_extractor

    def build_trainer(self, setup: RunSetup, *, model, feature_extractor, splits, collators):
        trainer = super().build_trainer(setup, model=model, feature_extractor=feature_extractor, splits=splits,
                                        collators=collators)
        if trainer.is_fsdp_enabled:
            # summary_extras runs every exit on the main process alone, which a sharded model cannot do.
            raise ValueError(
                "self_distillation does not support FSDP (the per-exit report and exit export need the whole "
                "model on one process); use recipes/accelerate_configs/ddp.yaml or zero2.yaml."
            )
        return trainer

    def summary_extras(self, setup: RunSetup, fitted, *, splits, feature_extractor, collators) -> dict:
        """UR/WR for every exit, fusion and the deepest head on validation and test, scored by the standard
        report's window rule (so the deepest head's numbers are those of `<split>_metrics.json`); export each exit."""
        trainer = fitted
        args = setup.training_args
        column = setup.data_args.language_column_name
        main = trainer.is_world_process_zero()
        evaluations = {}
        for split in ("validation", "test"):
            dataset = splits[split]
            # Latency as before: the first whole-clip batch of the test split (timed on the main process only).
            loader = DataLoader(dataset, batch_size=args.per_device_eval_batch_size, collate_fn=collators[1]) \
                if main and split == "test" else None
            languages = list(dataset[column]) if column and column in dataset.column_names else None
            evaluation = evaluate_exits_with_trainer(trainer, dataset, latency_loader=loader, latency_repeats=3,
                                                     languages=languages)  # every process: predict is a collective
            evaluations[split] = evaluation
        if not main:
            return {}
        per_head = {split: evaluation.metrics(list(setup.label_names), n_bootstrap=args.n_bootstrap, seed=args.seed)
                    for split, evaluation in evaluations.items()}
        for split, results in per_head.items():
            save_metrics_json(results, os.path.join(args.output_dir, f"{split}_metrics_per_exit.json"))
        evaluation, test_heads = evaluations["test"], per_head["test"]
        print(format_comparison_table(test_heads))
        rows = ["head        params(M)  latency(ms)  UR     WR"]
        for head, result in test_heads.items():
            if head not in evaluation.num_parameters:  # fusion has no parameters or latency of its own
                continue
            rows.append(
                f"{head:<10}  {evaluation.num_parameters[head] / 1e6:9.2f}  {evaluation.latency_s[head] * 1e3:11.1f}"
                f"  {result['overall']['UR'] * 100:5.1f}  {result['overall']['WR'] * 100:5.1f}"
            )
        print("\n".join(rows))
        exported = {}
        for layer in trainer.model.config.exit_layers:
            relative = f"{EXITS_DIR}/layer_{layer}"  # relative to output_dir: the summary names no local path
            export_exit(trainer.model, layer, os.path.join(args.output_dir, relative),
                        feature_extractor=feature_extractor)
            exported[layer] = relative
        return {
            "exits": {
                head: {
                    "metrics": result,
                    "num_parameters": evaluation.num_parameters.get(head),
                    "latency_s": evaluation.latency_s.get(head),
                }
                for head, result in test_heads.items()
            },
            "validation_exits": {head: {"metrics": result} for head, result in per_head["validation"].items()},
            "exported_exits": exported,
        }

    @classmethod
    def result_rows(cls, summary) -> dict[str, dict]:
        """Every head (exits in depth order, the deepest, fusion), named with its latency relative to the deepest
        head's where it was timed."""
        test, validation = summary.get("exits") or {}, summary.get("validation_exits") or {}
        if not test:
            return super().result_rows(summary)
        deepest = (test.get("deepest") or {}).get("latency_s")
        rows = {}
        for head in sorted(test, key=lambda name: (layer_of(name) is None, layer_of(name) or 0, name)):
            latency = test[head].get("latency_s")
            name = f"{head} ({latency / deepest:.2f}x the deepest's latency)" if latency and deepest else head
            rows[name] = {"validation": validation[head]["metrics"], "test": test[head]["metrics"]}
        return rows

    def card_sections(self, setup: RunSetup, summary) -> list[CardSection]:
        exits = summary.get("exits")
        return [heads_section(exits)] if exits else []

    def exported_models(self, setup: RunSetup, summary) -> dict:
        """Each exported exit, with a summary of its own: its folder's card tells the exit's results."""
        return {relative: exit_summary(summary, f"layer_{layer}")
                for layer, relative in (summary.get("exported_exits") or {}).items()}
