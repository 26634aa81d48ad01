"""Student curriculum learning (eq. 10-13): a policy picks, step by step, the bucket of training clips the updated
student S' learns from next, and REINFORCE rewards the picks after which S' beats the meta-teacher on quiz batches.

Actions are buckets of the training split from easy to hard: the levels of a difficulty column when the corpus has
one (emotional intensity: the paper starts from intense expressions), else equal-size buckets of the teacher's
probability of the true class. The state is a learnt summary of S': a linear map of its first classifier layer's
weight (MPDistil maps the student's last pooler weights). Per step t of an episode: a_t ~ pi(. | s_t), one S'
update on a batch of bucket a_t (eq. 11 + eq. 12 through the frozen T'), reward r_t = eq. 13 on the next quiz
batch. Per episode: one policy update, -mean_t[(G_t - mean G) log pi(a_t | s_t)], G_t = sum_{i>=t} 0.99^i r_i;
then S' is scored on validation and the best S' is kept.

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
from .losses import consistency_loss, reinforce_loss, true_class_probability, win_rate
from .teacher import MetaTeacher

logger = logging.getLogger(__name__)

UNRATED = "(no value)"


@dataclass
class Buckets:
    """The curriculum's actions: names (easy to hard) and the training rows of each."""

    names: list[str]
    indices: list[np.ndarray]
    source: str  # "column <name>" or "teacher probability"

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
    """By `difficulty_column` when the training split has it and it yields two buckets or more, else by the teacher."""
    if difficulty_column and difficulty_column in train.column_names:
        buckets = buckets_by_column(train.with_format(None)[difficulty_column], levels, difficulty_column)
        if len(buckets.names) >= 2:
            return buckets
        logger.warning("Column %r gives one bucket only (%s); bucketing by the teacher's probability instead.",
                       difficulty_column, buckets.names)
    return buckets_by_teacher_probability(
        np.asarray(train[teacher_logits_column]), np.asarray(train["labels"]), num_buckets
    )


class CurriculumPolicy(nn.Module):
    """pi(a | S'): state = Linear(d_model -> 1) applied to each row of S''s first classifier weight
    (classifier_hidden_size values), then Linear(state -> actions) and a softmax."""

    def __init__(self, student_width: int, state_size: int, num_actions: int):
        super().__init__()
        self.state_map = nn.Linear(student_width, 1)
        self.action_head = nn.Linear(state_size, num_actions)

    def state(self, student_weights: torch.Tensor) -> torch.Tensor:
        # A copy: the optimizer updates the weights in place before the episode's policy update.
        return self.state_map(student_weights.detach().clone()).squeeze(-1)

    def forward(self, student_weights: torch.Tensor) -> torch.distributions.Categorical:
        return torch.distributions.Categorical(logits=self.action_head(self.state(student_weights)))


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
    consistency_gradient: bool = False,
    max_grad_norm: Optional[float] = 1.0,
    greater_is_better: bool = True,
    weight_decay: float = 0.0,
    policy: Optional[CurriculumPolicy] = None,
    seed: int = 0,
    device="cpu",
    progress: bool = False,
) -> CurriculumResult:
    """Train S' = a copy of `student` (which is left as it is) under the policy (a fresh one unless given); T' is
    frozen throughout. `score(model)` is S''s validation score (higher is better unless `greater_is_better` is
    False)."""
    generator = np.random.default_rng(seed)
    torch.manual_seed(seed)
    updated = copy.deepcopy(student).to(device).train()
    meta_teacher = meta_teacher.to(device).eval().requires_grad_(False)
    objective.start(updated)
    if policy is None:
        policy = CurriculumPolicy(updated.config.d_model, updated.config.classifier_hidden_size, len(buckets.names))
    policy = policy.to(device)
    student_optimizer = torch.optim.AdamW(updated.parameters(), lr=student_learning_rate, weight_decay=weight_decay)
    policy_optimizer = torch.optim.AdamW(policy.parameters(), lr=policy_learning_rate, weight_decay=weight_decay)
    quiz_batches = max(1, int(np.ceil(len(quiz) / batch_size)))
    steps = steps_per_episode or quiz_batches
    result = CurriculumResult(student=copy.deepcopy(updated).eval(), policy=policy, best_episode=None, best_score=None)

    bar = tqdm(total=episodes, desc="Curriculum episodes", unit="episode", disable=not progress)
    for episode in range(episodes):
        quiz_order = generator.permutation(len(quiz))
        log_probs, rewards, actions, losses = [], [], [], []
        for step in range(steps):
            distribution = policy(updated.state_weights())
            action = distribution.sample()
            log_probs.append(distribution.log_prob(action))
            actions.append(int(action))
            bucket = buckets.indices[int(action)]
            rows = generator.choice(bucket, size=min(batch_size, len(bucket)), replace=False)
            batch = _batch(train, rows, device)

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

            # eq. 13 on the next quiz batch: S' (eval mode) against T' on the teacher's features.
            start = (step * batch_size) % len(quiz)
            quiz_rows = np.take(quiz_order, np.arange(start, start + min(batch_size, len(quiz))), mode="wrap")
            quiz_batch = _batch(quiz, quiz_rows, device, with_teacher=True)
            updated.eval()
            with torch.no_grad():
                rewards.append(win_rate(updated(quiz_batch[INPUT_FEATURES]).logits,
                                        meta_teacher(quiz_batch[TEACHER_FEATURES]), quiz_batch["labels"]))
            updated.train()

        reward_tensor = torch.stack(rewards).float()
        policy_loss = reinforce_loss(torch.stack(log_probs), reward_tensor, gamma)
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
            "mean_reward": float(reward_tensor.mean()),
            "student_loss": float(np.mean(losses)),
            "policy_loss": float(policy_loss.detach()),
            "validation": validation,
            "action_probabilities": [float(p) for p in policy(updated.state_weights()).probs.detach().cpu()],
        })
        logger.info(
            "Curriculum episode %d: actions %s, mean reward %.3f, validation %.4f%s",
            episode,
            np.bincount(actions, minlength=len(buckets.names)).tolist(),
            float(reward_tensor.mean()),
            validation,
            " (best)" if better else "",
        )
        bar.set_postfix(reward=f"{float(reward_tensor.mean()):.2f}", validation=f"{validation:.3f}")
        bar.update()
    bar.close()
    return result


__all__ = [
    "Buckets",
    "CurriculumPolicy",
    "CurriculumResult",
    "UNRATED",
    "buckets_by_column",
    "buckets_by_teacher_probability",
    "make_buckets",
    "run_curriculum",
]
