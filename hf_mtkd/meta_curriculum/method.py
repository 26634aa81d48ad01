"""Meta-teacher + curriculum distillation in the shared training flow (`method: meta_curriculum`).

The method owns its fitting (`fit`): three student phases, a meta-teacher and a curriculum policy, none of which is
one Trainer run. The shared flow does the rest: the data, the validation and test reports of the final student S'
(the exported waveform model, through `WaveformModelPredictor`), the run summary, the plots, the model card and the
push. The stages before S' are scored by `fit_phases` and kept in the summary's `stage_results` extra; the per-stage
tables join them with the shared reports (`report.stage_results_of`), so every number has one source.
"""

from __future__ import annotations

import transformers

from ..registry import CardSection, MethodInfo, Paper, register_method
from ..modeling_utils import hub_kwargs
from ..training.method import RunSetup, SelfFittingMethod
from .config import MetaCurriculumConfig
from .caches import load_run_upstream, prepare_caches
from .fit import EVAL_SPLITS, WaveformModelPredictor, build_feature_student, fit_phases, save_export
from .report import ACTIONS_PLOT, STAGE_TITLES, format_stage_markdown, format_stage_table, stage_results_of
from ..models.inverted_transformer.upstream import upstream_feature_extractor
from .teacher import check_teacher_head

CITATION = """@article{zhao_kd_ser,
  title  = {A Knowledge Distillation-based Approach to Speech Emotion Recognition},
  author = {Zhao, Ziping and Liu, Jixin and Wang, Haishuai and Bandara, Danushka and Tao, Jianhua}
}
@inproceedings{sengupta2024mpdistil,
  title     = {A Good Learner can Teach Better: Teacher-Student Collaborative Knowledge Distillation},
  author    = {Sengupta, Ayan and Dixit, Shantanu and Akhtar, Md Shad and Chakraborty, Tanmoy},
  booktitle = {The Twelfth International Conference on Learning Representations},
  year      = {2024}
}"""

DESCRIPTION = (
    "An inverted-transformer student (each feature channel one token) on the features of a frozen upstream, trained "
    "with supervised contrastive + cross-entropy loss (MoCo, SpecAugment), distilled from a meta-teacher whose head "
    "learns from both teacher and student, then updated on batches from buckets ordered easy to hard, which"
    " a REINFORCE "
    "policy picks step by step (rewarded by each step's gain on held-out quiz clips; the order it learns is measured, "
    "not fixed: the picks per episode are in the card and run summary). The "
    "saved model contains the frozen upstream and the student and takes waveforms."
)
LOADING_NOTE = (
    "The architecture of this model (`hf_mtkd_waveform_student`: the frozen upstream and the inverted-transformer "
    "student in one model that takes waveforms) is hf_mtkd's own, not part of transformers: run `import hf_mtkd` "
    "before `pipeline(\"audio-classification\", model=...)` or `AutoModelForAudioClassification.from_pretrained`; "
    "importing it registers the architecture with the Auto classes. `hf-mtkd predict` does that itself."
)


def curriculum_movement(mean_bucket_per_episode) -> str:
    """A card sentence on what the curriculum did: the mean drawn bucket (0 = easiest) in the first and the last third
    of the episodes, measured, whichever way it went."""
    means = list(mean_bucket_per_episode)
    if len(means) < 3:
        return ""
    third = len(means) // 3
    first, last = sum(means[:third]) / third, sum(means[-third:]) / third
    verdict = ("moved to harder buckets" if last > first + 0.1 else "moved to easier buckets" if last < first - 0.1
               else "did not move between easy and hard")
    return (f" Mean drawn bucket (0 = easiest): {first:.2f} in the first third of the episodes, {last:.2f} in the "
            f"last: the draws {verdict}.")


@register_method
class MetaCurriculumMethod(SelfFittingMethod):
    name = "meta_curriculum"
    display_name = "Meta-curriculum S'"
    training_args_class = MetaCurriculumConfig
    info = MethodInfo(
        display_name="meta-teacher + curriculum knowledge distillation",
        description=DESCRIPTION,
        paper=Paper(title="A Knowledge Distillation-based Approach to Speech Emotion Recognition",
                    authors="Z. Zhao, J. Liu, H. Wang, D. Bandara, J. Tao", citation=CITATION),
        tags=("knowledge-distillation", "meta-teacher", "curriculum-learning", "inverted-transformer"),
    )

    def __init__(self):
        self._upstream = None  # (module, WaveformStudentConfig, feature extractor), loaded by build_model
        self._caches = None  # PreparedCaches, made by prepare_splits
        self._result = None  # MetaCurriculumResult, made by fit

    def sampling_rate(self, setup: RunSetup) -> int:
        """The upstream feature extractor's rate. The teacher's head is found first (on its architecture alone), so
        that a teacher the meta-teacher cannot clone fails before any audio is read."""
        check_teacher_head(setup.training_args.teacher_model_name_or_path,
                           trust_remote_code=setup.model_args.trust_remote_code, cache_dir=setup.model_args.cache_dir)
        return upstream_feature_extractor(setup.training_args, hub_kwargs(setup.model_args)).sampling_rate

    def build_model(self, setup: RunSetup):
        """The student's initial weights: the student's shape is the upstream's feature shape, so the upstream (and
        its feature extractor) is loaded here and kept for the caches and the export."""
        args: MetaCurriculumConfig = setup.training_args
        if args.world_size > 1:
            raise ValueError("meta_curriculum runs on one process (its meta-teacher and curriculum loops are not "
                             "distributed): launch it without several processes.")
        self._upstream = load_run_upstream(args, setup.model_args, setup.data_args)
        transformers.set_seed(args.seed)  # the initial weights depend on the seed alone
        return build_feature_student(setup.model_args, self._upstream[1], list(setup.label_names))

    def prepare_splits(self, setup: RunSetup, splits, *, model):
        """train (less the quiz clips), quiz, validation and test, each with the teacher's cached logits and pooled
        features and the upstream features."""
        self._caches = prepare_caches(setup.training_args, setup.model_args, setup.data_args, splits,
                                      list(setup.label_names), upstream_parts=self._upstream)
        return self._caches.splits

    def fit(self, setup: RunSetup, *, model, splits, resume_from_checkpoint=None):
        """Every phase, then the export (frozen upstream + S') into `output_dir`; returns S' as saved."""
        args: MetaCurriculumConfig = setup.training_args
        if resume_from_checkpoint is not None:
            raise ValueError(
                f"meta_curriculum cannot resume ({resume_from_checkpoint!r}): its phases are not one Trainer run. "
                "Rerun it (the feature caches are reused) with --overwrite_output_dir true."
            )
        self._result = fit_phases(args, setup.model_args, setup.data_args, self._caches, list(setup.label_names),
                                  initial_student=model)
        if args.process_index == 0:
            save_export(self._result, args.output_dir)
        return WaveformModelPredictor(self._result.model, self._upstream[2], args.per_device_eval_batch_size,
                                      training_warnings=self._result.training_warnings)

    def summary_extras(self, setup: RunSetup, fitted, *, splits) -> dict:
        return self._result.summary_extras()

    def card_sections(self, setup: RunSetup, summary) -> list[CardSection]:
        tables = []
        for split in EVAL_SPLITS:
            results = stage_results_of(summary, split)
            tables.append(f"**{split}** ({results['updated_student']['overall']['n']} clips), in %:\n\n"
                          + format_stage_markdown(results))
        curriculum = summary.get("curriculum") or {}
        buckets = ", ".join(f"{b['name']} ({b['size']})" for b in curriculum.get("buckets") or [])
        body = (
            "Every stage of the method (the paper's Tables 5-6): the fine-tuned teacher, the student trained alone, "
            "the meta-teacher T', the distilled student and the curriculum-updated student S' (this model). "
            "\"UR change\" compares a stage with the one it builds on. Every phase selected its best epoch on the "
            "validation split.\n\n" + "\n\n".join(tables)
        )
        if buckets:
            body += (f"\n\nCurriculum buckets, easy to hard ({curriculum.get('bucket_source')}): {buckets}; the "
                     f"policy's "
                     f"picks per episode are in `{ACTIONS_PLOT}` and `run_summary.json`.")
            body += curriculum_movement(curriculum.get("mean_bucket_per_episode") or [])
        return [CardSection("Results of every stage", body), CardSection("Loading this model", LOADING_NOTE)]

    @classmethod
    def result_rows(cls, summary) -> dict[str, dict]:
        """Every stage of the method (teacher, student alone, meta-teacher, distilled student, S'), as the card's
        per-stage table."""
        per_split = {split: stage_results_of(summary, split) for split in EVAL_SPLITS}
        return {STAGE_TITLES.get(stage, stage): {split: per_split[split][stage] for split in EVAL_SPLITS}
                for stage in per_split[EVAL_SPLITS[0]]}

    def multi_stage_tables(self, stage: str, summary) -> list[str]:
        return [
            format_stage_table(
                stage_results_of(summary, split),
                title=f"Meta-curriculum stages of {stage}: {split} ({summary['results'][split]['overall']['n']} "
                      f"clips)",
                footer=split == EVAL_SPLITS[-1],
            )
            for split in EVAL_SPLITS
        ]
