"""The curriculum learns (issue 23, item 2): on a task built so that easy-first helps, the policy's draws move from
the easy bucket to the hard one because of the rewards (whatever index each bucket has), not on a fixed schedule;
settings under which REINFORCE cannot learn are refused."""

import numpy as np
import pytest
import torch
from meta_curriculum_helpers import FixedMetaTeacher, easy_first_task, tiny_student

from hf_mtkd.meta_curriculum.contrastive import ContrastiveStudentObjective
from hf_mtkd.meta_curriculum.curriculum import Buckets, check_curriculum_settings, run_curriculum
from hf_mtkd.meta_curriculum.losses import reinforce_loss

EPISODES, STEPS = 60, 8


def _run(easy_first_order: bool, seed: int, policy_learning_rate: float = 2.0, episodes: int = EPISODES):
    train, quiz, easy, hard = easy_first_task()
    student = tiny_student(8, 6)
    student.config.normalize_series = False  # the task's classes differ in scale and shape, not only in shape
    buckets = (
        Buckets(["easy", "hard"], [easy, hard], "test")
        if easy_first_order
        else Buckets(["hard", "easy"], [hard, easy], "test")
    )
    objective = ContrastiveStudentObjective(supcon_lambda=0.0, temperature=0.1, queue_size=0, momentum=0.9,
                                            freq_mask_param=0, time_mask_param=0)
    result = run_curriculum(
        student, FixedMetaTeacher(4), train, quiz, buckets, objective, episodes=episodes, batch_size=32,
        quiz_batch_size=64, student_learning_rate=1e-2, policy_learning_rate=policy_learning_rate, gamma=0.0,
        exploration=0.1, entropy_weight=0.1, score=lambda m: 0.0, steps_per_episode=STEPS, seed=seed,
    )
    easy_index = buckets.names.index("easy")
    drawn_easy = [np.mean(np.asarray(e["actions"]) == easy_index) for e in result.episodes]
    rewards = [(np.asarray(e["actions"]), np.asarray(e["rewards"])) for e in result.episodes]
    return result, np.asarray(drawn_easy), rewards, easy_index


def _bucket_reward(rewards, episodes, bucket):
    drawn = [r[a == bucket] for a, r in rewards[episodes]]
    return float(np.concatenate(drawn).mean())


@pytest.mark.slow
def test_the_task_rewards_easy_batches_first_and_hard_ones_later():
    # The task is as built: under a policy that does not learn, easy batches move the quiz more early on and hard
    # batches more later (the reward is the quiz's gain in true-class probability across the step).
    _, _, rewards, easy = _run(True, seed=0, policy_learning_rate=1e-9)
    early, late = slice(5, 20), slice(40, EPISODES)
    print([_bucket_reward(rewards, w, b) for w in (early, late) for b in (easy, 1 - easy)])
    assert _bucket_reward(rewards, early, easy) > _bucket_reward(rewards, early, 1 - easy) + 0.001
    assert _bucket_reward(rewards, late, 1 - easy) > _bucket_reward(rewards, late, easy) + 0.0005


@pytest.mark.slow
def test_the_policy_moves_its_draws_from_easy_to_hard_whatever_the_bucket_order():
    early, late = slice(5, EPISODES // 3), slice(EPISODES - EPISODES // 3, EPISODES)
    shares = []
    for easy_first_order in (True, False):
        for seed in (0, 1, 2):
            result, drawn_easy, _, _ = _run(easy_first_order, seed)
            shares.append((drawn_easy[early].mean(), drawn_easy[late].mean()))
            probabilities = np.asarray([e["action_probabilities"] for e in result.episodes])
            assert np.abs(probabilities - probabilities[0]).max() > 0.2  # the policy's probabilities move
    shares = np.asarray(shares)
    print("easy share early/late per run:", np.round(shares, 2).tolist())
    # Averaged over both bucket orders and three seeds, the easy bucket's share falls from early to late episodes.
    assert shares[:, 0].mean() > 0.5 and shares[:, 1].mean() < shares[:, 0].mean() - 0.15, shares


def test_a_policy_that_does_not_learn_draws_the_same_early_and_late():
    # The control of the test above: without policy updates the draws keep their initial mix.
    _, drawn_easy, _, _ = _run(True, seed=0, policy_learning_rate=1e-9, episodes=24)
    assert abs(drawn_easy[:12].mean() - drawn_easy[12:].mean()) < 0.15


def test_one_step_per_episode_with_a_mean_baseline_is_refused():
    # Why: the one return is its own baseline, so the policy gradient is exactly zero.
    log_probs = torch.tensor([-1.2], requires_grad=True)
    reinforce_loss(log_probs, torch.tensor([0.7]), 0.99).backward()
    assert log_probs.grad.item() == 0.0
    with pytest.raises(ValueError, match="advantage is exactly 0"):
        check_curriculum_settings(1, "mean", "progress")
    check_curriculum_settings(1, "running", "progress")
    check_curriculum_settings(2, "mean", "win_rate")


def test_the_card_says_which_way_the_draws_moved():
    from hf_mtkd.meta_curriculum.method import curriculum_movement

    assert "moved to harder buckets" in curriculum_movement([0.2, 0.3, 0.5, 0.6, 0.9, 1.0])
    assert "moved to easier buckets" in curriculum_movement([1.0, 0.9, 0.5, 0.5, 0.1, 0.0])
    assert "did not move" in curriculum_movement([0.5] * 6) and curriculum_movement([0.5]) == ""


def test_the_config_refuses_one_step_per_episode_with_a_mean_baseline(tmp_path):
    from hf_mtkd.meta_curriculum import MetaCurriculumConfig

    common = dict(output_dir=str(tmp_path), report_to="none", teacher_model_name_or_path="t")
    with pytest.raises(ValueError, match="advantage is exactly 0"):
        MetaCurriculumConfig(**common, curriculum_steps_per_episode=1)
    assert MetaCurriculumConfig(**common, curriculum_steps_per_episode=1, curriculum_baseline="running")
    with pytest.raises(ValueError, match="curriculum reward"):
        MetaCurriculumConfig(**common, curriculum_reward="accuracy")
