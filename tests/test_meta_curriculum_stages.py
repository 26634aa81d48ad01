"""Each phase of meta-curriculum distillation changes exactly the parameters it should (tiny models), the quiz split,
the configuration checks, and the export's scores (what the shared reports of S' read) against the student's.
The runs through `hf-mtkd train` and `hf-mtkd pipeline` are in test_meta_curriculum_run.py."""

from collections import Counter

import numpy as np
import pytest
import torch
from datasets import DatasetDict

from hf_mtkd.arguments import DataArguments, ModelArguments
from hf_mtkd.meta_curriculum import MetaCurriculumConfig
from hf_mtkd.models.inverted_transformer import WaveformStudentForAudioClassification
from hf_mtkd.meta_curriculum.curriculum import CurriculumPolicy, make_buckets, run_curriculum
from hf_mtkd.meta_curriculum.features import INPUT_FEATURES, TEACHER_FEATURES
from hf_mtkd.meta_curriculum.caches import carve_quiz_split, prepare_caches
from hf_mtkd.meta_curriculum.fit import (
    WaveformModelPredictor,
    _objective,
    build_feature_student,
    train_student_phase,
)
from hf_mtkd.meta_curriculum.report import student_logits
from hf_mtkd.meta_curriculum.teacher import MetaTeacher
from hf_mtkd.meta_curriculum.trainer import (
    DistillationSettings,
    FeatureCollator,
    MetaCurriculumStudentTrainer,
    meta_teacher_pass,
)
from meta_curriculum_helpers import LABELS, TINY_STUDENT, FixedMetaTeacher, changed, state, waveform_dataset
from testing_utils import save_tiny_classifier

STUDENT_TYPE = "hf_mtkd_inverted_transformer"


def tiny_config(output_dir, **overrides) -> MetaCurriculumConfig:
    values = dict(
        output_dir=str(output_dir),
        teacher_model_name_or_path="unset",
        report_to="none",
        num_train_epochs=1,
        meta_epochs=1,
        curriculum_episodes=2,
        per_device_train_batch_size=4,
        per_device_eval_batch_size=8,
        n_bootstrap=10,
        max_frames=30,
        n_mels=12,
        freq_mask_param=4,
        time_mask_param=4,
        moco_queue_size=8,
        moco_momentum=0.9,
        quiz_fraction=0.25,
        supcon_lambda=0.5,
        learning_rate=1e-2,
        curriculum_learning_rate=1e-2,
        policy_learning_rate=0.5,
        seed=0,
        num_difficulty_buckets=2,
    )
    values.update(overrides)
    return MetaCurriculumConfig(**values)


@pytest.fixture(scope="module")
def phase_setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("phases")
    save_tiny_classifier(root / "teacher", LABELS)
    splits = DatasetDict({
        "train": waveform_dataset(root / "train", n=16, seed=1),
        "validation": waveform_dataset(root / "validation", n=8, seed=2),
        "test": waveform_dataset(root / "test", n=8, seed=3),
    })
    config = tiny_config(root / "out", teacher_model_name_or_path=str(root / "teacher"))
    model_args = ModelArguments(model_type=STUDENT_TYPE, config_overrides=dict(TINY_STUDENT))
    data_args = DataArguments(dataset_path="unused", max_duration_seconds=0.6)
    caches = prepare_caches(config, model_args, data_args, splits, LABELS)
    return config, model_args, caches


def _meta_teacher(caches, student):
    width = len(caches.splits["train"][0]["teacher_features"])
    return MetaTeacher(caches.teacher, width, student.config.d_model)


def _loader(caches, config):
    return torch.utils.data.DataLoader(caches.splits["quiz"], batch_size=4, shuffle=True,
                                       collate_fn=FeatureCollator(with_teacher_features=True))


def test_caches_and_quiz_split(phase_setup):
    config, _, caches = phase_setup
    sizes = {name: len(ds) for name, ds in caches.splits.items()}
    assert sizes == {"train": 12, "quiz": 4, "validation": 8, "test": 8}  # one quiz clip per label
    assert np.asarray(caches.splits["quiz"][INPUT_FEATURES]).shape == (4, 30, 12)
    assert sorted(np.asarray(caches.splits["quiz"]["labels"]).tolist()) == [0, 1, 2, 3]


def test_student_phase_changes_the_student_only(phase_setup):
    config, model_args, caches = phase_setup
    teacher_before, upstream_before = state(caches.teacher.model), state(caches.upstream)
    student = build_feature_student(model_args, caches.upstream_config, LABELS)
    before = state(student)
    trained, _ = train_student_phase(config, student, caches.splits, LABELS, "student_test", epochs=1)
    assert changed(before, trained) == set(before)  # every student parameter moved (CE + SupCon)
    assert not changed(teacher_before, caches.teacher.model) and not changed(upstream_before, caches.upstream)


def test_kd_steps_never_touch_the_meta_teacher(phase_setup, tmp_path):
    config, model_args, caches = phase_setup
    student = build_feature_student(model_args, caches.upstream_config, LABELS)
    meta = _meta_teacher(caches, student)
    student_before, meta_before = state(student), state(meta)
    args = tiny_config(
        tmp_path,
        teacher_model_name_or_path="unset",
        max_steps=2,
        eval_strategy="no",
        save_strategy="no",
        load_best_model_at_end=False,
    )
    trainer = MetaCurriculumStudentTrainer(
        model=student, args=args, train_dataset=caches.splits["train"], data_collator=FeatureCollator(True),
        objective=_objective(config), distillation=DistillationSettings(meta, 0.1, 100.0, 5.0, "kl"),
    )
    trainer.train()
    assert changed(student_before, student) == set(student_before)
    assert not changed(meta_before, meta)
    assert all(p.grad is None for p in meta.parameters())  # T' is a constant inside the KD loss
    logged = {key for row in trainer.state.log_history for key in row}
    assert {"supcon", "soft", "pkd", "student"} <= logged


def test_distillation_phase_trains_the_meta_teacher_head_and_projection_only(phase_setup):
    config, model_args, caches = phase_setup
    teacher_before = state(caches.teacher.model)
    student = build_feature_student(model_args, caches.upstream_config, LABELS)
    meta = _meta_teacher(caches, student)
    assert isinstance(meta.projection, torch.nn.Linear)  # student width 8, teacher width 32
    meta_before = state(meta)
    student_before = state(student)
    distillation = DistillationSettings(meta, config.kd_alpha, config.kd_beta, config.kd_temperature, "kl")
    trained, callback = train_student_phase(config, student, caches.splits, LABELS, "distilled_test", epochs=1,
                                            distillation=distillation, quiz_loader=_loader(caches, config))
    trainable = {name for name, _ in meta.named_parameters()}
    assert trainable == {n for n in meta_before if n.startswith(("head.", "projection."))}
    assert changed(meta_before, meta) == trainable  # head and projection, not the label permutation
    assert changed(student_before, trained) == set(student_before)
    assert not changed(teacher_before, caches.teacher.model)
    assert callback.best_state is not None and len(callback.history) == 1


def test_meta_teacher_pass_changes_the_meta_teacher_only(phase_setup):
    """Eq. 9 on the quiz split: T''s head and projection learn; the student (read without gradient) stays."""
    _, model_args, caches = phase_setup
    student = build_feature_student(model_args, caches.upstream_config, LABELS).train()
    meta = _meta_teacher(caches, student)
    student_before, meta_before, teacher_before = state(student), state(meta), state(caches.teacher.model)
    optimizer = torch.optim.AdamW(meta.parameters(), lr=1e-2, weight_decay=0.0)
    loss = meta_teacher_pass(meta, student, _loader(caches, None), optimizer, "cpu", max_grad_norm=1.0)
    assert loss > 0 and student.training  # the student's mode is restored
    assert not changed(student_before, student) and all(p.grad is None for p in student.parameters())
    assert changed(meta_before, meta) == {name for name, _ in meta.named_parameters()}
    assert not changed(teacher_before, caches.teacher.model)


def test_curriculum_changes_the_updated_student_and_the_policy_only(phase_setup):
    config, model_args, caches = phase_setup
    student = build_feature_student(model_args, caches.upstream_config, LABELS)
    meta = _meta_teacher(caches, student).eval().requires_grad_(False)
    buckets = make_buckets(caches.splits["train"], None, [], num_buckets=2)
    torch.manual_seed(0)
    policy = CurriculumPolicy(student.config.d_model, student.config.classifier_hidden_size, len(buckets.names))
    before = {
        "student": state(student),
        "meta": state(meta),
        "teacher": state(caches.teacher.model),
        "policy": state(policy),
    }
    validation = caches.splits["validation"]
    result = run_curriculum(
        student, meta, caches.splits["train"], caches.splits["quiz"], buckets, _objective(config), episodes=3,
        batch_size=4, student_learning_rate=1e-2, policy_learning_rate=0.5, gamma=0.99, steps_per_episode=4,
        score=lambda m: float((student_logits(m, validation).argmax(-1) == np.asarray(validation["labels"])).mean()),
        policy=policy, seed=0,
    )
    assert any(len(set(np.round(e["action_probabilities"], 6))) > 1 for e in result.episodes)
    assert changed(before["policy"], policy) == set(before["policy"])
    assert not changed(before["student"], student)  # S' is a copy: the distilled student stays as it was
    assert not changed(before["meta"], meta) and not changed(before["teacher"], caches.teacher.model)
    assert changed(before["student"], result.student)
    assert [len(e["actions"]) for e in result.episodes] == [4, 4, 4]
    assert result.best_episode is not None and result.best_score == max(e["validation"] for e in result.episodes)


def test_carve_quiz_split_is_disjoint_and_stratified(tmp_path):
    data = waveform_dataset(tmp_path / "d", n=40)
    train, quiz = carve_quiz_split(data, 0.25, seed=0, strata_columns=("labels", "language"))
    # 4 strata (labels 0, 2 are Finnish, 1, 3 English here) of 10 clips: 2.5 -> 2 each.
    assert len(train) + len(quiz) == 40 and len(quiz) == 8
    assert Counter(zip(np.asarray(quiz["labels"]).tolist(), quiz["language"])) == {
        (0, "fi"): 2,
        (1, "en"): 2,
        (2, "fi"): 2,
        (3, "en"): 2,
    }
    waves = {tuple(np.asarray(w)[:5]) for w in train["waveform"]}
    assert not any(tuple(np.asarray(w)[:5]) in waves for w in quiz["waveform"])
    with pytest.raises(ValueError, match="label 0 has 1 training clip"):
        carve_quiz_split(data.select(range(4)), 0.25, seed=0)


def test_config_checks(tmp_path):
    with pytest.raises(ValueError, match="teacher_model_name_or_path is required"):
        MetaCurriculumConfig(output_dir=str(tmp_path), report_to="none")
    with pytest.raises(ValueError, match="upstream_layer"):
        tiny_config(tmp_path, upstream_layer="last")
    with pytest.raises(ValueError, match="quiz_fraction"):
        tiny_config(tmp_path, quiz_fraction=1.0)
    with pytest.raises(ValueError, match="soft_loss"):
        tiny_config(tmp_path, soft_loss="js")
    assert tiny_config(tmp_path, upstream_layer="weighted").upstream_layer_index() is None
    defaults = MetaCurriculumConfig(output_dir=str(tmp_path), report_to="none", teacher_model_name_or_path="t")
    # The paper's Table 3 (IEMOCAP column).
    assert (defaults.learning_rate, defaults.num_train_epochs, defaults.meta_learning_rate, defaults.meta_epochs) == (
        1e-4,
        30,
        1e-3,
        30,
    )
    assert (defaults.curriculum_learning_rate, defaults.curriculum_episodes, defaults.per_device_train_batch_size) == (
        1e-3,
        100,
        32,
    )
    assert (
        defaults.kd_alpha,
        defaults.kd_beta,
        defaults.supcon_lambda,
        defaults.supcon_temperature,
        defaults.kd_temperature,
    ) == (0.1, 100.0, 0.05, 0.07, 5.0)


def test_student_settings_the_upstream_decides_are_refused(phase_setup):
    _, _, caches = phase_setup
    with pytest.raises(ValueError, match="upstream decides"):
        build_feature_student(
            ModelArguments(model_type=STUDENT_TYPE, config_overrides={"num_channels": 3}),
            caches.upstream_config,
            LABELS,
        )
    with pytest.raises(ValueError, match="inverted-transformer student"):
        build_feature_student(ModelArguments(model_type="wav2vec2"), caches.upstream_config, LABELS)


def test_the_shared_reports_score_the_export_as_the_student_on_cached_features(phase_setup):
    """S''s validation and test numbers come from the shared reports through `WaveformModelPredictor` (the saved
    waveform model, clip by clip); they must be the numbers of S' on the cached features the phases scored with."""
    config, model_args, caches = phase_setup
    student = build_feature_student(model_args, caches.upstream_config, LABELS).eval()
    export = WaveformStudentForAudioClassification.from_parts(caches.upstream, caches.upstream_config, student)
    validation = caches.splits["validation"]
    scores = WaveformModelPredictor(export, caches.feature_extractor, batch_size=3).predict_scores(validation)
    assert scores.shape == (len(validation), len(LABELS))
    np.testing.assert_allclose(scores, student_logits(student, validation, batch_size=5), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("sign, reward", [(50.0, 0.0), (-50.0, 1.0)])
def test_curriculum_reward_is_the_students_win_rate_over_the_meta_teacher_on_quiz_batches(phase_setup, sign, reward):
    # Eq. 13: r = share of quiz samples where S' gives the true class a higher probability than T'. A T' that is
    # sure of the true class (p = 1) is never beaten: r = 0 at every step; one sure of a wrong class (p = 0) always is.
    config, model_args, caches = phase_setup
    quiz = caches.splits["quiz"]
    labels = np.asarray(quiz["labels"])
    # T' logits = this column: +-50 on the true class, a true-class probability of 1 or 0.
    fixed = (sign * np.eye(len(LABELS))[labels]).astype(np.float32).tolist()
    quiz = quiz.remove_columns(TEACHER_FEATURES).add_column(TEACHER_FEATURES, fixed)
    student = build_feature_student(model_args, caches.upstream_config, LABELS)
    buckets = make_buckets(caches.splits["train"], None, [], num_buckets=2)
    result = run_curriculum(
        student, FixedMetaTeacher(len(LABELS)), caches.splits["train"], quiz, buckets, _objective(config), episodes=2,
        batch_size=4, student_learning_rate=1e-2, policy_learning_rate=0.5, gamma=0.99, steps_per_episode=3,
        score=lambda m: 0.0, seed=0, reward="win_rate",
    )
    assert [e["mean_reward"] for e in result.episodes] == [reward, reward]


class _Stop(Exception):
    pass


def test_meta_teacher_learns_on_the_quiz_split_and_the_curriculum_is_rewarded_there(
    phase_setup, monkeypatch, tmp_path
):
    # fit_phases hands T''s passes the quiz split (not train), and the curriculum's rewards the quiz split (not
    # validation or test); the run stops once the curriculum is called.
    from hf_mtkd.meta_curriculum import fit

    config, model_args, caches = phase_setup
    seen = {}
    real_callback = fit.MetaTeacherCallback

    def recording_callback(trainer, meta, quiz_loader, *args, **kwargs):
        seen["meta_teacher_data"] = quiz_loader.dataset
        return real_callback(trainer, meta, quiz_loader, *args, **kwargs)

    def recording_curriculum(distilled, meta_teacher, train, quiz, *args, **kwargs):
        seen["curriculum_train"], seen["curriculum_quiz"] = train, quiz
        raise _Stop

    monkeypatch.setattr(fit, "MetaTeacherCallback", recording_callback)
    monkeypatch.setattr(fit, "run_curriculum", recording_curriculum)
    config = tiny_config(tmp_path, teacher_model_name_or_path=config.teacher_model_name_or_path)
    with pytest.raises(_Stop):
        fit.fit_phases(
            config, model_args, DataArguments(dataset_path="unused", max_duration_seconds=0.6), caches, LABELS
        )
    assert seen["meta_teacher_data"] is caches.splits["quiz"]
    assert seen["curriculum_quiz"] is caches.splits["quiz"] and seen["curriculum_train"] is caches.splits["train"]


def test_a_collapsed_stage_is_warned_about_with_its_name(phase_setup):
    # Issue 23, item 1: the distilled student predicted only angry and sad (validation UR exactly 50) without a word.
    from hf_mtkd.meta_curriculum.fit import score_stages

    _, _, caches = phase_setup

    def collapsed(dataset):  # angry for even labels, sad for odd: 2 of 4 classes
        labels = np.asarray(dataset["labels"])
        return np.eye(len(LABELS))[np.where(labels % 2 == 0, 0, 3)]

    def perfect(dataset):
        return np.eye(len(LABELS))[np.asarray(dataset["labels"])]

    results, warnings = score_stages({"student": perfect, "distilled_student": collapsed}, caches.splits, LABELS,
                                     language_column="language", n_bootstrap=0, seed=0)
    assert set(results) == {"student", "distilled_student"} and set(results["student"]) == {"validation", "test"}
    assert len(warnings) == 2 and all(
        w.startswith("distilled_student stage: Prediction collapse on ") for w in warnings
    )
    assert "never predicts happy, neutral" in warnings[0]


def test_a_stage_that_predicts_a_class_once_in_a_while_counts_as_collapsed():
    # The demo's distilled student: angry and sad, and neutral once in 96 clips (validation UR 50.0).
    from hf_mtkd.meta_curriculum.fit import STAGE_COLLAPSE_MIN_SHARE
    from hf_mtkd.training.evaluation import prediction_collapse_warning

    predictions = np.array([0] * 47 + [3] * 48 + [2])
    assert prediction_collapse_warning(predictions, LABELS, "validation") is None  # 3 of 4 classes, once each
    warning = prediction_collapse_warning(predictions, LABELS, "validation", min_share=STAGE_COLLAPSE_MIN_SHARE)
    assert warning and "never predicts happy, neutral" in warning and "2%" in warning


def test_fit_phases_hands_the_stages_collapse_warnings_to_the_run(phase_setup, monkeypatch, tmp_path):
    from hf_mtkd.meta_curriculum import fit

    config, model_args, caches = phase_setup
    config = tiny_config(tmp_path, teacher_model_name_or_path=config.teacher_model_name_or_path, curriculum_episodes=1,
                         curriculum_steps_per_episode=2)
    monkeypatch.setattr(
        fit, "student_logits", lambda model, dataset, *a, **k: np.eye(len(LABELS))[np.zeros(len(dataset), int)]
    )
    result = fit.fit_phases(
        config, model_args, DataArguments(dataset_path="unused", max_duration_seconds=0.6), caches, LABELS
    )
    stages = {w.split(" stage:")[0] for w in result.training_warnings if "Prediction collapse" in w}
    assert {"student", "distilled_student"} <= stages


def test_the_quiz_split_holds_every_class_or_the_run_stops_naming_it(tmp_path):
    # Issue 23, item 5. Class 3 ("sad") has one clip in each language: no (label, language) stratum has two clips,
    # yet the class has two, so one of them goes to the quiz.
    data = waveform_dataset(tmp_path / "d", n=16)
    labels, languages = np.asarray(data["labels"]), list(data["language"])
    keep = [i for i in range(16) if labels[i] != 3] + [3, 7]
    data = data.select(keep)
    data = data.remove_columns("language").add_column("language", [languages[i] for i in keep[:-1]] + ["fi"])
    train, quiz = carve_quiz_split(data, 0.25, seed=0, strata_columns=("labels", "language"), label_names=LABELS)
    assert set(np.asarray(quiz["labels"]).tolist()) == {0, 1, 2, 3} and len(train) + len(quiz) == len(data)
    assert 3 in np.asarray(train["labels"]).tolist()
    single = data.select(range(len(data) - 1))
    with pytest.raises(ValueError, match="'sad' has 1 training clip"):
        carve_quiz_split(single, 0.25, seed=0, strata_columns=("labels", "language"), label_names=LABELS)


def test_an_episode_is_an_epoch_of_the_training_split_by_default(phase_setup):
    # Issue 23, item 3: the paper's 100 S' epochs had become 100 x ceil(quiz / batch) steps. By default an episode is
    # ceil(train / batch) updates, so curriculum_episodes counts epochs; curriculum_steps_per_episode sets it.
    config, model_args, caches = phase_setup
    student = build_feature_student(model_args, caches.upstream_config, LABELS)
    buckets = make_buckets(caches.splits["train"], None, [], num_buckets=2)
    common = dict(episodes=2, batch_size=4, student_learning_rate=1e-2, policy_learning_rate=0.5, gamma=0.0,
                  score=lambda m: 0.0, seed=0)
    train, quiz = caches.splits["train"], caches.splits["quiz"]
    assert len(train) == 12 and len(quiz) == 4
    result = run_curriculum(
        student, FixedMetaTeacher(len(LABELS)), train, quiz, buckets, _objective(config), **common
    )
    assert [len(e["actions"]) for e in result.episodes] == [3, 3]  # ceil(12 / 4), not ceil(4 / 4)
    result = run_curriculum(student, FixedMetaTeacher(len(LABELS)), train, quiz, buckets, _objective(config),
                            steps_per_episode=5, **common)
    assert [len(e["actions"]) for e in result.episodes] == [5, 5]
