"""Publish a trained student (model, feature extractor, card, metrics, figures) to the Hugging Face Hub.

Everything that can be checked locally is checked before the first request: the folder holds a
model and a feature extractor, the repo id is valid, a token is available, the card renders, and
no file about to be uploaded contains the token. The token is never logged or written anywhere.
"""

from __future__ import annotations

import logging
import mmap
import os
from pathlib import Path
from typing import Optional

from .card import CARD_NAME, TEMPLATE_PATH, StudentCard

logger = logging.getLogger(__name__)

DEFAULT_COMMIT_MESSAGE = "Upload speech emotion recognition model trained with hf_mtkd"

#: Never uploaded: checkpoints (optimizer state), the pickled training arguments (they may hold
#: `hub_token`; the card lists the hyperparameters), temporary and hidden files.
UPLOAD_IGNORE_PATTERNS = ["checkpoint-*", "training_args.bin", "*.pt", "*.pth", "*.tmp", ".*", "**/.*", "_*"]


class HubPushError(RuntimeError):
    """A push that cannot start: nothing has been sent to the Hub."""


def check_model_dir(output_dir: str | os.PathLike) -> Path:
    """The folder must hold a saved model (config + safetensors weights) and its feature extractor."""
    out = Path(output_dir)
    if not out.is_dir():
        raise FileNotFoundError(f"{str(out)!r} is not a folder; give the output_dir of a finished training run.")
    missing = []
    if not (out / "config.json").is_file():
        missing.append("config.json")
    if not ((out / "model.safetensors").is_file() or (out / "model.safetensors.index.json").is_file()):
        missing.append("model.safetensors")
    if not (out / "preprocessor_config.json").is_file():
        missing.append("preprocessor_config.json (the feature extractor)")
    if missing:
        raise FileNotFoundError(
            f"{str(out)!r} holds no complete model: missing {', '.join(missing)}. "
            "Push the output_dir of a finished run (trainer.save_model() and feature_extractor.save_pretrained())."
        )
    return out


def check_repo_id(repo_id: str) -> str:
    from huggingface_hub.utils import HFValidationError, validate_repo_id

    if not isinstance(repo_id, str) or not repo_id:
        raise ValueError(f"repo_id must be 'name' or 'namespace/name', got {repo_id!r}.")
    try:
        validate_repo_id(repo_id)
    except HFValidationError as err:
        raise ValueError(f"Invalid Hub repo id {repo_id!r}: {err}") from None
    return repo_id


def resolve_token(token: Optional[str] = None) -> str:
    """The token argument, else $HF_TOKEN, else the saved login (`hf auth login`)."""
    from huggingface_hub import get_token

    token = token or get_token()
    if not token:
        raise HubPushError(
            "No Hugging Face token: pass token=..., set the HF_TOKEN environment variable, or run `hf auth login`."
        )
    return token


def files_to_upload(output_dir: str | os.PathLike) -> list[str]:
    """Paths (relative, POSIX) that `push_to_hub` uploads from `output_dir`, with the same filter upload_folder
    applies."""
    from huggingface_hub.utils import filter_repo_objects
    from huggingface_hub.utils._paths import DEFAULT_IGNORE_PATTERNS

    root = Path(output_dir).resolve()
    relative = [p.relative_to(root).as_posix() for p in sorted(root.glob("**/*")) if p.is_file()]
    return list(filter_repo_objects(relative, ignore_patterns=UPLOAD_IGNORE_PATTERNS + DEFAULT_IGNORE_PATTERNS))


def check_no_token_in_files(output_dir: str | os.PathLike, files: list[str], token: str) -> None:
    """Refuse to upload a file that contains the token (e.g. pasted into a config)."""
    needle = token.encode()
    for name in files:
        path = Path(output_dir) / name
        if path.stat().st_size < len(needle):
            continue
        with open(path, "rb") as handle, mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ) as data:
            if data.find(needle) != -1:
                raise HubPushError(f"{name} contains your Hub token; remove it from the file before pushing.")


def push_to_hub(
    output_dir: str | os.PathLike,
    repo_id: str,
    *,
    private: Optional[bool] = None,
    token: Optional[str] = None,
    commit_message: str = DEFAULT_COMMIT_MESSAGE,
    revision: Optional[str] = None,
    endpoint: Optional[str] = None,
    card: bool = True,
    template_path: str | os.PathLike = TEMPLATE_PATH,
    **card_overrides,
):
    """Upload the model, feature extractor, card (README.md), metrics and figures in `output_dir` to `repo_id`.

    Args:
        output_dir: a finished run's output_dir.
        repo_id: 'name' (under the token's user) or 'namespace/name'; created if missing.
        private: make a new repo private (None: the Hub's default); ignored when the repo exists.
        token: Hub token; default $HF_TOKEN, then the saved login.
        commit_message: message of the upload commit.
        revision: branch to commit to (default: main).
        endpoint: Hub URL; default $HF_ENDPOINT as huggingface_hub read it at import.
        card: write README.md from the run first (True), or upload the README.md already there (False).
        template_path: Jinja template of the card.
        card_overrides: fields of `StudentCard` to set (e.g. license="apache-2.0").

    Returns:
        huggingface_hub's CommitInfo of the upload commit.
    """
    from huggingface_hub import HfApi, constants

    out = check_model_dir(output_dir)
    check_repo_id(repo_id)
    token = resolve_token(token)
    if constants.is_offline_mode():
        raise HubPushError("HF_HUB_OFFLINE is set: pushing needs the Hub. Unset it to push.")
    if card:
        # Render once before any request, so that a card problem stops the push early.
        StudentCard.from_output_dir(out, repo_id=repo_id, **card_overrides).render(template_path)
    elif not (out / CARD_NAME).is_file():
        raise FileNotFoundError(f"{str(out)!r} has no {CARD_NAME}; push with card=True to write one.")
    check_no_token_in_files(out, files_to_upload(out), token)

    api = HfApi(endpoint=endpoint, token=token, library_name="hf_mtkd")
    repo_url = api.create_repo(repo_id, private=private, exist_ok=True, token=token)
    resolved_id = repo_url.repo_id or repo_id  # 'name' becomes 'user/name'
    if card:
        StudentCard.from_output_dir(out, repo_id=resolved_id, **card_overrides).save(out, template_path)
        check_no_token_in_files(out, [CARD_NAME], token)
    files = files_to_upload(out)
    logger.info("Uploading %d files from %s to %s: %s", len(files), out, resolved_id, ", ".join(files))
    return api.upload_folder(
        repo_id=resolved_id,
        folder_path=out,
        commit_message=commit_message,
        token=token,
        revision=revision,
        ignore_patterns=UPLOAD_IGNORE_PATTERNS,
    )
