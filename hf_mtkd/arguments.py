"""Model and data arguments shared by every method (fine-tuning, MTKD, self-distillation)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Optional

ON_BAD_AUDIO = ("fail", "skip")
ON_SPEAKER_OVERLAP = ("warn", "fail")
ON_MISSING_TEXT = ("fail", "skip")

# Dict-valued fields are declared `str` for HfArgumentParser (YAML mappings arrive as JSON text)
# and parsed in __post_init__; from Python a dict may be passed directly. Not `Union[dict, str]`:
# typing caches Unions, so `Union[dict, str]` can come back as `Union[str, dict]` when some other
# library built that first, and HfArgumentParser then picks `dict` as the argparse type.
JSONField = str


def _parse_json_field(value: Any, name: str) -> Any:
    """Dict-valued fields arrive from YAML/CLI as JSON strings (HfArgumentParser has no dict type)."""
    if isinstance(value, str):
        try:
            return json.loads(value)
        except json.JSONDecodeError as err:
            raise ValueError(f"{name} must be a JSON object, got {value!r}: {err}") from err
    return value


@dataclass
class ModelArguments:
    model_name_or_path: Optional[str] = field(
        default=None,
        metadata={
            "help": "Hub id or local path of the student, loaded with AutoModelForAudioClassification.from_pretrained."
        },
    )
    model_type: Optional[str] = field(
        default=None,
        metadata={
            "help": "Build the student from a fresh config of this model_type (e.g. wav2vec2, hubert, wavlm, "
            "data2vec-audio) instead of from_pretrained; combine with config_overrides for tiny models."
        },
    )
    config_overrides: Optional[JSONField] = field(
        default=None,
        metadata={
            "help": 'JSON object of config attributes to set, e.g. {"hidden_size": 32, "num_hidden_layers": 2}.'
        },
    )
    feature_extractor_name: Optional[str] = field(
        default=None,
        metadata={"help": "Hub id or local path of the feature extractor; defaults to model_name_or_path."},
    )
    freeze_feature_encoder: bool = field(
        default=True, metadata={"help": "Freeze the convolutional feature encoder (the papers do)."}
    )
    cache_dir: Optional[str] = field(default=None, metadata={"help": "Where from_pretrained caches downloads."})
    model_revision: str = field(default="main", metadata={"help": "Model revision (branch, tag or commit) on the "
                                                                  "Hub."})
    trust_remote_code: bool = field(
        default=False, metadata={"help": "Allow custom modelling code from the Hub. Off by default for safety."}
    )

    def __post_init__(self):
        if (self.model_name_or_path is None) == (self.model_type is None):
            raise ValueError("Give exactly one of model_name_or_path (pretrained) or model_type (fresh config).")
        self.config_overrides = _parse_json_field(self.config_overrides, "config_overrides")
        if self.config_overrides is not None and not isinstance(self.config_overrides, dict):
            raise ValueError(f"config_overrides must be a mapping, got {type(self.config_overrides).__name__}.")


@dataclass
class DataArguments:
    # Where the data comes from: exactly one source.
    demo_corpus: bool = field(
        default=False,
        metadata={"help": "Use the embedded offline demo corpus (en/fi/fr, 4 emotions), built on first use."},
    )
    demo_corpus_multimodal: bool = field(
        default=False,
        metadata={
            "help": "With demo_corpus: the multimodal variant, with transcripts in a text column and part of the "
                    "clips worded toward their emotion."
        },
    )
    dataset_name: Optional[str] = field(
        default=None,
        metadata={"help": "Name or path passed to datasets.load_dataset (Hub dataset, script or local folder)."},
    )
    dataset_config_name: Optional[str] = field(default=None, metadata={"help": "Configuration name for load_dataset."})
    data_dir: Optional[str] = field(
        default=None,
        metadata={
            "help": "An audiofolder: a folder with metadata.csv (file_name, label, optional language, speaker, "
                    "split), "
            "or with train/, validation/, test/ subfolders each holding its own metadata.csv."
        },
    )
    dataset_path: Optional[str] = field(default=None, metadata={"help": "A folder written by "
                                                                        "Dataset(Dict).save_to_disk."})
    corpus: Optional[list[str]] = field(
        default=None,
        metadata={
            "help": "Native corpus reader(s) (iemocap, fesc, cafe, demos, meld, emodb, ravdess, crema_d); several "
                    "are concatenated."
        },
    )
    corpus_root: Optional[list[str]] = field(
        default=None, metadata={"help": "Root folder of each corpus named by --corpus, in the same order."}
    )
    corpus_options: Optional[JSONField] = field(
        default=None,
        metadata={"help": "JSON object of reader options per corpus, e.g. {\"iemocap\": {\"merge_excited\": true}}."},
    )

    # Columns.
    audio_column_name: str = field(default="audio", metadata={"help": "Column holding the audio."})
    label_column_name: str = field(default="label", metadata={"help": "Column holding the emotion (name or class "
                                                                      "id)."})
    language_column_name: Optional[str] = field(
        default="language",
        metadata={"help": "Column holding the language tag; used for per-language metrics and MTKD."},
    )
    speaker_column_name: Optional[str] = field(
        default="speaker", metadata={"help": "Column holding the speaker id; used for speaker-independent splits."}
    )
    split_column_name: Optional[str] = field(
        default="split", metadata={"help": "Column holding train/validation/test, if the data carries its own split."}
    )
    text_column_name: Optional[str] = field(
        default=None,
        metadata={
            "help": "Column holding each clip's transcript (methods that read text, e.g. audio_text, need it). When "
            "set, every clip must have one: see on_missing_text."
        },
    )
    on_missing_text: str = field(
        default="fail",
        metadata={
            "help": "A clip with an empty or missing transcript: 'fail' naming it, or 'skip' (dropped, counted in "
            "the data report)."
        },
    )

    # Labels.
    labels: Optional[list[str]] = field(
        default=None,
        metadata={"help": "Emotion names to keep, in class-id order. Default: every label found, sorted."},
    )
    label_map: Optional[JSONField] = field(
        default=None, metadata={"help": "JSON object renaming labels before selection, e.g. {\"excited\": \"happy\"}."}
    )
    drop_unlisted_labels: bool = field(
        default=True,
        metadata={
            "help": "Drop rows whose label is not in `labels` (counted and logged); if false they are an error."
        },
    )
    languages: Optional[list[str]] = field(
        default=None, metadata={"help": "Keep only these languages (e.g. a monolingual FT-Mono run)."}
    )

    # Splits.
    train_split_name: str = field(default="train", metadata={"help": "Name of the training split."})
    validation_split_name: str = field(default="validation", metadata={"help": "Name of the validation split."})
    test_split_name: str = field(default="test", metadata={"help": "Name of the test split."})
    fold_column_name: Optional[str] = field(
        default=None, metadata={"help": "Column defining leave-one-group-out folds (e.g. session or speaker)."}
    )
    test_fold: Optional[list[str]] = field(
        default=None,
        metadata={"help": "Value(s) of fold_column_name held out as the test set (one per corpus when several)."},
    )
    validation_fold: Optional[list[str]] = field(
        default=None,
        metadata={
            "help": "Value(s) of fold_column_name used for validation (with or without test_fold); default: speakers "
            "drawn from the training data, stratified by language."
        },
    )
    validation_fraction: float = field(
        default=0.15,
        metadata={
            "help": "Share of training speakers (or rows, without a speaker column) moved to validation when the "
                    "data has no validation split."
        },
    )
    split_seed: int = field(default=0, metadata={"help": "Seed for the speaker draw that makes missing splits."})
    validation_min_clips: int = field(
        default=5,
        metadata={"help": "Warn (naming the language) when a class has fewer clips than this in a language's "
                  "validation data: model selection on so few clips follows noise. 0 turns the warning off."},
    )
    on_speaker_overlap: str = field(
        default="warn",
        metadata={"help": "Test speakers also in training or validation (with a speaker column): 'warn' (recorded in "
                  "the run summary) or 'fail'."},
    )

    # Audio.
    max_duration_seconds: float = field(
        default=30.0,
        metadata={"help": "Keep at most this much audio of each clip (the rest is never decoded); validation, test "
                          "and predict cover all of it."},
    )
    train_window_seconds: Optional[float] = field(
        default=3.0,
        metadata={
            "help": "Train on windows of this length: a longer clip gives one window per epoch (see random_crop). "
            "Validation, test and predict cut each whole clip into windows of the same length and "
            "average their logits. Saved in the model's config (train_window_seconds). 0: whole clips (up to "
            "max_duration_seconds)."
        },
    )
    random_crop: bool = field(
        default=True,
        metadata={"help": "Draw each training window at a random offset, afresh each epoch, from (seed, epoch, clip) "
                          "(augmentation; a resumed run draws the same); false: the start of the clip."},
    )
    on_bad_audio: str = field(
        default="fail",
        metadata={
            "help": "What to do with a file that cannot be decoded or is empty/non-finite: 'fail' or 'skip' (counted)."
        },
    )
    preprocessing_num_workers: Optional[int] = field(default=None, metadata={"help": "Processes for datasets.map."})
    max_train_samples: Optional[int] = field(default=None, metadata={"help": "Truncate the training set (debugging)."})
    max_eval_samples: Optional[int] = field(default=None, metadata={"help": "Truncate validation and test sets "
                                                                            "(debugging)."})

    def __post_init__(self):
        sources = {
            "demo_corpus": self.demo_corpus,
            "dataset_name": self.dataset_name,
            "data_dir": self.data_dir,
            "dataset_path": self.dataset_path,
            "corpus": self.corpus,
        }
        given = [name for name, value in sources.items() if value]
        if len(given) != 1:
            raise ValueError(
                "Give exactly one data source among demo_corpus, dataset_name, data_dir, dataset_path, corpus; "
                f"got {given or 'none'}."
            )
        if self.corpus and len(self.corpus_root or []) != len(self.corpus):
            raise ValueError(
                f"corpus {self.corpus} needs one corpus_root per corpus (the folder of your local copy), got "
                f"{self.corpus_root}."
            )
        self.label_map = _parse_json_field(self.label_map, "label_map")
        self.corpus_options = _parse_json_field(self.corpus_options, "corpus_options")
        if self.on_missing_text not in ON_MISSING_TEXT:
            raise ValueError(f"on_missing_text must be one of {ON_MISSING_TEXT}, got {self.on_missing_text!r}.")
        if self.demo_corpus_multimodal and not self.demo_corpus:
            raise ValueError("demo_corpus_multimodal selects a variant of the demo corpus: it needs demo_corpus.")
        if self.on_bad_audio not in ON_BAD_AUDIO:
            raise ValueError(f"on_bad_audio must be one of {ON_BAD_AUDIO}, got {self.on_bad_audio!r}.")
        if self.max_duration_seconds <= 0:
            raise ValueError(f"max_duration_seconds must be > 0, got {self.max_duration_seconds}.")
        if self.train_window_seconds is not None and self.train_window_seconds < 0:
            raise ValueError(f"train_window_seconds must be > 0 (or 0 for whole clips), got "
                             f"{self.train_window_seconds}.")
        if self.validation_min_clips < 0:
            raise ValueError(f"validation_min_clips must be >= 0 (0: no warning), got {self.validation_min_clips}.")
        if not 0.0 < self.validation_fraction < 1.0:
            raise ValueError(f"validation_fraction must be in (0, 1), got {self.validation_fraction}.")
        if self.validation_split_name == self.test_split_name:
            raise ValueError("validation_split_name and test_split_name must differ: never select models on the test "
                             "set.")
        if isinstance(self.test_fold, str):
            self.test_fold = [self.test_fold]
        if isinstance(self.validation_fold, str):
            self.validation_fold = [self.validation_fold]
        if isinstance(self.corpus, str):
            self.corpus = [self.corpus]
        if isinstance(self.corpus_root, str):
            self.corpus_root = [self.corpus_root]
        shared = set(self.validation_fold or ()) & set(self.test_fold or ())
        if shared:
            raise ValueError(f"validation_fold and test_fold share {sorted(shared)}: never select models on the test "
                             f"set.")
        for flag in ("test_fold", "validation_fold"):
            if getattr(self, flag) is not None and not self.fold_column_name:
                raise ValueError(f"{flag} needs fold_column_name (the column whose values it names).")
        if isinstance(self.labels, str):
            raise ValueError(f"labels must be a list of emotion names, got the string {self.labels!r}.")
        if self.labels is not None and len(set(self.labels)) != len(self.labels):
            raise ValueError(f"labels has duplicates: {self.labels}.")
        if self.labels is not None and len(self.labels) < 2:
            raise ValueError(
                f"labels names {len(self.labels)} class(es) {self.labels}: a classifier needs at least two. In YAML, "
                "`labels: angry` is one label; write a list: `labels: [angry, happy, neutral, sad]`."
            )
        if self.on_speaker_overlap not in ON_SPEAKER_OVERLAP:
            raise ValueError(f"on_speaker_overlap must be one of {ON_SPEAKER_OVERLAP}, got "
                             f"{self.on_speaker_overlap!r}.")
