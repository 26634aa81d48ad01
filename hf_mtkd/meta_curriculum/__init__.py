"""Meta-teacher + curriculum distillation with a frozen-feature inverted-transformer student (SPEC section 3,
Zhao et al.; open points settled by MPDistil's code). Recipe key `method: meta_curriculum` (`method.py`).

The student and the exported waveform model it trains live in `hf_mtkd.models.inverted_transformer`. The names
below import on first use.
"""

from ..utils.lazy import lazy_exports

_EXPORTS = {
    "MetaCurriculumConfig": ".config",
    "MetaTeacher": ".teacher",
    "MetaCurriculumStudentTrainer": ".trainer",
    "CurriculumPolicy": ".curriculum",
    "run_curriculum": ".curriculum",
    "MetaCurriculumMethod": ".method",
    "MetaCurriculumResult": ".fit",
    "fit_phases": ".fit",
    "prepare_caches": ".caches",
    "format_stage_table": ".report",
    "stage_results_of": ".report",
    "supcon_loss": ".losses",
    "kd_loss": ".losses",
    "reinforce_loss": ".losses",
}

__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
