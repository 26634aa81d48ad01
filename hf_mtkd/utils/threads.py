"""How many intra-op threads torch uses on CPU (`torch_num_threads`).

torch starts with one intra-op thread per core. For the small models SER distillation produces (the compact
log-mel student has well under a million parameters) a step is too short to split across cores: the threads
spend their time synchronising, and on a 2-core machine that also runs anything else they wait for each other.
Measured on such a machine (issue 21; `benchmarks/threads.py` records the cells): the compact student ran
3x slower with two threads than with one under a load of 2.5, about 25x slower beside other jobs, and only
1.18x faster on a quiet machine. So `auto` gives small models one thread (a busy neighbour that appears later costs
them far more than a quiet machine gains), and larger ones torch's default, capped by the cores idle when the run
starts.
"""

from __future__ import annotations

import logging
import os
import time
from typing import Optional

import torch

logger = logging.getLogger("hf_mtkd")

__all__ = [
    "SMALL_MODEL_PARAMETERS", "apply_num_threads", "idle_cores", "parse_num_threads", "resolve_num_threads",
    "saved_parameter_count",
]

#: Below this many parameters `auto` runs one thread.
SMALL_MODEL_PARAMETERS = 10_000_000
#: torch's setting when hf_mtkd was imported (OMP_NUM_THREADS, or one per core): what `auto` restores for a large
#: model after a small one ran in the same process (a pipeline's stages).
_STARTING_THREADS = torch.get_num_threads()


def parse_num_threads(value) -> Optional[int]:
    """None for "auto", else the positive whole number `value` names; anything else is a ValueError naming the key."""
    if isinstance(value, str) and value.strip().lower() == "auto":
        return None
    try:
        number = int(str(value).strip())
    except ValueError:
        number = 0
    if number < 1 or str(number) != str(value).strip():
        raise ValueError(f"torch_num_threads must be 'auto' or a whole number >= 1, got {value!r}.")
    return number


def idle_cores(interval: float = 0.25) -> Optional[float]:
    """How many cores sat idle over `interval` seconds (Linux /proc/stat; None elsewhere): what other jobs leave."""
    def sample():
        with open("/proc/stat", encoding="ascii") as handle:
            fields = [float(v) for v in handle.readline().split()[1:]]
        return fields[3] + (fields[4] if len(fields) > 4 else 0.0), sum(fields)  # idle + iowait, total

    try:
        idle0, total0 = sample()
        time.sleep(interval)
        idle1, total1 = sample()
    except (OSError, ValueError, IndexError):
        return None
    if total1 <= total0:
        return None
    return (idle1 - idle0) / (total1 - total0) * (os.cpu_count() or 1)


def resolve_num_threads(value, num_parameters: Optional[int], default: Optional[int] = None,
                        idle: Optional[float] = None) -> int:
    """The thread count `value` ("auto" or a number) means for a model of `num_parameters` (None: unknown, taken
    as large); `default` is torch's own (its setting when hf_mtkd was imported, when not given); `idle`: the cores
    other jobs leave free now (`idle_cores()`; None: not measured). A large model gets torch's default, but no more
    threads than there are idle cores (at least one): measured beside a busy process, two threads ran
    wav2vec2-base 2.9x slower than one."""
    number = parse_num_threads(value)
    if number is not None:
        return number
    default = default if default is not None else _STARTING_THREADS
    if num_parameters is not None and num_parameters < SMALL_MODEL_PARAMETERS:
        return 1
    if idle is not None:
        return max(1, min(default, int(idle + 0.5)))
    return default


def saved_parameter_count(model_dir) -> Optional[int]:
    """The parameters of a saved model, read from its safetensors headers (no weights loaded); None when the folder
    holds none (a Hub id, pickled weights)."""
    import glob

    from safetensors import safe_open

    files = sorted(glob.glob(os.path.join(os.fspath(model_dir), "*.safetensors")))
    if not files:
        return None
    total = 0
    for path in files:
        with safe_open(path, framework="pt") as handle:
            for name in handle.keys():
                count = 1
                for size in handle.get_slice(name).get_shape():
                    count *= size
                total += count
    return total


def apply_num_threads(value, model=None, device: Optional[torch.device] = None) -> int:
    """Set torch's intra-op threads for `model` as `value` says (only on CPU: an accelerator's kernels do not use
    them); returns the count in force. `model` None: a method that fits without a torch model; an int: a parameter
    count (a saved model not loaded yet)."""
    if device is not None and device.type != "cpu":
        return torch.get_num_threads()
    if isinstance(model, int):
        parameters = model
        small = parameters < SMALL_MODEL_PARAMETERS
        threads = resolve_num_threads(value, parameters, idle=None if small else idle_cores())
        if threads != torch.get_num_threads():
            torch.set_num_threads(threads)
        return threads
    # A method without a torch model (the classic floor) does its torch work clip by clip (features of one clip
    # at a time): as small as it gets. Measured: the floor took 9 min 47 s on 2,471 clips with two threads beside
    # other jobs, 10 s on 1,011 clips with one.
    parameters = sum(p.numel() for p in model.parameters()) if hasattr(model, "parameters") else (
        0 if model is None else None)
    small = parameters is not None and parameters < SMALL_MODEL_PARAMETERS
    threads = resolve_num_threads(value, parameters, idle=None if small else idle_cores())
    if threads != torch.get_num_threads():
        torch.set_num_threads(threads)
    logger.info("torch intra-op threads: %d (torch_num_threads=%s, %s parameters).", threads, value,
                f"{parameters:,}" if parameters is not None else "unknown")
    return threads
