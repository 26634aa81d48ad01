"""Meta-teacher + curriculum distillation with a frozen-feature inverted-transformer student (SPEC section 3,
Zhao et al.; open points settled by MPDistil's code). Recipe key `method: meta_curriculum` (`method.py`).

The student (`InvertedTransformerConfig`) and the exported waveform model (`WaveformStudentConfig`) are rows of
`hf_mtkd.auto_classes.AUTO_MODELS`, registered with the Auto classes by `import hf_mtkd`. The names below import
on first use, so importing this package (which registering the configs does) costs nothing.
"""

from ..utils.lazy import lazy_exports

_EXPORTS = {
    "MetaCurriculumConfig": ".config",
    "InvertedTransformerConfig": ".configuration_meta_curriculum",
    "WaveformStudentConfig": ".configuration_meta_curriculum",
    "InvertedTransformerForFeatureClassification": ".modeling_inverted_transformer",
    "WaveformStudentForAudioClassification": ".modeling_waveform_student",
    "MetaTeacher": ".teacher",
    "MetaCurriculumStudentTrainer": ".trainer",
    "CurriculumPolicy": ".curriculum",
    "run_curriculum": ".curriculum",
    "MetaCurriculumMethod": ".method",
    "MetaCurriculumResult": ".fit",
    "fit_phases": ".fit",
    "prepare_caches": ".fit",
    "upstream_feature_extractor": ".upstream",
    "format_stage_table": ".report",
    "stage_results_of": ".report",
    "supcon_loss": ".losses",
    "kd_loss": ".losses",
    "reinforce_loss": ".losses",
}

__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
