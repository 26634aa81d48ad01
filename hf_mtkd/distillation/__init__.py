"""The distillation floor: what every distillation method shares, below the method folders.

    teachers.py  TeacherSpec, load_teacher (frozen, labels aligned to the student's by name), teacher_fingerprint
    losses.py    the temperature-softened KL (softened_kl_terms) and its per-sample sum (kl_per_sample)
    cache.py     the teacher-output cache every caching method fills (cache_teacher_outputs), with its file lock
                 and the clean-up of half-written files; add_teacher_logits for audio-classification teachers

Method folders import from here and never from one another. The names below import on first use.
"""

from ..utils.lazy import lazy_exports

_EXPORTS = {
    "CacheRefused": ".cache",
    "TEACHER_LOGITS": ".cache",
    "add_teacher_logits": ".cache",
    "cache_teacher_outputs": ".cache",
    "check_cache_allowed": ".cache",
    "KL_DIRECTIONS": ".losses",
    "kl_per_sample": ".losses",
    "softened_kl_terms": ".losses",
    "Teacher": ".teachers",
    "TeacherSpec": ".teachers",
    "freeze": ".teachers",
    "load_teacher": ".teachers",
    "parse_teachers": ".teachers",
    "teacher_fingerprint": ".teachers",
    "teacher_label_index": ".teachers",
}

__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
