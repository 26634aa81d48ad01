"""What the composite models (early-exit, audio + text) share when they load a sub-model's config."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

#: from_pretrained keywords that also apply to loading a config.
CONFIG_KWARGS = (
    "cache_dir",
    "revision",
    "token",
    "trust_remote_code",
    "local_files_only",
    "subfolder",
    "force_download",
)


def config_kwargs(kwargs: Mapping[str, Any]) -> dict[str, Any]:
    """The part of `from_pretrained` keywords that `AutoConfig.from_pretrained` takes too."""
    return {key: value for key, value in kwargs.items() if key in CONFIG_KWARGS}
