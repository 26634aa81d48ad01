"""Numbers logged per process, pooled over processes: the one cross-process mean hf_mtkd computes."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Union

Total = Union[float, Sequence[float]]

__all__ = ["end_process_group", "pool_totals"]


def pool_totals(totals: Mapping[str, tuple[Total, int]], num_processes: int = 1) -> dict[str, tuple[Total, int]]:
    """Sum `{name: (total, count)}` over processes; a total is a number or a list of numbers (summed
    element-wise). Each process may hold other names (a language one process never saw, say). The mean of a
    name is then total / count: every sample of every process weighs the same, whatever its process saw.

    A collective when `num_processes > 1`: every process must call it at the same point.
    """
    if num_processes > 1:
        from accelerate.utils import gather_object

        parts = gather_object([dict(totals)])
    else:
        parts = [dict(totals)]
    pooled: dict[str, list] = {}
    for part in parts:
        for name, (total, count) in part.items():
            entry = pooled.setdefault(name, [None, 0])
            if isinstance(total, (int, float)):
                entry[0] = (0.0 if entry[0] is None else entry[0]) + total
            else:
                previous = entry[0] if entry[0] is not None else [0.0] * len(total)
                entry[0] = [a + b for a, b in zip(previous, total)]
            entry[1] += count
    return {name: (total, count) for name, (total, count) in pooled.items()}


def end_process_group() -> None:
    """Wait for every process, then destroy the default process group (no-op when none is initialised).

    Call it last in a script launched on several processes. Left to interpreter exit, a process's gloo group is torn
    down while its peer may still be in the last collective or tearing down its own: under load this aborts a
    process ("terminate called without an active exception", exit -6). The barrier makes every process finish its
    collectives (and whatever it wrote before) first; the explicit destroy joins the group's threads in order.
    """
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()
