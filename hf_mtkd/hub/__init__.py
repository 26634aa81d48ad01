"""Model cards and publishing to the Hugging Face Hub."""

from .card import (
    CARD_NAME,
    TEMPLATE_PATH,
    ModelCardError,
    StudentCard,
    check_template,
    write_run_card,
)
from .push import (
    UPLOAD_IGNORE_PATTERNS,
    HubPushError,
    check_model_dir,
    files_to_upload,
    push_to_hub,
)

__all__ = [
    "CARD_NAME",
    "HubPushError",
    "ModelCardError",
    "StudentCard",
    "TEMPLATE_PATH",
    "UPLOAD_IGNORE_PATTERNS",
    "check_model_dir",
    "check_template",
    "files_to_upload",
    "push_to_hub",
    "write_run_card",
]
