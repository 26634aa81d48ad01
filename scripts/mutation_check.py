#!/usr/bin/env python
"""Do the tests catch the bugs they are named after? Plant each bug of a table in a scratch copy and see.

Every entry below is one small, named bug: a text replacement in hf_mtkd's source and the test files (or test
ids) that must fail on it. The repository is copied once to a temporary folder (the real tree is never
edited); each bug is written into that copy, only its tests run (`python -m pytest -x -q`, PYTHONPATH at the
copy, one thread), and the file is put back before the next. A bug is *caught* when pytest reports failing
tests (exit status 1), *survived* when they pass, and an *error* when pytest could not run them (collection
or usage error: that proves nothing about the tests).

The script exits non-zero if any bug survived, any run errored, any target text is not found exactly once
in its file (the code moved: update the table, do not let it rot), or the tests fail on the unmutated copy
(`--no-baseline` skips that check).

Not part of the default test run: it trains tiny models over and over (about 20 minutes on 2 shared cores,
the baseline run included).

    python scripts/mutation_check.py                 # every bug
    python scripts/mutation_check.py --list          # the table
    python scripts/mutation_check.py t_squared_dropped kl_direction_swapped   # some of them
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class Mutation:
    name: str
    bug: str
    edits: tuple[tuple[str, str, str], ...]  # (file, text, replacement); text must occur exactly once
    tests: tuple[str, ...]  # pytest arguments: files or test ids


def m(name, bug, edits, tests) -> Mutation:
    return Mutation(name, bug, tuple(edits), tuple(tests))


MTKD_TEACHERS = "hf_mtkd/distillation/teachers.py"
MTKD_LOSSES = "hf_mtkd/mtkd/losses.py"
MTKD_TRAINER = "hf_mtkd/mtkd/trainer.py"

MUTATIONS = [
    m(
        "predict_ignores_torch_num_threads",
        "hf-mtkd predict runs torch's default threads whatever --torch_num_threads says",
        [
            (
                "hf_mtkd/cli/predict.py",
                "        apply_num_threads(args.torch_num_threads, count if count is not None else object())\n",
                "        pass\n",
            )
        ],
        ["tests/test_inference.py::test_predict_honours_torch_num_threads"],
    ),
    m(
        "threads_auto_ignores_idle_cores",
        "torch_num_threads auto gives a large model every core beside a busy job",
        [
            (
                "hf_mtkd/utils/threads.py",
                "        return max(1, min(default, int(idle + 0.5)))",
                "        return default",
            )
        ],
        ["tests/test_model_selection.py::test_auto_threads_for_a_large_model_follow_the_idle_cores"],
    ),
    # ------------------------------------------------------------------ issue 22: the GE2E floor exported as a model
    m(
        "ge2e_export_mean_not_folded",
        "the exported GE2E floor's bias leaves out the scaler's mean (b' = b)",
        [
            (
                "hf_mtkd/classic_baseline/export.py",
                "bias[classes] = intercept - (weight[classes] * mean).sum(axis=1)",
                "bias[classes] = intercept",
            )
        ],
        ["tests/test_ge2e_floor_export.py::test_folded_weights_give_sklearns_probabilities"],
    ),
    m(
        "ge2e_export_binary_row_as_first_class",
        "a binary floor's single coefficient row is exported as the first class's",
        [
            (
                "hf_mtkd/classic_baseline/export.py",
                "np.vstack([np.zeros_like(coef), coef])",
                "np.vstack([coef, np.zeros_like(coef)])",
            )
        ],
        ["tests/test_ge2e_floor_export.py::test_folded_weights_give_sklearns_probabilities"],
    ),
    m(
        "ge2e_export_windowed",
        "the exported GE2E floor records the students' training window, not whole clips",
        [
            (
                "hf_mtkd/classic_baseline/method.py",
                "window_seconds=setup.data_args.max_duration_seconds)",
                "window_seconds=setup.window_seconds)",
            )
        ],
        [
            "tests/test_ge2e_floor_export.py::"
            "test_exported_floor_equals_the_classic_floor_and_loads_with_auto_classes_and_pipeline"
        ],
    ),
    # ------------------------------------------------------------------ issue 19: output_dir safety
    m(
        "stage_name_not_checked",
        "a stage name like ../../victim escapes the pipeline folder",
        [
            (
                "hf_mtkd/multi_stage.py",
                'if not isinstance(name, str) or not FOLDER_NAME.match(name) or ".." in name:',
                "if False:",
            )
        ],
        [
            "tests/test_output_dir_safety.py::test_a_stage_name_that_leaves_the_pipeline_folder_is_refused_before_anything_runs"
        ],
    ),
    m(
        "overwrite_removes_foreign_files",
        "overwriting a finished run empties the whole folder, the user's files too",
        [
            (
                "hf_mtkd/training/run_record.py",
                "        if os.path.lexists(path) and not os.path.isdir(path):",
                "        if False:",
            ),
            (
                "hf_mtkd/training/run_record.py",
                "    _remove_empty_parents(folder, removed)\n    return removed, files_in(folder)",
                "    for name in os.listdir(folder):\n        p = os.path.join(folder, name)\n"
                "        shutil.rmtree(p) if os.path.isdir(p) else os.remove(p)\n    return removed, []",
            ),
        ],
        ["tests/test_output_dir_safety.py::test_overwrite_keeps_files_the_run_did_not_write"],
    ),
    m(
        "foreign_checkpoint_resumed",
        "a checkpoint found in output_dir is resumed whatever run made it",
        [("hf_mtkd/training/run.py", "            check_checkpoint(last, state)\n", "")],
        ["tests/test_output_dir_safety.py::test_a_checkpoint_is_resumed_only_by_the_run_that_made_it"],
    ),
    m(
        "checkpoint_without_run_record",
        "checkpoints are saved without the run's record",
        [
            (
                "hf_mtkd/training/trainer.py",
                "                copy_record_into(folder, self.args.output_dir)\n",
                "                pass\n",
            )
        ],
        ["tests/test_output_dir_safety.py::test_a_checkpoint_is_resumed_only_by_the_run_that_made_it"],
    ),
    m(
        "full_disk_partial_checkpoint_kept",
        "a checkpoint save that fails on a full disk leaves the partial checkpoint",
        [
            (
                "hf_mtkd/training/trainer.py",
                "            if self.args.should_save and os.path.isdir(folder):\n"
                "                shutil.rmtree(folder)\n",
                "",
            )
        ],
        ["tests/test_output_dir_safety.py::test_a_full_disk_names_the_checkpoint_and_leaves_no_partial_one"],
    ),
    m(
        "dropped_rows_only_logged",
        "rows dropped for an unlisted label are only logged, not in data_warnings",
        [
            (
                "hf_mtkd/data/labels.py",
                '        report.warn(\n            f"Dropped {sum(unlisted.values())}',
                '        logger.warning(\n            f"Dropped {sum(unlisted.values())}',
            )
        ],
        ["tests/test_output_dir_safety.py::test_a_test_clip_dropped_for_its_label_is_in_the_metrics_and_card"],
    ),
    m(
        "unseen_language_not_warned",
        "a test language with no training clips is scored without a warning",
        [
            (
                "hf_mtkd/data/prepare.py",
                "    check_language_coverage(splits, data_args.language_column_name, report)\n",
                "",
            )
        ],
        ["tests/test_output_dir_safety.py::test_a_language_never_seen_in_training_is_a_warning"],
    ),
    # ------------------------------------------------------------------ issue 21: selection, warnings, threads
    m(
        "best_model_smoothing_ignored",
        "best_model_smoothing accepted but each evaluation judged alone",
        [("hf_mtkd/training/trainer.py", "        if k <= 1 or key is None:", "        if True:")],
        ["tests/test_model_selection.py::test_best_model_smoothing_selects_on_the_mean_of_consecutive_evaluations"],
    ),
    m(
        "collapse_only_below_half",
        "the collapse warning needs fewer than half the classes (2 of 4 passes)",
        [
            (
                "hf_mtkd/training/evaluation.py",
                "len(predicted) > len(label_names) / 2",
                "len(predicted) >= len(label_names) / 2",
            )
        ],
        ["tests/test_model_selection.py::test_prediction_collapse_fires_at_half_of_the_classes_or_fewer"],
    ),
    m(
        "collapse_not_in_summary",
        "a split's prediction collapse stays in its metrics file, not the run's warnings",
        [("hf_mtkd/training/run.py", "    training_warnings += [w for split", "    training_warnings + [w for split")],
        ["tests/test_model_selection.py::test_a_collapsed_run_says_so_in_summary_metrics_and_card"],
    ),
    m(
        "early_checkpoint_boundary",
        "a checkpoint at exactly 20% of training is not reported as early",
        [("hf_mtkd/training/trainer.py", "    if best > fraction * total:", "    if best >= fraction * total:")],
        ["tests/test_model_selection.py::test_a_checkpoint_from_the_first_fifth_of_training_is_a_warning"],
    ),
    m(
        "threads_auto_uses_torch_default",
        "torch_num_threads auto keeps torch's default for tiny models",
        [("hf_mtkd/utils/threads.py", "        return 1\n", "        return default\n")],
        ["tests/test_model_selection.py::test_thread_count_auto_gives_small_models_one_thread"],
    ),
    m(
        "validation_one_speaker_per_language",
        "a drawn validation takes one speaker from a language with four or more",
        [
            (
                "hf_mtkd/data/splits.py",
                "        least = 2 if two_from is not None and drawable[key] >= two_from else 1",
                "        least = 1",
            )
        ],
        ["tests/test_data.py::test_a_drawn_validation_takes_two_speakers_from_a_language_with_four"],
    ),
    m(
        "validation_min_clips_ignored",
        "no warning for classes with a handful of validation clips",
        [("hf_mtkd/data/prepare.py", "    check_validation_size(splits, data_args, report)\n", "")],
        ["tests/test_data.py::test_few_validation_clips_per_class_are_a_warning_naming_the_language"],
    ),
    m(
        "console_prints_whole_log_dicts",
        "the console gets transformers' whole log dict per log",
        [
            (
                "hf_mtkd/training/trainer.py",
                "            if any(type(callback) is stock for callback in self.callback_handler.callbacks):",
                "            if False:",
            )
        ],
        ["tests/test_readable_logs.py::test_each_log_is_one_short_line_on_the_console"],
    ),
    # ------------------------------------------------------------------ the four bugs of issue 16
    m(
        "teacher_logits_not_reordered",
        "teachers' raw logits used, not reordered to the student's label order",
        [(MTKD_TEACHERS, "logits = logits[:, teacher.label_index.to(logits.device)]", "logits = logits")],
        ["tests/test_teacher_alignment.py"],
    ),
    m(
        "teacher_label_index_inverted",
        "the inverse permutation: student label j taken from teacher class student_labels.index(teacher_labels[j])",
        [
            (
                MTKD_TEACHERS,
                "[teacher_labels.index(label) for label in student_labels]",
                "[student_labels.index(label) for label in teacher_labels]",
            )
        ],
        ["tests/test_teacher_alignment.py"],
    ),
    m(
        "cache_fingerprint_ignores_weights",
        "the teacher-logit cache key leaves out the teacher's weights",
        [(MTKD_TEACHERS, "    hash_weights(teacher.model, digest)\n", "")],
        ["tests/test_teacher_cache.py"],
    ),
    m(
        "cache_key_ignores_teachers",
        "the teacher-logit cache key holds the teacher's name, not its fingerprint",
        [
            (
                "hf_mtkd/distillation/cache.py",
                "key.update(teacher_fingerprint(teacher).encode())",
                "key.update(teacher.name.encode())",
            )
        ],
        ["tests/test_teacher_cache.py"],
    ),
    m(
        "collator_epoch_from_process",
        "after a resume the collator's epoch counts the epochs begun in this process, not the restored trainer state",
        [
            (
                "hf_mtkd/training/trainer.py",
                "set_epoch(int((state.epoch or 0.0) + 1e-6))",
                "self.begun = getattr(self, 'begun', -1) + 1; set_epoch(self.begun)",
            )
        ],
        ["tests/test_resume.py::test_finetune_resumes_after_sigkill_to_identical_weights"],
    ),
    m(
        "teacher_weights_not_detached",
        "gradients flow through the cosine teacher weights into the student",
        [
            (
                MTKD_LOSSES,
                "student = student_logits.detach().float().unsqueeze(0)",
                "student = student_logits.float().unsqueeze(0)",
            ),
            (
                MTKD_LOSSES,
                "cos = F.cosine_similarity(student, teacher_logits.detach().float(), dim=-1)",
                "cos = F.cosine_similarity(student, teacher_logits.float(), dim=-1)",
            ),
            (
                MTKD_LOSSES,
                "weighted = (teacher_weights.detach().float().transpose(0, 1) * kl).sum(0)",
                "weighted = (teacher_weights.float().transpose(0, 1) * kl).sum(0)",
            ),
        ],
        ["tests/test_mtkd_losses.py"],
    ),
    # ------------------------------------------------------------------ losses
    m(
        "t_squared_dropped",
        "the KD term is not scaled by T^2",
        [(MTKD_LOSSES, "kl_term = weighted.mean() * temperature**2", "kl_term = weighted.mean()")],
        ["tests/test_mtkd_losses.py"],
    ),
    m(
        "kl_direction_swapped",
        "forward KL computes KL(student || teacher)",
        [("hf_mtkd/distillation/losses.py", 'if direction == "forward":', 'if direction == "reverse":')],
        ["tests/test_kd_losses.py", "tests/test_mtkd_losses.py"],
    ),
    m(
        "mtkd_label_smoothing_ignored",
        "MTKD's CE ignores label_smoothing_factor",
        [(MTKD_TRAINER, "label_smoothing=args.label_smoothing_factor,", "label_smoothing=0.0,")],
        ["tests/test_mtkd_trainer.py::test_label_smoothing_factor_is_honoured"],
    ),
    m(
        "self_distillation_t_squared_dropped",
        "self-distillation's KL term is not scaled by T^2",
        [
            (
                "hf_mtkd/self_distillation/losses.py",
                "return terms.sum() / student_logits.shape[0] * temperature**2",
                "return terms.sum() / student_logits.shape[0]",
            )
        ],
        ["tests/test_self_distillation_losses.py"],
    ),
    # ------------------------------------------------------------------ teacher weights and routing
    m(
        "language_routing_replaced_by_cosine",
        "teacher_weighting=language returns the cosine weights",
        [
            (
                MTKD_TRAINER,
                'if args.teacher_weighting == "cosine":\n            return cosine',
                "if True:\n            return cosine",
            )
        ],
        ["tests/test_training.py::test_mtkd_trains_student_only_and_logs_weights"],
    ),
    m(
        "no_pooling_over_processes",
        "logged means use this process's samples only (no gather)",
        [("hf_mtkd/utils/distributed.py", "parts = gather_object([dict(totals)])", "parts = [dict(totals)]")],
        ["tests/test_distributed.py::test_mtkd_two_processes_equal_one_process"],
    ),
    m(
        "mtkd_loss_not_divided_for_ga",
        "MTKD claims its loss is already scaled for gradient accumulation",
        [(MTKD_TRAINER, "loss_is_scaled_for_ga = False", "loss_is_scaled_for_ga = True")],
        ["tests/test_gradient_accumulation.py"],
    ),
    # ------------------------------------------------------------------ self-distillation model
    m(
        "early_exit_runs_all_layers",
        "an exit runs every transformer layer, not only those below it",
        [
            (
                "hf_mtkd/models/early_exit/modeling_early_exit.py",
                "for index in range(stop):",
                "for index in range(self.num_hidden_layers):",
            )
        ],
        ["tests/test_self_distillation_modeling.py::test_exit_runs_only_the_layers_below_it"],
    ),
    m(
        "export_takes_the_wrong_head",
        "exporting an exit copies the first exit's head",
        [
            (
                "hf_mtkd/self_distillation/export.py",
                "model.exit_heads[model.config.exit_layers.index(stop)]",
                "model.exit_heads[0]",
            )
        ],
        ["tests/test_self_distillation_modeling.py::test_exported_stock_model_gives_the_exit_logits"],
    ),
    # ------------------------------------------------------------------ data
    m(
        "crops_unseeded",
        "random crops drawn from an unseeded generator",
        [
            (
                "hf_mtkd/data/collator.py",
                "rng = np.random.default_rng([self.seed % (1 << 64), self.epoch, clip_key, len(waveform)])",
                "rng = np.random.default_rng()",
            )
        ],
        ["tests/test_data.py::test_random_crop_changes_window_deterministic_crop_does_not"],
    ),
    m(
        "decode_error_without_file_name",
        "an undecodable file's error does not name it",
        [
            (
                "hf_mtkd/data/audio.py",
                'raise AudioDecodeError(f"{name}: cannot decode audio ({err})") from err',
                'raise AudioDecodeError(f"cannot decode audio ({err})") from err',
            )
        ],
        ["tests/test_data.py::test_decode_errors_name_the_file"],
    ),
    m(
        "validation_draw_not_stratified",
        "validation speakers drawn across languages, not per language",
        [
            (
                "hf_mtkd/data/splits.py",
                "if not any(quotas.values()):  # every language has one speaker",
                "if True:  # every language has one speaker",
            )
        ],
        ["tests/test_data.py::test_drawn_validation_speakers_are_stratified_by_language"],
    ),
    m(
        "validation_draw_language_blind",
        "validation speakers drawn across languages with no preference for covering "
        "each (language, class): a small 2-language set loses a language for some seeds",
        [
            (
                "hf_mtkd/data/splits.py",
                "if not any(quotas.values()):  # every language has one speaker",
                "if True:  # every language has one speaker",
            ),
            (
                "hf_mtkd/data/splits.py",
                "score = (kept_labels == all_labels, len(drawn_pairs), len({label for _, label in drawn_pairs}))",
                "score = (kept_labels == all_labels, len({label for _, label in drawn_pairs}))",
            ),
        ],
        ["tests/test_data.py::test_drawn_validation_keeps_every_language_of_a_small_set"],
    ),
    # ------------------------------------------------------------------ outputs, hub, pipeline, inference
    m(
        "token_pickled",
        "training_args.bin is pickled with the Hub token in it",
        [
            (
                "hf_mtkd/training/trainer.py",
                "        for name in tokens:\n            setattr(self.args, name, None)\n",
                "",
            )
        ],
        ["tests/test_faults.py::test_hub_token_never_written_or_logged"],
    ),
    m(
        "stage_reuse_ignores_data",
        "a finished pipeline stage is reused although its data changed",
        [("hf_mtkd/multi_stage.py", 'if record.get("data_sha256") != state["data_sha256"]:', "if False:")],
        ["tests/test_multi_stage.py::test_rerun_after_changing_data_dir_and_learning_rate_retrains"],
    ),
    m(
        "prediction_reads_first_minute",
        "predict decodes only the first minute of a long file",
        [
            (
                "hf_mtkd/inference/predict.py",
                "waveform = decode_audio(name, self.sampling_rate)",
                "waveform = decode_audio(name, self.sampling_rate, max_seconds=60.0)",
            )
        ],
        ["tests/test_inference.py::test_long_file_is_read_to_its_end"],
    ),
    m(
        "prediction_first_batch_only",
        "predict averages the first batch of windows only",
        [
            (
                "hf_mtkd/inference/predict.py",
                "for i in range(0, len(windows), self.batch_size):",
                "for i in range(0, min(len(windows), self.batch_size), self.batch_size):",
            )
        ],
        ["tests/test_inference.py::test_long_file_is_read_to_its_end"],
    ),
    m(
        "prediction_averages_probabilities",
        "predict averages the windows' probabilities instead of their logits",
        [
            (
                "hf_mtkd/inference/predict.py",
                "return np.concatenate(logits).mean(axis=0), len(windows)",
                "z = np.concatenate(logits); p = np.exp(z - z.max(-1, keepdims=True)); "
                "return np.log((p / p.sum(-1, keepdims=True)).mean(axis=0)), len(windows)",
            )
        ],
        ["tests/test_inference.py::test_long_stereo_file_at_44k_is_chunked_and_averaged"],
    ),
    m(
        "prediction_drops_a_window",
        "predict leaves the last window out of the average (and still counts it)",
        [
            (
                "hf_mtkd/inference/predict.py",
                "return np.concatenate(logits).mean(axis=0), len(windows)",
                "return np.concatenate(logits)[: max(1, len(windows) - 1)].mean(axis=0), len(windows)",
            )
        ],
        ["tests/test_inference.py::test_long_stereo_file_at_44k_is_chunked_and_averaged"],
    ),
    m(
        "recipe_run_skips_test_metrics",
        "a run writes validation_metrics.json but not test_metrics.json",
        [
            (
                "hf_mtkd/training/evaluation.py",
                "    if output_dir and is_main_process:\n",
                "    if output_dir and is_main_process and split != 'test':\n",
            )
        ],
        ["tests/test_recipes.py::test_paper_recipe_smoke"],
    ),
    m(
        "student_forward_outside_autocast",
        "the MTKD student is called unwrapped, outside accelerate's autocast: bf16 runs it in float32",
        [
            (
                MTKD_TRAINER,
                "outputs = model(**model_inputs)",
                "outputs = self.accelerator.unwrap_model(model, keep_fp32_wrapper=False)(**model_inputs)",
            )
        ],
        ["tests/test_distributed.py::test_bf16_with_bf16_teachers_on_two_processes"],
    ),
    # ------------------------------------------------------------------ self-distillation values
    m(
        "self_distillation_kl_wrong_exit",
        "every exit's KL term is computed on the first exit's logits",
        [
            (
                "hf_mtkd/self_distillation/losses.py",
                "[kl_divergence(target_logits, logits, temperature) for logits in exit_logits]",
                "[kl_divergence(target_logits, exit_logits[0], temperature) for logits in exit_logits]",
            )
        ],
        [
            "tests/test_self_distillation_trainer.py::test_logged_parts_equal_the_loss_computed_by_hand_on_the_same_batch"
        ],
    ),
    m(
        "self_distillation_exit_ce_logged_swapped",
        "each exit's CE is logged under another exit's name",
        [
            (
                "hf_mtkd/self_distillation/trainer.py",
                '[f"ce_exit_{layer}" for layer in self._exit_layers]',
                '[f"ce_exit_{layer}" for layer in reversed(self._exit_layers)]',
            )
        ],
        [
            "tests/test_self_distillation_trainer.py::test_logged_parts_equal_the_loss_computed_by_hand_on_the_same_batch"
        ],
    ),
    m(
        "self_distillation_alpha_ignored",
        "the trainer weighs the KL term by 1, not the configured alpha",
        [("hf_mtkd/self_distillation/trainer.py", "alpha=self.args.alpha,", "alpha=1.0,")],
        [
            "tests/test_self_distillation_trainer.py::test_logged_parts_equal_the_loss_computed_by_hand_on_the_same_batch"
        ],
    ),
    # The run test's tiny model has near-uniform heads (KL and similarity ~1e-5): it sees the CE weight only.
    m(
        "self_distillation_recipe_gamma_ignored",
        "a recipe's gamma (weight of the exits' CE) does not reach the loss",
        [("hf_mtkd/self_distillation/trainer.py", "gamma=self.args.gamma,", "gamma=1.0,")],
        ["tests/test_self_distillation_run.py::test_self_distillation_run_reports_and_exports_exits"],
    ),
    m(
        "exit_pooling_counts_padding",
        "an exit's mean pooling divides by every frame, padded ones included",
        [
            (
                "hf_mtkd/models/early_exit/exit_heads.py",
                "return hidden_states.sum(dim=1) / frame_mask.sum(dim=1, keepdim=True).to(hidden_states.dtype)",
                "return hidden_states.sum(dim=1) / hidden_states.shape[1]",
            )
        ],
        [
            "tests/test_self_distillation_modeling.py::test_exit_probabilities_are_the_head_on_the_backbone_layer_output"
        ],
    ),
    m(
        "exit_evaluation_fusion_includes_deepest",
        "the per-exit report's 'fusion' fuses the deepest head too",
        [
            (
                "hf_mtkd/self_distillation/evaluation.py",
                'predictions["fusion"] = fuse_by_margin(exit_list, fusion_space)',
                'predictions["fusion"] = fuse_by_margin(exit_list + [heads["deepest"]], fusion_space)',
            )
        ],
        ["tests/test_self_distillation_modeling.py::test_evaluate_exits_predictions_sizes_latency"],
    ),
    m(
        "exit_report_skips_window_rule",
        "the per-exit report predicts whole clips in padded batches, not by the window rule",
        [
            (
                "hf_mtkd/self_distillation/evaluation.py",
                'output = trainer.predict(dataset, metric_key_prefix="exits")',
                'output = __import__("transformers").Trainer.predict(trainer, dataset, metric_key_prefix="exits")',
            )
        ],
        ["tests/test_self_distillation_run.py::test_per_exit_report_scores_clips_by_the_window_rule"],
    ),
    # ------------------------------------------------------------------ issue 19, round two: the audit's survivors
    m(
        "zero_length_error_without_file_name",
        "a zero-length decoded clip's error does not name its file",
        [
            (
                "hf_mtkd/data/audio.py",
                'raise AudioDecodeError(f"{name}: zero-length clip")',
                'raise AudioDecodeError("zero-length clip")',
            )
        ],
        ["tests/test_data.py::test_zero_length_clip_error_names_the_file"],
    ),
    m(
        "saved_window_ignores_max_duration",
        "the training window saved in the config ignores the max_duration_seconds cap",
        [
            (
                "hf_mtkd/training/method.py",
                "return effective_window_seconds(self.data_args.train_window_seconds, self.data_args."
                "max_duration_seconds)",
                "return float(self.data_args.train_window_seconds or self.data_args.max_duration_seconds)",
            )
        ],
        ["tests/test_windowing.py::test_saved_window_is_capped_at_max_duration_seconds"],
    ),
    m(
        "split_seed_ignored",
        "every split_seed draws the same validation and test speakers",
        [
            (
                "hf_mtkd/data/splits.py",
                'rng = np.random.default_rng(data_args.split_seed + (0 if role == "validation" else 1))',
                'rng = np.random.default_rng(0 if role == "validation" else 1)',
            )
        ],
        ["tests/test_data.py::test_split_seed_changes_the_drawn_validation_speakers"],
    ),
    m(
        "loso_validation_drawn_with_test_speakers",
        "leave-one-speaker-out without validation_fold draws train and "
        "validation from every speaker, the test fold's included",
        [
            (
                "hf_mtkd/data/splits.py",
                "train, validation = _draw_by_speaker(ds.select(np.flatnonzero(~in_test)), data_args,"
                ' "validation", report)',
                'train, validation = _draw_by_speaker(ds, data_args, "validation", report)',
            )
        ],
        ["tests/test_data.py::test_leave_one_speaker_out_without_validation_fold_keeps_test_speakers_out"],
    ),
    m(
        "ur_ci_computed_on_wr",
        "UR's bootstrap interval is taken from the WR resamples",
        [
            (
                "hf_mtkd/metrics/compute.py",
                'block["UR_ci"] = [float(v) for v in np.quantile(ur, [lo, hi])]',
                'block["UR_ci"] = [float(v) for v in np.quantile(wr, [lo, hi])]',
            )
        ],
        ["tests/test_metrics.py::test_bootstrap_intervals_are_the_95_percent_ones_of_ur_and_of_wr"],
    ),
    m(
        "ci_percentiles_wrong",
        "the intervals are the (1 - c)th and c-th percentiles: 90% for confidence 0.95",
        [
            (
                "hf_mtkd/metrics/compute.py",
                "lo, hi = (1.0 - confidence) / 2.0, (1.0 + confidence) / 2.0",
                "lo, hi = 1.0 - confidence, confidence",
            )
        ],
        ["tests/test_metrics.py::test_bootstrap_intervals_are_the_95_percent_ones_of_ur_and_of_wr"],
    ),
    m(
        "classic_c_chosen_on_test",
        "the classic floor chooses C on the test split",
        [
            (
                "hf_mtkd/classic_baseline/method.py",
                'for name in ("train", "validation")\n',
                'for name in ("train", "test")\n',
            ),
            (
                "hf_mtkd/classic_baseline/method.py",
                'features["validation"],\n            np.asarray(splits["validation"][LABELS])',
                'features["test"],\n            np.asarray(splits["test"][LABELS])',
            ),
        ],
        ["tests/test_classic_baseline.py::test_method_chooses_c_on_the_validation_split"],
    ),
    m(
        "meta_teacher_trained_on_train",
        "the meta-teacher's passes (eq. 9) run over the training split, not the quiz split",
        [
            (
                "hf_mtkd/meta_curriculum/fit.py",
                'prepared["quiz"], batch_size=config.per_device_train_batch_size, shuffle=True,',
                'prepared["train"], batch_size=config.per_device_train_batch_size, shuffle=True,',
            )
        ],
        [
            "tests/test_meta_curriculum_stages.py::test_meta_teacher_learns_on_the_quiz_split_and_the_curriculum_is_rewarded_there"
        ],
    ),
    m(
        "curriculum_rewarded_on_test",
        "the curriculum's rewards are computed on the test split",
        [
            (
                "hf_mtkd/meta_curriculum/fit.py",
                'distilled, meta_teacher, prepared["train"], prepared["quiz"], buckets,',
                'distilled, meta_teacher, prepared["train"], prepared["test"], buckets,',
            )
        ],
        [
            "tests/test_meta_curriculum_stages.py::test_meta_teacher_learns_on_the_quiz_split_and_the_curriculum_is_rewarded_there"
        ],
    ),
    m(
        "curriculum_reward_swapped",
        "eq. 13 with student and meta-teacher swapped: T' beating S' is rewarded",
        [
            (
                "hf_mtkd/meta_curriculum/curriculum.py",
                'rewards.append(win_rate(after, meta_teacher(quiz_batch[TEACHER_FEATURES]), quiz_batch["labels"]))',
                'rewards.append(win_rate(meta_teacher(quiz_batch[TEACHER_FEATURES]), after, quiz_batch["labels"]))',
            )
        ],
        [
            "tests/test_meta_curriculum_stages.py::test_curriculum_reward_is_the_students_win_rate_over_the_meta_teacher_on_quiz_batches"
        ],
    ),
    m(
        "audio_text_online_teacher_not_reordered",
        "audio_text's online teacher logits are not put into the student's label order",
        [
            (
                "hf_mtkd/audio_text/trainer.py",
                "logits = logits[:, self.teacher_label_index.to(logits.device)]",
                "logits = logits",
            )
        ],
        ["tests/test_audio_text_training.py::test_teacher_with_another_label_order_gives_the_same_kd"],
    ),
    # ------------------------------------------------------------------ issue 19, round two: new ones
    m(
        "audio_text_cached_teacher_not_reordered",
        "audio_text's cached teacher logits are not put into the student's label order",
        [
            (
                "hf_mtkd/audio_text/cache.py",
                "logits = out.logits.float()[:, label_index.to(device)].cpu().numpy()",
                "logits = out.logits.float().cpu().numpy()",
            )
        ],
        ["tests/test_audio_text_training.py::test_teacher_with_another_label_order_gives_the_same_kd"],
    ),
    m(
        "audio_text_t_squared_dropped",
        "audio_text's KL term is not scaled by T^2",
        [("hf_mtkd/audio_text/losses.py", "loss = loss + alpha * temperature**2 * kl", "loss = loss + alpha * kl")],
        ["tests/test_audio_text_losses.py"],
    ),
    m(
        "audio_text_ce_not_weighted",
        "audio_text's CE term is not weighted by 1 - alpha",
        [("hf_mtkd/audio_text/losses.py", "loss = (1.0 - alpha) * ce", "loss = ce")],
        ["tests/test_audio_text_losses.py"],
    ),
    m(
        "audio_text_kl_reversed",
        "audio_text's KL is KL(P_S || P_T)",
        [
            (
                "hf_mtkd/audio_text/losses.py",
                'kl_per_sample(student_logits, teacher_logits, temperature, "forward")',
                'kl_per_sample(student_logits, teacher_logits, temperature, "reverse")',
            )
        ],
        ["tests/test_audio_text_losses.py"],
    ),
    m(
        "audio_text_mse_counts_padding",
        "the text-feature MSE divides by every position, padded ones included",
        [
            (
                "hf_mtkd/audio_text/losses.py",
                "count = keep.sum() * squared.shape[-1]",
                "count = torch.tensor(float(squared.numel()))",
            )
        ],
        ["tests/test_audio_text_losses.py"],
    ),
    m(
        "consistency_sign_flipped",
        "eq. 12 computed as p_S'(y) - p_T'(y)",
        [
            (
                "hf_mtkd/meta_curriculum/losses.py",
                "        true_class_probability(meta_teacher_logits, labels) -"
                " true_class_probability(student_logits, labels)\n",
                "        true_class_probability(student_logits, labels) -"
                " true_class_probability(meta_teacher_logits, labels)\n",
            )
        ],
        ["tests/test_meta_curriculum_losses.py"],
    ),
    m(
        "meta_teacher_loss_teacher_view_only",
        "eq. 9 drops the student view (only log p(y | h(i, T)))",
        [
            (
                "hf_mtkd/meta_curriculum/losses.py",
                "F.cross_entropy(teacher_view_logits.float(), labels) + F.cross_entropy(student_view_logits."
                "float(), labels)",
                "F.cross_entropy(teacher_view_logits.float(), labels) + F.cross_entropy(teacher_view_logits."
                "float(), labels)",
            )
        ],
        ["tests/test_meta_curriculum_losses.py"],
    ),
    m(
        "returns_not_discounted",
        "REINFORCE returns sum the rewards without gamma",
        [
            (
                "hf_mtkd/meta_curriculum/losses.py",
                "weighted = rewards.double() * gamma**steps",
                "weighted = rewards.double()",
            )
        ],
        ["tests/test_meta_curriculum_losses.py"],
    ),
    m(
        "quiz_split_not_stratified",
        "the quiz split is drawn from all clips, not per label",
        [
            (
                "hf_mtkd/meta_curriculum/caches.py",
                "columns = [c for c in strata_columns if c and c in train.column_names]",
                "columns = []",
            )
        ],
        ["tests/test_meta_curriculum_stages.py::test_carve_quiz_split_is_disjoint_and_stratified"],
    ),
    m(
        "curriculum_trains_the_distilled_student",
        "the curriculum updates the distilled student in place, not a copy",
        [
            (
                "hf_mtkd/meta_curriculum/curriculum.py",
                "updated = copy.deepcopy(student).to(device).train()",
                "updated = student.to(device).train()",
            )
        ],
        ["tests/test_meta_curriculum_stages.py::test_curriculum_changes_the_updated_student_and_the_policy_only"],
    ),
    m(
        "window_not_capped",
        "effective_window_seconds returns train_window_seconds even when longer than the audio kept",
        [
            (
                "hf_mtkd/windowing/rule.py",
                "return float(min(train_window_seconds, max_duration_seconds))",
                "return float(train_window_seconds)",
            )
        ],
        ["tests/test_windowing.py::test_effective_window_and_random_windows"],
    ),
    m(
        "loso_validation_fold_left_in_train",
        "leave-one-speaker-out keeps the validation fold's speakers in train",
        [
            (
                "hf_mtkd/data/splits.py",
                "train = ds.select(np.flatnonzero(~in_test & ~in_validation))",
                "train = ds.select(np.flatnonzero(~in_test))",
            )
        ],
        ["tests/test_data.py::test_leave_one_group_out"],
    ),
    m(
        "validation_fold_left_in_train",
        "a validation_fold (with the data's own test) stays in the training split",
        [
            (
                "hf_mtkd/data/splits.py",
                "train, validation = train.select(np.flatnonzero(~in_validation)), train.select(np."
                "flatnonzero(in_validation))",
                "train, validation = train, train.select(np.flatnonzero(in_validation))",
            )
        ],
        ["tests/test_data.py::test_validation_fold_without_test_fold"],
    ),
    m(
        "ur_over_absent_classes",
        "UR averages recall over every class, those absent from the references included",
        [("hf_mtkd/metrics/compute.py", '"UR": float(recall[present].mean()),', '"UR": float(recall.mean()),')],
        ["tests/test_metrics.py"],
    ),
    m(
        "confusion_matrix_transposed",
        "the confusion matrix has predictions as rows",
        [
            (
                "hf_mtkd/metrics/compute.py",
                "cm = np.bincount(y_true * n_labels + y_pred,",
                "cm = np.bincount(y_pred * n_labels + y_true,",
            )
        ],
        ["tests/test_metrics.py"],
    ),
    m(
        "bootstrap_unseeded",
        "the bootstrap draws from an unseeded generator",
        [
            (
                "hf_mtkd/metrics/compute.py",
                'rng = np.random.default_rng([entropy, zlib.crc32(block_name.encode("utf-8"))])',
                "rng = np.random.default_rng()",
            )
        ],
        ["tests/test_metrics.py"],
    ),
    m(
        "macro_f1_over_reference_classes_only",
        "macro F1 leaves out classes only predicted, never in the references",
        [
            (
                "hf_mtkd/metrics/compute.py",
                '"macro_f1": float(f1[seen].mean()),',
                '"macro_f1": float(f1[present].mean()),',
            )
        ],
        ["tests/test_metrics.py"],
    ),
    m(
        "bootstrap_ur_over_absent_classes",
        "a resample's UR averages over every class, those absent from it included",
        [("hf_mtkd/metrics/compute.py", "ur = recall.sum(axis=1) / present.sum(axis=1)", "ur = recall.mean(axis=1)")],
        ["tests/test_metrics.py::test_bootstrap_ur_averages_over_the_classes_present_in_each_resample"],
    ),
    m(
        "classic_c_tie_takes_largest",
        "among Cs with the same validation UR the largest is kept",
        [
            (
                "hf_mtkd/classic_baseline/model.py",
                "if best is None or ur > scores[best[0]]:",
                "if best is None or ur >= scores[best[0]]:",
            )
        ],
        ["tests/test_classic_baseline.py"],
    ),
    m(
        "classic_class_weight_ignored",
        "the floor's logistic regression ignores classic_class_weight",
        [
            (
                "hf_mtkd/classic_baseline/model.py",
                "LogisticRegression(C=C, class_weight=class_weight,",
                "LogisticRegression(C=C, class_weight=None,",
            )
        ],
        ["tests/test_classic_baseline.py::test_balanced_class_weight_weighs_each_class_by_the_inverse_of_its_size"],
    ),
    m(
        "stage_reuse_ignores_recipe",
        "a finished pipeline stage is reused although its recipe changed",
        [("hf_mtkd/multi_stage.py", 'if record.get("recipe_sha256") != state["recipe_sha256"]:', "if False:")],
        [
            "tests/test_multi_stage.py::test_a_stage_reading_a_retrained_stage_is_retrained_and_data_is_checked_in_place"
        ],
    ),
    m(
        "stage_reuse_ignores_retrained_dependencies",
        "a stage is not retrained (nor told why) when a stage it reads from was retrained",
        [
            (
                "hf_mtkd/multi_stage.py",
                "    if retrained:\n        return False,",
                "    if False:\n        return False,",
            )
        ],
        [
            "tests/test_multi_stage.py::test_a_stage_reading_a_retrained_stage_is_retrained_and_data_is_checked_in_place"
        ],
    ),
    m(
        "stage_without_record_reused",
        "a stage folder without its stage record is trusted and reused",
        [
            (
                "hf_mtkd/multi_stage.py",
                'return False, f"retraining: its folder has no readable {STAGE_RECORD} saying which recipe'
                ' and data it ran with"',
                'return True, "reusing the finished run"',
            )
        ],
        [
            "tests/test_multi_stage.py::test_a_stage_reading_a_retrained_stage_is_retrained_and_data_is_checked_in_place"
        ],
    ),
    m(
        "stage_record_absolute_paths",
        "stage records hold absolute paths: a moved pipeline folder retrains everything",
        [
            (
                "hf_mtkd/multi_stage.py",
                "recipe = _relative_to(recipe_values(parsed), pipeline_dir)",
                "recipe = recipe_values(parsed)",
            )
        ],
        [
            "tests/test_multi_stage.py::test_a_stage_reading_a_retrained_stage_is_retrained_and_data_is_checked_in_place"
        ],
    ),
    # ------------------------------------------------------------------ issue 23: meta-curriculum
    m(
        "policy_back_to_adam_1e3",
        "the policy steps with MPDistil's Adam at 1e-3 whatever its learning rate: it stays where it started",
        [
            (
                "hf_mtkd/meta_curriculum/curriculum.py",
                "policy_optimizer = torch.optim.SGD(policy.parameters(), lr=policy_learning_rate)",
                "policy_optimizer = torch.optim.AdamW(policy.parameters(), lr=1e-3)",
            )
        ],
        [
            "tests/test_meta_curriculum_policy.py::test_the_policy_moves_its_draws_from_easy_to_hard_whatever_the_bucket_order"
        ],
    ),
    m(
        "reward_is_level_not_progress",
        "the progress reward is the quiz level after the step, not the step's gain",
        [
            (
                "hf_mtkd/meta_curriculum/curriculum.py",
                'rewards.append(true_class_probability(after, quiz_batch["labels"]).mean() - before)',
                'rewards.append(true_class_probability(after, quiz_batch["labels"]).mean())',
            )
        ],
        ["tests/test_meta_curriculum_policy.py::test_the_task_rewards_easy_batches_first_and_hard_ones_later"],
    ),
    m(
        "policy_advantage_sign_flipped",
        "REINFORCE ascends the loss: the policy favours the buckets that help least",
        [
            (
                "hf_mtkd/meta_curriculum/losses.py",
                "    return -(advantage * log_probs).mean()",
                "    return (advantage * log_probs).mean()",
            )
        ],
        [
            "tests/test_meta_curriculum_policy.py::test_the_policy_moves_its_draws_from_easy_to_hard_whatever_the_bucket_order"
        ],
    ),
    m(
        "one_step_mean_baseline_allowed",
        "one step per episode with a mean baseline is accepted (zero gradient, silently)",
        [
            (
                "hf_mtkd/meta_curriculum/curriculum.py",
                '    if baseline == "mean" and steps_per_episode < 2:',
                '    if baseline == "mean" and steps_per_episode < 1:',
            )
        ],
        ["tests/test_meta_curriculum_policy.py::test_one_step_per_episode_with_a_mean_baseline_is_refused"],
    ),
    m(
        "unrated_clips_one_last_bucket",
        "clips without an intensity stay one last 'hardest' bucket",
        [
            (
                "hf_mtkd/meta_curriculum/curriculum.py",
                "            if unrated:\n                order =",
                "            if False:\n                order =",
            )
        ],
        [
            "tests/test_meta_curriculum_features.py::test_buckets_run_from_easy_to_hard_with_unrated_clips_spread_by_the_teacher"
        ],
    ),
    m(
        "unrated_clips_hardest_first",
        "unrated clips spread over the levels least confident first",
        [
            (
                "hf_mtkd/meta_curriculum/curriculum.py",
                'order = unrated[0][np.argsort(-probability[unrated[0]], kind="stable")]',
                'order = unrated[0][np.argsort(probability[unrated[0]], kind="stable")]',
            )
        ],
        [
            "tests/test_meta_curriculum_features.py::test_buckets_run_from_easy_to_hard_with_unrated_clips_spread_by_the_teacher"
        ],
    ),
    m(
        "stage_collapse_not_warned",
        "a stage before S' that predicts two of four classes passes without a warning",
        [
            (
                "hf_mtkd/meta_curriculum/fit.py",
                "            if warning:\n                warnings.append(",
                "            if False:\n                warnings.append(",
            )
        ],
        ["tests/test_meta_curriculum_stages.py::test_a_collapsed_stage_is_warned_about_with_its_name"],
    ),
    m(
        "stage_collapse_warnings_dropped",
        "fit_phases computes the stages' collapse warnings but never hands them to the run",
        [("hf_mtkd/meta_curriculum/fit.py", "    training_warnings.extend(collapse)\n", "")],
        ["tests/test_meta_curriculum_stages.py::test_fit_phases_hands_the_stages_collapse_warnings_to_the_run"],
    ),
    m(
        "head_only_named_classifier",
        "only a module named `classifier` is taken for the teacher's head (log-mel CNN refused)",
        [
            (
                "hf_mtkd/meta_curriculum/teacher.py",
                'HEAD_NAMES = ("classifier", "head", "score", "classification_head")',
                'HEAD_NAMES = ("classifier",)',
            ),
            ("hf_mtkd/meta_curriculum/teacher.py", "    if len(candidates) == 1:\n", "    if False:\n"),
        ],
        [
            "tests/test_meta_curriculum_features.py::test_a_log_mel_cnn_teacher_has_its_head_found_and_its_pooled_features_cached"
        ],
    ),
    m(
        "head_checked_after_data",
        "the teacher's head is checked only when the caches are made, after the audio is read",
        [
            (
                "hf_mtkd/meta_curriculum/method.py",
                "        check_teacher_head(setup.training_args.teacher_model_name_or_path,",
                "        (lambda *a, **k: None)(setup.training_args.teacher_model_name_or_path,",
            )
        ],
        [
            "tests/test_meta_curriculum_features.py::test_a_teacher_without_a_findable_head_is_refused_before_the_data_is_read"
        ],
    ),
    m(
        "quiz_class_missing",
        "a class whose strata hold one clip each never reaches the quiz split",
        [
            (
                "hf_mtkd/meta_curriculum/caches.py",
                "    for y in sorted(set(counts) - set(labels[quiz_rows].tolist())):",
                "    for y in []:",
            )
        ],
        ["tests/test_meta_curriculum_stages.py::test_the_quiz_split_holds_every_class_or_the_run_stops_naming_it"],
    ),
    m(
        "episode_is_quiz_batches",
        "an episode is ceil(quiz / batch) S' steps (MPDistil), not an epoch of the training split",
        [
            (
                "hf_mtkd/meta_curriculum/curriculum.py",
                "steps = steps_per_episode or max(1, int(np.ceil(len(train) / batch_size)))",
                "steps = steps_per_episode or max(1, int(np.ceil(len(quiz) / batch_size)))",
            )
        ],
        ["tests/test_meta_curriculum_stages.py::test_an_episode_is_an_epoch_of_the_training_split_by_default"],
    ),
    m(
        "student_init_pretrained_ignored",
        "student_init: pretrained still copies the fine-tuned teacher's text layers",
        [
            (
                "hf_mtkd/audio_text/students.py",
                '    if init == "pretrained":\n        found =',
                "    if False:\n        found =",
            )
        ],
        ["tests/test_audio_text_model.py::test_student_from_the_pretrained_text_encoder_as_the_authors_built_it"],
    ),
    m(
        "student_init_pretrained_keeps_teacher_head",
        "student_init: pretrained keeps the teacher's fusion block and head",
        [("hf_mtkd/audio_text/students.py", "        copy_fusion = False\n", "")],
        ["tests/test_audio_text_model.py::test_student_from_the_pretrained_text_encoder_as_the_authors_built_it"],
    ),
    m(
        "token_axis_time_ignored",
        "token_axis: time still embeds one token per channel",
        [
            (
                "hf_mtkd/models/inverted_transformer/modeling_inverted_transformer.py",
                '        if getattr(self.config, "token_axis", "channels") == "time":\n            x = x.'
                "transpose(1, 2)",
                "        if False:\n            x = x.transpose(1, 2)",
            )
        ],
        ["tests/test_meta_curriculum_model.py::test_the_non_inverted_student_takes_one_token_per_time_step"],
    ),
    m(
        "card_movement_reversed",
        "the card reports the curriculum's draws moving the wrong way",
        [
            (
                "hf_mtkd/meta_curriculum/method.py",
                'verdict = ("moved to harder buckets" if last > first + 0.1',
                'verdict = ("moved to harder buckets" if last < first - 0.1',
            )
        ],
        ["tests/test_meta_curriculum_policy.py::test_the_card_says_which_way_the_draws_moved"],
    ),
    m(
        "stage_collapse_min_share_dropped",
        "a stage that predicts a third class once in 96 clips passes as uncollapsed",
        [
            (
                "hf_mtkd/training/evaluation.py",
                "    predicted = [i for i, n in enumerate(counts) if n > 0 and n >= min_share * values.size]",
                "    predicted = [i for i, n in enumerate(counts) if n > 0]",
            )
        ],
        [
            "tests/test_meta_curriculum_stages.py::test_a_stage_that_predicts_a_class_once_in_a_while_counts_as_collapsed"
        ],
    ),
    # ------------------------------------------------------------------ issue 20: shared code names no method
    m(
        "recipe_leaves_selection_to_the_defaults",
        "a shipped recipe keeps the Trainer's best checkpoint without saying how it selects",
        [("recipes/meld/teacher.yaml", "best_model_smoothing: 3\n", "")],
        ["tests/test_recipes.py::test_every_recipe_chooses_its_model_selection_explicitly"],
    ),
    m(
        "standard_methods_claim_no_checkpoint_selection",
        "the standard Trainer flow says it keeps no best checkpoint, so no recipe of it is checked",
        [("hf_mtkd/training/method.py", "    trainer_class: ClassVar[Optional[type]] = SERTrainer\n"
          "    selects_best_checkpoint: ClassVar[bool] = True\n",
          "    trainer_class: ClassVar[Optional[type]] = SERTrainer\n")],
        ["tests/test_recipes.py::test_the_methods_that_keep_the_trainers_best_checkpoint_say_so"],
    ),
    m(
        "seed_flag_overrides_every_seed_run",
        "a --seed flag silently gives every run of a seeds pipeline the same seed",
        [("hf_mtkd/multi_stage.py", "    if axis is SEEDS:  # a --seed flag", "    if False:  # a --seed flag")],
        ["tests/test_multi_stage.py::test_a_seed_flag_that_would_make_every_seed_run_the_same_is_refused"],
    ),
    m(
        "pretrained_init_takes_the_audio_text_model_whole",
        "student_init: pretrained from an audio_text text model reads its config, not its text encoder's",
        [("hf_mtkd/audio_text/build.py",
          "                if isinstance(pretrained, AudioTextForSequenceClassification):",
          "                if False:")],
        ["tests/test_audio_text_training.py::test_demo_pipeline_smoke"],
    ),
    m(
        "method_data_checks_skipped",
        "the shared flow decodes the data without the method's own checks (audio_text trains on missing transcripts)",
        [("hf_mtkd/training/run.py", "prepare_data(data_args, rate, method.data_checks(setup))",
          "prepare_data(data_args, rate)")],
        ["tests/test_method_contract.py::"
         "test_a_methods_own_data_checks_run_in_the_shared_flow_before_anything_trains"],
    ),
    m(
        "card_training_sections_dropped",
        "the card template leaves out the sections a method places after the training data (MTKD's teachers)",
        [("hf_mtkd/model_cards/student_card.md", 'section.placement == "training"',
          'section.placement == "elsewhere"')],
        ["tests/test_cards.py::test_card_with_every_field_set"],
    ),
    m(
        "exported_exit_card_tells_the_deepest_head",
        "an exported exit's summary and card carry the deepest head's test results",
        [("hf_mtkd/self_distillation/card.py", '("test", ((summary.get("exits") or {}).get(head)',
          '("test", ((summary.get("exits") or {}).get("deepest")')],
        ["tests/test_inference.py::test_cards_of_a_self_distillation_run_and_of_an_exported_exit"],
    ),
    m(
        "exported_models_get_no_card",
        "the models a method exports into sub-folders get no summary, training arguments or card",
        [("hf_mtkd/training/run.py", "        write_exported_models(method.exported_models(setup, summary), "
          "training_args)\n", "")],
        ["tests/test_inference.py::test_cards_of_a_self_distillation_run_and_of_an_exported_exit"],
    ),
    # ------------------------------------------------------------------ issue 23, item 7: every fold in one command
    m(
        "folds_never_set_the_test_fold",
        "a folds run trains every fold on the recipe's own split: every fold tests the same clips",
        [("hf_mtkd/multi_stage.py", '            recipe["test_fold"] = [fold]\n', "")],
        ["tests/test_multi_stage_folds.py::test_every_fold_runs_every_stage_on_its_own_test_clips_and_the_mean_and_verdict_pool_the_folds"],
    ),
    m(
        "folds_share_one_folder",
        "every fold writes into the same stage folders, a student reading whichever fold's teacher came last",
        [("hf_mtkd/multi_stage.py",
          "    return {value: stage_recipes(pipeline, os.path.join(output_dir, axis.folder(value)),",
          "    return {value: stage_recipes(pipeline, output_dir,")],
        ["tests/test_multi_stage_folds.py::test_folds_from_the_command_line_resolve_each_folds_teacher_and_pass_training_flags_on"],
    ),
    m(
        "fold_values_not_checked",
        "an unknown fold fails only when its turn comes, after the folds before it trained",
        [("hf_mtkd/pipeline_axes.py", "            if fold not in available[source]:", "            if False:")],
        ["tests/test_multi_stage_folds.py::test_fold_mistakes_are_errors_naming_them_before_anything_trains"],
    ),
    m(
        "fold_validation_on_its_test_fold",
        "validation_fold may name a fold: that fold selects its model on its own test clips (left to the data layer)",
        [("hf_mtkd/pipeline_axes.py", "            if fold in validation:", "            if False:")],
        ["tests/test_multi_stage_folds.py::test_fold_mistakes_are_errors_naming_them_before_anything_trains"],
    ),
    m(
        "folds_paired_over_the_pooled_clips",
        "the fold verdict resamples the pooled clips as one set: its difference is not that of the fold means",
        [("hf_mtkd/metrics/axes.py", "            verdicts[model] = stratified_paired_ur_difference(strata, "
          "num_labels,",
          "            strata = [(sum((list(r) for r, _, _ in strata), []), "
          "[sum((list(b[0]) for _, b, _ in strata), [])], [sum((list(m[0]) for _, _, m in strata), [])])]\n"
          "            verdicts[model] = stratified_paired_ur_difference(strata, num_labels,")],
        ["tests/test_multi_stage_folds.py::test_every_fold_runs_every_stage_on_its_own_test_clips_and_the_mean_and_verdict_pool_the_folds"],
    ),
    m(
        "stratified_bootstrap_reseeded_per_fold",
        "every fold's resample restarts the generator: the folds' draws are correlated, not independent",
        [("hf_mtkd/metrics/paired.py", "            n = len(references)\n            draws =",
          "            n = len(references)\n            rng = np.random.default_rng(seed)\n            draws =")],
        ["tests/test_paired_verdict.py::test_over_folds_each_fold_is_resampled_within_itself_and_the_difference_is_the_mean_over_folds"],
    ),
    m(
        "fold_table_mean_over_one_fold",
        "the fold table's mean ± sd is over the first fold's row of each model only",
        [("hf_mtkd/metrics/axes.py", "        for value, run in sorted(own.items()):",
          "        for value, run in sorted(own.items())[:1]:")],
        ["tests/test_multi_stage_folds.py::test_every_fold_runs_every_stage_on_its_own_test_clips_and_the_mean_and_verdict_pool_the_folds"],
    ),
    m(
        "pipeline_flags_abbreviated",
        "`hf-mtkd pipeline ... --seed 3` is read as --seeds 3 instead of every stage's training seed",
        [("hf_mtkd/cli/main.py", 'argparse.ArgumentParser(prog="hf-mtkd pipeline", allow_abbrev=False)',
          'argparse.ArgumentParser(prog="hf-mtkd pipeline")')],
        ["tests/test_multi_stage_folds.py::test_folds_from_the_command_line_resolve_each_folds_teacher_and_pass_training_flags_on"],
    ),
]


def repository_files(root: Path) -> list[str]:
    """Tracked files and untracked ones git does not ignore: what a fresh clone plus your edits holds."""
    out = subprocess.run(
        ["git", "ls-files", "-co", "--exclude-standard", "-z"], cwd=root, check=True, capture_output=True
    ).stdout.decode()
    return [name for name in out.split("\0") if name and (root / name).is_file()]


def copy_repository(root: Path, target: Path) -> None:
    for name in repository_files(root):
        destination = target / name
        destination.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(root / name, destination)


def apply(mutation: Mutation, scratch: Path) -> dict[Path, str]:
    """Write the bug into the copy; returns the original texts. Raises LookupError when a target text is
    missing or ambiguous (the table no longer matches the code)."""
    originals: dict[Path, str] = {}
    for file, text, replacement in mutation.edits:
        path = scratch / file
        if not path.is_file():
            raise LookupError(f"{file} does not exist")
        current = path.read_text()
        originals.setdefault(path, current)
        count = current.count(text)
        if count != 1:
            raise LookupError(f"{file}: target text found {count} times, expected once: {text!r}")
        path.write_text(current.replace(text, replacement))
    return originals


def run_tests(tests, scratch: Path, timeout: float) -> tuple[int, float, str]:
    env = dict(
        os.environ, PYTHONPATH=str(scratch), OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", PYTHONDONTWRITEBYTECODE="1"
    )
    command = [sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider", "-m", "", *tests]
    start = time.monotonic()
    try:
        done = subprocess.run(command, cwd=scratch, env=env, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired as err:
        return -1, time.monotonic() - start, f"timed out after {timeout:.0f} s\n{err.stdout or ''}"
    return done.returncode, time.monotonic() - start, done.stdout + done.stderr


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("names", nargs="*", help="mutations to run (default: all)")
    parser.add_argument("--list", action="store_true", help="print the table and exit")
    parser.add_argument("--no-baseline", action="store_true", help="skip running the tests on the unmutated copy")
    parser.add_argument("--timeout", type=float, default=900.0, help="seconds per pytest run")
    parser.add_argument("--verbose", action="store_true", help="print pytest's output tail for every run")
    args = parser.parse_args(argv)

    known = {mutation.name: mutation for mutation in MUTATIONS}
    unknown = [name for name in args.names if name not in known]
    if unknown:
        parser.error(f"unknown mutation(s) {unknown}; --list shows the table")
    selected = [known[name] for name in args.names] if args.names else MUTATIONS
    if args.list:
        for mutation in selected:
            print(f"{mutation.name:38s} {mutation.bug}\n{'':38s} tests: {' '.join(mutation.tests)}")
        return 0

    failures = 0
    with tempfile.TemporaryDirectory(prefix="hf_mtkd-mutation-") as tmp:
        scratch = Path(tmp) / "repo"
        copy_repository(ROOT, scratch)
        if not args.no_baseline:
            tests = list(dict.fromkeys(test for mutation in selected for test in mutation.tests))
            rc, seconds, output = run_tests(tests, scratch, args.timeout * 2)
            print(f"baseline (no bug): {'pass' if rc == 0 else f'FAIL (rc {rc})'} in {seconds:.0f} s", flush=True)
            if rc != 0:
                print(output[-4000:])
                return 2
        rows = []
        for mutation in selected:
            try:
                originals = apply(mutation, scratch)
            except LookupError as err:
                rows.append((mutation, "TARGET NOT FOUND", 0.0))
                print(f"{mutation.name}: TARGET NOT FOUND: {err}", flush=True)
                failures += 1
                continue
            try:
                rc, seconds, output = run_tests(mutation.tests, scratch, args.timeout)
            finally:
                for path, text in originals.items():
                    path.write_text(text)
            verdict = "caught" if rc == 1 else "SURVIVED" if rc == 0 else f"ERROR (rc {rc})"
            failures += verdict != "caught"
            rows.append((mutation, verdict, seconds))
            print(f"{mutation.name}: {verdict} ({seconds:.0f} s)", flush=True)
            if verdict != "caught" or args.verbose:
                print(output[-3000:], flush=True)

    print("\n| mutation | bug | tests | result |\n|---|---|---|---|")
    for mutation, verdict, seconds in rows:
        tests = ", ".join(f"`{test.removeprefix('tests/')}`" for test in mutation.tests)
        print(f"| `{mutation.name}` | {mutation.bug} | {tests} | {verdict} ({seconds:.0f} s) |")
    caught = sum(verdict == "caught" for _, verdict, _ in rows)
    print(f"\n{caught} of {len(rows)} caught")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
