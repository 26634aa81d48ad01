"""Configuration of meta-teacher + curriculum distillation (SPEC section 3). Defaults: the paper's Table 3, IEMOCAP
column (the MELD column is in recipes/meld/meta_curriculum.yaml)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

from ..training.args import SERTrainingArguments
from .features import FEATURE_DTYPES
from .curriculum import check_curriculum_settings
from .losses import SOFT_LOSSES
from ..models.inverted_transformer.configuration_inverted_transformer import FILTERBANKS

STUDENT_INITS = ("scratch", "student")
WEIGHTED_LAYERS = "weighted"


@dataclass
class MetaCurriculumConfig(SERTrainingArguments):
    """TrainingArguments of the method. `learning_rate` and `num_train_epochs` are the student's (Table 3: 1e-4,
    30 epochs); the meta-teacher and the curriculum have their own below. `per_device_train_batch_size` (Table 3:
    32) is every phase's batch size."""

    learning_rate: float = field(default=1e-4, metadata={"help": "Learning rate of the student and the distilled "
                                                                 "student (Table 3: 1e-4)."})
    num_train_epochs: float = field(default=30, metadata={"help": "Epochs of the student trained alone (Table 3: 30 "
                                                                  "IEMOCAP, 100 MELD)."})
    per_device_train_batch_size: int = field(default=32, metadata={"help": "Batch size of every phase (Table 3: 32)."})

    # Teacher.
    teacher_model_name_or_path: Optional[str] = field(
        default=None,
        metadata={"help": "The fine-tuned teacher: any AutoModelForAudioClassification checkpoint (hub id or path) "
                  "with the student's labels (the paper: HuBERT-large fine-tuned on the task)."},
    )

    # Upstream features.
    upstream_model_name_or_path: Optional[str] = field(
        default=None,
        metadata={"help": "Frozen transformers audio encoder whose hidden states the student reads (the paper: "
                  "facebook/hubert-large-ll60k). Empty: a torchaudio filterbank (see `filterbank`)."},
    )
    upstream_layer: str = field(
        default="-1",
        metadata={"help": "Index into the encoder's hidden_states (0 = input of the first layer, -1 = last), or "
                  "'weighted' for a learnable weighted sum of all of them (SUPERB)."},
    )
    filterbank: str = field(default="log_mel", metadata={"help": "Filterbank upstream: log_mel or mfcc (torchaudio)."})
    filterbank_sampling_rate: int = field(default=16000, metadata={"help": "Rate of the filterbank upstream's input."})
    n_fft: int = field(default=400, metadata={"help": "Filterbank STFT size (400 = 25 ms at 16 kHz)."})
    hop_length: int = field(default=160, metadata={"help": "Filterbank hop (160 = 10 ms at 16 kHz)."})
    n_mels: int = field(default=80, metadata={"help": "Mel bands of the filterbank (the log_mel feature width)."})
    n_mfcc: int = field(default=40, metadata={"help": "MFCCs (the mfcc feature width)."})
    normalize_filterbank: bool = field(
        default=True,
        metadata={"help": "Standardise each filterbank band over the clip (zero padding is then the clip's mean); "
                  "false keeps absolute levels (dB), e.g. loudness."},
    )
    max_frames: int = field(
        default=326,
        metadata={
            "help": "Features are cropped or zero-padded to this many frames (the paper: 326 IEMOCAP, 224 MELD)."
        },
    )
    feature_dtype: str = field(default="float32", metadata={"help": "Storage dtype of the feature cache: float32 or "
                                                                    "float16."})
    feature_batch_size: int = field(default=32, metadata={"help": "Rows per datasets.map batch when filling the "
                                                                  "caches."})

    # Student objective (eq. 2).
    supcon_lambda: float = field(default=0.05, metadata={"help": "lambda in lambda * SupCon + (1 - lambda) * CE "
                                                                 "(Table 3: 0.05 IEMOCAP, 0.2 MELD)."})
    supcon_temperature: float = field(default=0.07, metadata={"help": "tau1 of the supervised contrastive loss "
                                                                      "(Table 3: 0.07 IEMOCAP, 1.0 MELD)."})
    moco_queue_size: int = field(
        default=1024,
        metadata={
            "help": "Keys (with labels) kept from earlier batches; smaller than the training set so that it holds "
            "mostly distinct clips of the current epoch (MoCo's 65536 exceeds corpora of a few thousand clips)."
        },
    )
    moco_momentum: float = field(default=0.999, metadata={"help": "m of the key encoder: theta_k <- m theta_k + (1 - "
                                                                  "m) theta_q (MoCo)."})
    freq_mask_param: int = field(default=50, metadata={"help": "SpecAugment: frequency (channel) mask width drawn "
                                                               "from [0, this) (the paper: 50)."})
    time_mask_param: int = field(default=8, metadata={"help": "SpecAugment: time mask width drawn from [0, this) "
                                                              "frames (the paper: 8)."})

    # Distillation (eq. 4) and the meta-teacher (eq. 9).
    kd_alpha: float = field(default=0.1, metadata={"help": "alpha in alpha * L_student + (1 - alpha) * tau2^2 * soft "
                                                           "+ beta * PKD (Table 3: 0.1 IEMOCAP, 0.5 MELD)."})
    kd_beta: float = field(default=100.0, metadata={"help": "beta, the weight of the normalised PKD term (Table 3: "
                                                            "100)."})
    kd_temperature: float = field(default=5.0, metadata={"help": "tau2 of the soft term (Table 3: 5.0 IEMOCAP, 6.0 "
                                                                 "MELD)."})
    soft_loss: str = field(
        default="kl",
        metadata={
            "help": "kl: KL(P_T' || P_S) (the paper); mse: MSE of the softened distributions (MPDistil's code)."
        },
    )
    meta_epochs: int = field(
        default=30,
        metadata={
            "help": "Epochs of the distillation phase: per epoch one KD epoch of the student, then one meta-teacher "
            "pass over the quiz split (Table 3 meta-teacher epochs: 30 IEMOCAP, 100 MELD)."
        },
    )
    meta_learning_rate: float = field(default=1e-3, metadata={"help": "Learning rate of the meta-teacher's head and "
                                                                      "projection (Table 3: 1e-3)."})
    quiz_fraction: float = field(
        default=0.1,
        metadata={
            "help": "Share of the training clips (stratified by label and language) moved to the quiz split that "
            "trains the meta-teacher and scores the curriculum; never validation or test."
        },
    )
    distilled_student_init: str = field(
        default="scratch",
        metadata={"help": "scratch: the distilled student starts from the same initial weights as the student trained "
                  "alone (a like-for-like comparison); student: from the trained student."},
    )

    # Curriculum (eq. 10-13).
    curriculum_episodes: int = field(
        default=100,
        metadata={"help": "Episodes of the curriculum (Table 3 updated-student epochs: 100). S' takes "
                  "curriculum_episodes x curriculum_steps_per_episode updates in all."},
    )
    curriculum_steps_per_episode: Optional[int] = field(
        default=None,
        metadata={"help": "S' updates (one batch each) per episode. Default: ceil(training clips / batch size), one "
                  "epoch, so that curriculum_episodes counts epochs as the paper's 100 do; MPDistil takes one per "
                  "quiz batch (about 10x fewer). With curriculum_baseline mean it must be 2 or more."},
    )
    curriculum_learning_rate: float = field(
        default=1e-3, metadata={"help": "Learning rate of the updated student S' (Table 3: 1e-3)."}
    )
    curriculum_reward: str = field(
        default="progress",
        metadata={"help": "progress: the step's gain in eq. 13's soft margin mean[p_S'(y) - p_T'(y)] on a quiz batch "
                  "scored just before and after the step (what the chosen bucket did); win_rate: eq. 13 after the "
                  "step (MPDistil), whose level reflects S''s state more than the step's bucket."},
    )
    curriculum_baseline: str = field(
        default="mean",
        metadata={"help": "REINFORCE baseline: mean (the episode's mean return; needs 2 steps or more per episode) or "
                  "running (an exponential average of earlier episodes' returns)."},
    )
    policy_learning_rate: float = field(
        default=1.0,
        metadata={"help": "SGD learning rate of the policy on advantages standardised per episode (so the step does "
                  "not depend on the rewards' scale). MPDistil's 1e-3 (Adam) moves the action probabilities by "
                  "about 0.02 in 30 episodes: the policy then draws at random."},
    )
    policy_exploration: float = field(
        default=0.1, metadata={"help": "Share of uniform draws mixed into the policy: every bucket keeps a chance."}
    )
    policy_entropy_weight: float = field(
        default=0.1,
        metadata={"help": "Entropy bonus of the policy loss: keeps the softmax from saturating on one bucket."},
    )
    curriculum_gamma: float = field(
        default=0.0,
        metadata={"help": "Discount of the REINFORCE returns G_t = sum_{i>=t} gamma^i r_i. 0 with progress rewards: "
                  "each step is credited with its own gain (MPDistil: 0.99 with win-rate rewards)."},
    )
    consistency_gradient: bool = field(
        default=False,
        metadata={
            "help": "Let eq. 12's meta-teacher term back-propagate into S' through the frozen T' (MPDistil computes "
            "it without gradient, so only -p_S'(y) trains S')."
        },
    )
    difficulty_column: Optional[str] = field(
        default="intensity",
        metadata={"help": "Column whose values make the curriculum's buckets when the training split has it (RAVDESS, "
                  "CREMA-D, CaFE: intensity); otherwise buckets by the teacher's probability of the true class."},
    )
    difficulty_levels: list[str] = field(
        default_factory=lambda: ["strong", "high", "medium", "normal", "low"],
        metadata={"help": "Values of difficulty_column from easy to hard; clips with other values (e.g. empty, for a "
                  "corpus without the column) form one last bucket."},
    )
    num_difficulty_buckets: int = field(
        default=3,
        metadata={"help": "Buckets by the teacher's true-class probability (equal sizes, most confident first)."},
    )

    def __post_init__(self):
        super().__post_init__()
        if not self.teacher_model_name_or_path:
            raise ValueError("teacher_model_name_or_path is required: the fine-tuned teacher (hub id or path).")
        self.upstream_layer_index()  # validates
        checks = {
            "supcon_lambda": 0.0 <= self.supcon_lambda <= 1.0,
            "kd_alpha": 0.0 <= self.kd_alpha <= 1.0,
            "kd_beta": self.kd_beta >= 0.0,
            "supcon_temperature": self.supcon_temperature > 0.0,
            "kd_temperature": self.kd_temperature > 0.0,
            "moco_queue_size": self.moco_queue_size >= 0,
            "moco_momentum": 0.0 <= self.moco_momentum <= 1.0,
            "freq_mask_param": self.freq_mask_param >= 0,
            "time_mask_param": self.time_mask_param >= 0,
            "meta_epochs": self.meta_epochs >= 1,
            "meta_learning_rate": self.meta_learning_rate > 0.0,
            "quiz_fraction": 0.0 < self.quiz_fraction < 1.0,
            "curriculum_episodes": self.curriculum_episodes >= 0,
            "curriculum_learning_rate": self.curriculum_learning_rate > 0.0,
            "policy_learning_rate": self.policy_learning_rate > 0.0,
            "policy_exploration": 0.0 <= self.policy_exploration < 1.0,
            "policy_entropy_weight": self.policy_entropy_weight >= 0.0,
            "curriculum_gamma": 0.0 <= self.curriculum_gamma <= 1.0,
            "num_difficulty_buckets": self.num_difficulty_buckets >= 2,
            "max_frames": self.max_frames >= 1,
            "feature_batch_size": self.feature_batch_size >= 1,
            "n_mels": self.n_mels >= 1,
            "n_mfcc": self.n_mfcc >= 1,
        }
        bad = [name for name, ok in checks.items() if not ok]
        if bad:
            raise ValueError("Out of range: " + ", ".join(f"{name}={getattr(self, name)!r}" for name in bad) + ".")
        if self.curriculum_steps_per_episode is not None and self.curriculum_steps_per_episode < 1:
            raise ValueError(
                f"curriculum_steps_per_episode must be >= 1 (or unset), got {self.curriculum_steps_per_episode}."
            )
        check_curriculum_settings(
            self.curriculum_steps_per_episode or 2, self.curriculum_baseline, self.curriculum_reward
        )
        if self.soft_loss not in SOFT_LOSSES:
            raise ValueError(f"soft_loss must be one of {SOFT_LOSSES}, got {self.soft_loss!r}.")
        if self.filterbank not in FILTERBANKS:
            raise ValueError(f"filterbank must be one of {FILTERBANKS}, got {self.filterbank!r}.")
        if self.feature_dtype not in FEATURE_DTYPES:
            raise ValueError(f"feature_dtype must be one of {FEATURE_DTYPES}, got {self.feature_dtype!r}.")
        if self.distilled_student_init not in STUDENT_INITS:
            raise ValueError(f"distilled_student_init must be one of {STUDENT_INITS}, got "
                             f"{self.distilled_student_init!r}.")
        if isinstance(self.difficulty_levels, str):
            self.difficulty_levels = [self.difficulty_levels]
        if len(set(self.difficulty_levels)) != len(self.difficulty_levels):
            raise ValueError(f"difficulty_levels has duplicates: {self.difficulty_levels}.")

    def upstream_layer_index(self) -> Optional[int]:
        """The hidden-state index, or None for the learnable weighted sum of all layers."""
        value = str(self.upstream_layer).strip()
        if value == WEIGHTED_LAYERS:
            return None
        try:
            return int(value)
        except ValueError:
            raise ValueError(f"upstream_layer must be an integer index or {WEIGHTED_LAYERS!r}, got "
                             f"{self.upstream_layer!r}.") from None

    def filterbank_kwargs(self) -> dict:
        return {"filterbank": self.filterbank, "sampling_rate": self.filterbank_sampling_rate, "n_fft": self.n_fft,
                "hop_length": self.hop_length, "n_mels": self.n_mels, "n_mfcc": self.n_mfcc,
                "normalize_features": self.normalize_filterbank}

    @property
    def selection_metric(self) -> str:
        """The validation metric every phase selects on (the Trainer's metric_for_best_model, without eval_)."""
        name = self.metric_for_best_model or "UR"
        return name[len("eval_"):] if name.startswith("eval_") else name


__all__ = ["MetaCurriculumConfig", "STUDENT_INITS", "WEIGHTED_LAYERS"]
