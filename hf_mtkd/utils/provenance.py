"""Where a result was measured: the commit, the CPU, the library versions. Exact figures depend on all of them
(float reduction order differs between CPUs and thread counts), so every committed result file carries them."""

from __future__ import annotations

import os
import platform
import subprocess
from datetime import datetime, timezone
from importlib import metadata
from typing import Optional

__all__ = ["cpu_model", "git_commit", "machine_provenance"]


def cpu_model() -> str:
    """The CPU's model name (from /proc/cpuinfo on Linux), or what `platform` knows."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as handle:
            for line in handle:
                if line.lower().startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def git_commit(folder: Optional[str] = None) -> Optional[str]:
    """The commit of the checkout hf_mtkd runs from (with "-dirty" when it has uncommitted changes), or None."""
    folder = folder or os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    try:
        commit = subprocess.run(["git", "-C", folder, "rev-parse", "--short=12", "HEAD"], capture_output=True,
                                text=True, timeout=10, check=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", folder, "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, timeout=10, check=True).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return commit + ("-dirty" if dirty else "") if commit else None


def machine_provenance() -> dict:
    """Commit, CPU model and cores, Python, torch and hf_mtkd versions, and the time (UTC)."""
    import torch

    versions = {}
    for name in ("hf_mtkd", "torch", "transformers", "datasets"):
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return {
        "commit": git_commit(),
        "cpu_model": cpu_model(),
        "cpu_cores": os.cpu_count(),
        "python": platform.python_version(),
        "versions": versions,
        "torch_version": torch.__version__,
        "date_utc": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M"),
    }
