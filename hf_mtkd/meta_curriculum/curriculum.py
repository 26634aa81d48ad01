"""Student curriculum learning (eq. 10-13): a policy picks, step by step, the bucket of training clips the updated
student S' learns from next, and REINFORCE rewards the picks after which S' gains on quiz batches.

Actions are buckets of the training split ordered from easy to hard: the levels of a difficulty column when the
corpus has one (emotional intensity: the paper starts from intense expressions; clips without a level are spread over
the levels by the teacher's confidence), else equal-size buckets of the teacher's probability of the true class.
The state is a learnt summary of S': a linear map of its first classifier layer's weight (MPDistil maps the student's
last pooler weights), standardised. Per step t of an episode: a_t ~ pi(. | s_t), one S' update on a batch of bucket
a_t (eq. 11 + eq. 12 through the frozen T'), reward r_t on a quiz batch: by default the step's gain in eq. 13's soft
margin (scored just before and just after the step), else eq. 13 itself. Per episode: one policy update (SGD on
standardised advantages, an entropy bonus; MPDistil's Adam at 1e-3 leaves the policy where it started); then S' is
scored on validation and the best S' is kept. Nothing fixes the order of the draws:
tests/test_meta_curriculum_policy.py shows them moving from easy to hard on a task built so that easy-first helps, in
either bucket order.

Why a plain loop and not a Trainer: the batch source changes every step by the policy's choice, a quiz batch
scores every step, and a second model (the policy) is updated once per episode; the Trainer's loop (one sampler,
one optimizer, one loss) has no hook for any of these. MPDistil also takes only one S' step per episode, with the
gradients of all its batches summed; then S' does not change within an episode and the rewards cannot depend on
the actions, so here S' steps after every batch.
"""

from __future__ import annotations

import copy
import logging
from dataclasses import dataclass, field
from typing import Callable, Optional, Sequence

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

from .contrastive import ContrastiveStudentObjective
from .features import INPUT_FEATURES, TEACHER_FEATURES
from .losses import consistency_loss, discounted_returns, reinforce_loss, true_class_probability, win_rate
from .teacher import MetaTeacher

logger = logging.getLogger(__name__)

UNRATED = "(no value)"


@dataclass
class Buckets:
    """The curriculum's actions: names (easy to hard) and the training rows of each."""

    names: list[str]
    indices: list[np.ndarray]
    source: str  # "column <name>" or "teacher probability"
    #: Mean teacher probability of the true class per bucket (falls from easy to hard), when known.
    teacher_confidence: list[float] = field(default_factory=list)

    def sizes(self) -> dict[str, int]:
        return {name: int(len(idx)) for name, idx in zip(self.names, self.indices)}


def buckets_by_column(values: Sequence, levels: Sequence[str], column: str) -> Buckets:
    """One bucket per level present (in `levels` order: easy to hard), and one last bucket for other values."""
    values = np.asarray(["" if v is None else str(v) for v in values], dtype=object)
    names, indices = [], []
    for level in levels:
        idx = np.flatnonzero(values == level)
        if len(idx):
            names.append(level)
            indices.append(idx)
    rest = np.flatnonzero(~np.isin(values, list(levels)))
    if len(rest):
        names.append(UNRATED)
        indices.append(rest)
    return Buckets(names, indices, f"column {column!r}")


def buckets_by_teacher_probability(teacher_logits: np.ndarray, labels: np.ndarray, num_buckets: int) -> Buckets:
    """Equal-size buckets of the teacher's true-class probability, most confident (easiest) first."""
    probability = true_class_probability(torch.as_tensor(teacher_logits), torch.as_tensor(labels)).numpy()
    order = np.argsort(-probability, kind="stable")
    parts = [part for part in np.array_split(order, num_buckets) if len(part)]
    names = [f"teacher p(y) {probability[part].min():.2f}-{probability[part].max():.2f}" for part in parts]
    return Buckets(names, [np.sort(part) for part in parts], "teacher probability")


def make_buckets(train, difficulty_column: Optional[str], levels: Sequence[str], num_buckets: int,
                 teacher_logits_column: str = "teacher_logits") -> Buckets:
    """Buckets from easy to hard. By `difficulty_column` when the training split has two of its `levels` or more:
    one bucket per level, and the clips without a level (e.g. a corpus without the column) spread over the levels
    by the teacher's true-class probability, most confident to the easiest level, in the levels' proportions. Else
    equal-size buckets of the teacher's probability. Each bucket's mean teacher probability is kept."""
    probability = true_class_probability(torch.as_tensor(np.asarray(train[teacher_logits_column])),
                                         torch.as_tensor(np.asarray(train["labels"]))).numpy()
    buckets = None
    if difficulty_column and difficulty_column in train.column_names:
        by_column = buckets_by_column(train.with_format(None)[difficulty_column], levels, difficulty_column)
        rated = [(name, idx) for name, idx in zip(by_column.names, by_column.indices) if name != UNRATED]
        if len(rated) >= 2:
            indices = [idx for _, idx in rated]
            unrated = [idx for name, idx in zip(by_column.names, by_column.indices) if name == UNRATED]
            if unrated:
                order = unrated[0][np.argsort(-probability[unrated[0]], kind="stable")]
                shares = np.cumsum([len(idx) for idx in indices])[:-1] / sum(len(idx) for idx in indices)
                parts = np.split(order, np.round(shares * len(order)).astype(int))
                indices = [np.sort(np.concatenate([idx, part])) for idx, part in zip(indices, parts)]
            buckets = Buckets([name for name, _ in rated], indices, by_column.source)
        else:
            logger.warning(
                "Column %r gives fewer than two of the levels %s (%s); bucketing by the teacher's probability "
                "instead.",
                difficulty_column,
                list(levels),
                by_column.names,
            )
    if buckets is None:
        buckets = buckets_by_teacher_probability(
            np.asarray(train[teacher_logits_column]), np.asarray(train["labels"]), num_buckets
        )
    buckets.teacher_confidence = [float(probability[idx].mean()) for idx in buckets.indices]
    if buckets.source != "teacher probability" and any(
            later > earlier for earlier, later in zip(buckets.teacher_confidence, buckets.teacher_confidence[1:])):
        logger.warning("The teacher finds a later (harder) bucket easier than an earlier one: %s.",
                       dict(zip(buckets.names, np.round(buckets.teacher_confidence, 3))))
    return buckets


class CurriculumPolicy(nn.Module):
    """pi(a | S'): state = Linear(d_model -> 1) applied to each row of S''s first classifier weight
    (classifier_hidden_size values), then Linear(state -> actions) and a softmax, mixed with `exploration` of the
    uniform distribution (every bucket keeps a chance of exploration / K: a bucket that was poor early can be found
    useful later)."""

    def __init__(self, student_width: int, state_size: int, num_actions: int, exploration: float = 0.0):
        super().__init__()
        if not 0.0 <= exploration < 1.0:
            raise ValueError(f"exploration must be in [0, 1), got {exploration}.")
        self.exploration = exploration
        self.state_map = nn.Linear(student_width, 1)
        self.action_head = nn.Linear(state_size, num_actions)

    def state(self, student_weights: torch.Tensor) -> torch.Tensor:
        # A copy: the optimizer updates the weights in place before the episode's policy update.
        state = self.state_map(student_weights.detach().clone()).squeeze(-1)
        # Standardised and scaled to norm 1: S''s weights grow in training, and a state that grows with them
        # would make every policy step larger than the last (and the softmax saturate).
        state = (state - state.mean()) / (state.std(unbiased=False) + 1e-6)
        return state / state.numel() ** 0.5

    def forward(self, student_weights: torch.Tensor) -> torch.distributions.Categorical:
        probs = torch.softmax(self.action_head(self.state(student_weights)), dim=-1)
        if self.exploration:
            probs = (1.0 - self.exploration) * probs + self.exploration / probs.shape[-1]
        return torch.distributions.Categorical(probs=probs)


@dataclass
class CurriculumResult:
    student: nn.Module  # the best S' by validation
    policy: CurriculumPolicy
    best_episode: Optional[int]
    best_score: Optional[float]
    episodes: list[dict] = field(default_factory=list)  # per episode: actions, rewards, losses, validation score


def _batch(dataset, rows: np.ndarray, device, with_teacher: bool = False) -> dict[str, torch.Tensor]:
    data = dataset[rows.tolist()]
    batch = {INPUT_FEATURES: torch.as_tensor(np.asarray(data[INPUT_FEATURES]), dtype=torch.float32, device=device),
             "labels": torch.as_tensor(np.asarray(data["labels"]), dtype=torch.long, device=device)}
    if with_teacher:
        batch[TEACHER_FEATURES] = torch.as_tensor(
            np.asarray(data[TEACHER_FEATURES]), dtype=torch.float32, device=device
        )
    return batch


REWARDS = ("progress", "win_rate")
BASELINES = ("mean", "running")


def check_curriculum_settings(steps_per_episode: int, baseline: str, reward: str) -> None:
    """Refuse settings under which the policy cannot learn (the error says why)."""
    if reward not in REWARDS:
        raise ValueError(f"curriculum reward must be one of {REWARDS}, got {reward!r}.")
    if baseline not in BASELINES:
        raise ValueError(f"curriculum baseline must be one of {BASELINES}, got {baseline!r}.")
    if baseline == "mean" and steps_per_episode < 2:
        raise ValueError(
            f"The curriculum takes {steps_per_episode} step per episode with the 'mean' baseline: the one"
            f" return is its "
            "own baseline, every advantage is exactly 0 and the policy never learns. Take two steps or more"
            " per episode "
            "(curriculum_steps_per_episode) or use curriculum_baseline: running."
        )


def run_curriculum(
    student: nn.Module,
    meta_teacher: MetaTeacher,
    train,
    quiz,
    buckets: Buckets,
    objective: ContrastiveStudentObjective,
    *,
    episodes: int,
    batch_size: int,
    student_learning_rate: float,
    policy_learning_rate: float,
    gamma: float,
    score: Callable[[nn.Module], float],
    steps_per_episode: Optional[int] = None,
    reward: str = "progress",
    baseline: str = "mean",
    quiz_batch_size: Optional[int] = None,
    consistency_gradient: bool = False,
    max_grad_norm: Optional[float] = 1.0,
    greater_is_better: bool = True,
    weight_decay: float = 0.0,
    policy: Optional[CurriculumPolicy] = None,
    exploration: float = 0.0,
    entropy_weight: float = 0.0,
    normalize_advantages: bool = True,
    seed: int = 0,
    device="cpu",
    progress: bool = False,
) -> CurriculumResult:
    """Train S' = a copy of `student` (which is left as it is) under the policy (a fresh one unless given); T' is
    frozen throughout. `score(model)` is S''s validation score (higher is better unless `greater_is_better` is False).

    `steps_per_episode` S' updates per episode (default: one pass over `train`, an epoch, as the paper counts S''s
    training); `reward` "progress": what the step changed in eq. 13's soft margin, mean_i [p_S'(y_i) - p_T'(y_i)],
    on one quiz batch scored just before and just after the step (T' is frozen, so this is the gain of S''s true-class
    probability), or "win_rate": eq. 13 after the step; `baseline` "mean": the episode's mean return, or "running":
    an exponential average of earlier episodes' returns."""
    steps = steps_per_episode or max(1, int(np.ceil(len(train) / batch_size)))
    check_curriculum_settings(steps, baseline, reward)
    generator = np.random.default_rng(seed)
    torch.manual_seed(seed)
    updated = copy.deepcopy(student).to(device).train()
    meta_teacher = meta_teacher.to(device).eval().requires_grad_(False)
    objective.start(updated)
    if policy is None:
        policy = CurriculumPolicy(updated.config.d_model, updated.config.classifier_hidden_size, len(buckets.names),
                                  exploration=exploration)
    policy = policy.to(device)
    student_optimizer = torch.optim.AdamW(updated.parameters(), lr=student_learning_rate, weight_decay=weight_decay)
    policy_optimizer = torch.optim.SGD(policy.parameters(), lr=policy_learning_rate)
    quiz_size = min(quiz_batch_size or batch_size, len(quiz))
    running_baseline: Optional[torch.Tensor] = None
    result = CurriculumResult(student=copy.deepcopy(updated).eval(), policy=policy, best_episode=None, best_score=None)

    def true_class(batch):
        updated.eval()
        with torch.no_grad():
            out = updated(batch[INPUT_FEATURES]).logits
        updated.train()
        return out

    bar = tqdm(total=episodes, desc="Curriculum episodes", unit="episode", disable=not progress)
    for episode in range(episodes):
        quiz_order = generator.permutation(len(quiz))
        log_probs, rewards, actions, losses, entropies = [], [], [], [], []
        for step in range(steps):
            distribution = policy(updated.state_weights())
            action = distribution.sample()
            log_probs.append(distribution.log_prob(action))
            entropies.append(distribution.entropy())
            actions.append(int(action))
            bucket = buckets.indices[int(action)]
            rows = generator.choice(bucket, size=min(batch_size, len(bucket)), replace=False)
            batch = _batch(train, rows, device)
            start = (step * quiz_size) % len(quiz)
            quiz_rows = np.take(quiz_order, np.arange(start, start + quiz_size), mode="wrap")
            quiz_batch = _batch(quiz, quiz_rows, device, with_teacher=True)
            if reward == "progress":
                before = true_class_probability(true_class(quiz_batch), quiz_batch["labels"]).mean()

            # eq. 10 = eq. 11 (the student objective) + eq. 12 (consistency through the frozen T').
            updated.train()
            outputs = updated(batch[INPUT_FEATURES])
            own, _ = objective.loss(
                updated, batch[INPUT_FEATURES], batch["labels"], outputs.logits, outputs.pooled_output
            )
            if consistency_gradient:
                through_meta = meta_teacher.classify_student(outputs.pooled_output, trainable=False)
            else:
                with torch.no_grad():
                    through_meta = meta_teacher.classify_student(outputs.pooled_output)
            loss = own + consistency_loss(outputs.logits, through_meta, batch["labels"])
            student_optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if max_grad_norm:
                torch.nn.utils.clip_grad_norm_(updated.parameters(), max_grad_norm)
            student_optimizer.step()
            losses.append(loss.item())

            # eq. 13 on a quiz batch: S' (eval mode) against T' on the teacher's features.
            after = true_class(quiz_batch)
            if reward == "progress":
                rewards.append(true_class_probability(after, quiz_batch["labels"]).mean() - before)
            else:
                with torch.no_grad():
                    rewards.append(win_rate(after, meta_teacher(quiz_batch[TEACHER_FEATURES]), quiz_batch["labels"]))

        reward_tensor = torch.stack(rewards).float()
        if baseline == "mean":
            policy_loss = reinforce_loss(torch.stack(log_probs), reward_tensor, gamma, normalize=normalize_advantages)
        else:
            returns = discounted_returns(reward_tensor, gamma)
            reference = returns.mean() if running_baseline is None else running_baseline
            policy_loss = reinforce_loss(torch.stack(log_probs), reward_tensor, gamma, baseline=reference,
                                         normalize=normalize_advantages)
            running_baseline = (
                returns.mean() if running_baseline is None else 0.9 * running_baseline + 0.1 * returns.mean()
            )
        if entropy_weight:
            policy_loss = policy_loss - entropy_weight * torch.stack(entropies).mean()
        policy_optimizer.zero_grad(set_to_none=True)
        policy_loss.backward()
        if max_grad_norm:
            torch.nn.utils.clip_grad_norm_(policy.parameters(), max_grad_norm)
        policy_optimizer.step()

        updated.eval()
        validation = float(score(updated))
        updated.train()
        better = result.best_score is None or (
            validation > result.best_score if greater_is_better else validation < result.best_score
        )
        if better:
            result.best_score, result.best_episode = validation, episode
            result.student = copy.deepcopy(updated).eval()
        result.episodes.append({
            "episode": episode,
            "actions": actions,
            "mean_action": float(np.mean(actions)),
            "mean_reward": float(reward_tensor.mean()),
            "rewards": [float(r) for r in reward_tensor],
            "student_loss": float(np.mean(losses)),
            "policy_loss": float(policy_loss.detach()),
            "validation": validation,
            "action_probabilities": [float(p) for p in policy(updated.state_weights()).probs.detach().cpu()],
        })
        logger.info(
            "Curriculum episode %d: actions %s, mean reward %.4f, validation %.4f%s",
            episode,
            np.bincount(actions, minlength=len(buckets.names)).tolist(),
            float(reward_tensor.mean()),
            validation,
            " (best)" if better else "",
        )
        bar.set_postfix(reward=f"{float(reward_tensor.mean()):.3f}", validation=f"{validation:.3f}")
        bar.update()
    bar.close()
    return result


__all__ = [
    "BASELINES",
    "Buckets",
    "CurriculumPolicy",
    "CurriculumResult",
    "REWARDS",
    "UNRATED",
    "check_curriculum_settings",
    "buckets_by_column",
    "buckets_by_teacher_probability",
    "make_buckets",
    "run_curriculum",
]
