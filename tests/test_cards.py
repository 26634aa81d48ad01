"""The student model card: every field set, every optional field empty, metadata valid, bad templates. No network."""

import dataclasses
import json
from pathlib import Path

import pytest
from huggingface_hub import ModelCard
from huggingface_hub.repocard_data import model_index_to_eval_results

from testing_utils import LABELS
from hf_mtkd.arguments import DataArguments, ModelArguments
from hf_mtkd.data import DataReport
from hf_mtkd.hub import TEMPLATE_PATH, ModelCardError, StudentCard
from hf_mtkd.hub.card import OPTIONAL_FIELDS, REQUIRED_FIELDS
from hf_mtkd.metrics import compute_ser_metrics
from hf_mtkd.distillation.teachers import TeacherSpec
from hf_mtkd.mtkd import MultiTeacherDistillationConfig
from hf_mtkd.mtkd.card import teachers_section
from hf_mtkd.registry import CardSection
from hf_mtkd.self_distillation.card import heads_section
from hf_mtkd.run_summary import RunSummary, run_provenance
from hf_mtkd.training.outputs import save_training_args_json

SECRET = "hf_cardsSecretToken0123456789"


def test_metrics(n_bootstrap=50):
    predictions = [0, 1, 2, 3, 0, 1, 2, 2, 3, 1, 0, 3]
    references = [0, 1, 2, 3, 1, 1, 2, 3, 3, 0, 0, 3]
    languages = ["en"] * 4 + ["fi"] * 4 + ["fr"] * 4
    return compute_ser_metrics(predictions, references, LABELS, languages=languages, n_bootstrap=n_bootstrap)


test_metrics.__test__ = False  # a helper, not a test


def full_card(**changes) -> StudentCard:
    card = StudentCard(
        model_name="ser-student",
        model_id="org/ser-student",
        method="mtkd",
        label_names=LABELS,
        framework_versions={"hf_mtkd": "0.1.0", "transformers": "5.0.0"},
        base_model="facebook/wav2vec2-base",
        hub_datasets=["org/emotional-speech"],
        data_description=["[org/emotional-speech](https://huggingface.co/datasets/org/emotional-speech)"],
        languages=["en", "fi", "fr"],
        test_metrics=test_metrics(),
        sizes={"train": 100, "validation": 20, "test": 12},
        hyperparameters={"learning_rate": "3e-05", "kd_lambda": "0.25"},
        figures=["test_confusion_matrix_en.png", "teacher_weights.png"],
        requires_hf_mtkd=True,
        # One section of each placement, made by the methods' own card pieces.
        sections=[
            CardSection("Which exit this is", "This model is the exit after transformer layer 3."),
            teachers_section(
                [TeacherSpec("org/teacher-en", "en"), TeacherSpec("/home/someone/teacher_fi", "fi")],
                {"en": {"en": 0.7, "fi": 0.3}, "fi": {"en": 0.25, "fi": 0.75}, "fr": {"en": 0.5, "fi": 0.5}},
            ),
            heads_section({"deepest": {"metrics": test_metrics(), "num_parameters": 94_000_000, "latency_s": 0.0412},
                           "layer_10": {"metrics": test_metrics(), "num_parameters": 80_000_000, "latency_s": 0.035},
                           "layer_3": {"metrics": test_metrics(), "num_parameters": 30_000_000, "latency_s": 0.0121},
                           "fusion": {"metrics": test_metrics()}}),
        ],
        license="apache-2.0",
        extra_tags=["multilingual"],
        data_warnings=["Class(es) ['sad'] have no clips in the validation split: their recall is not measured there",
                       "train: skipped 3 of 103 clips with unusable audio (on_bad_audio: skip): "
                       "/home/someone/corpus/en_spk2_angry_0.wav: cannot decode audio"],
        skipped_clips={"train": 3, "validation": 0, "test": 1},
        drawn_speakers={"validation": ["en_spk4", "fi_spk1"]},
        training_warnings=["Validation UR was at chance level (25.0% for 4 classes, within 2.0 points) at 3 "
                           "evaluations in a row (epochs 1 to 3, up to the end of training; 3 evaluations in all)"],
    )
    return dataclasses.replace(card, **changes)


def minimal_card() -> StudentCard:
    return StudentCard(model_name="ser-student", model_id="org/ser-student", method="finetune", label_names=LABELS,
                       framework_versions={"transformers": "5.0.0"})


def test_card_with_every_field_set():
    card = full_card().render()
    text = str(card)
    reparsed = ModelCard(text)  # the YAML header parses back into valid ModelCardData (model-index included)
    data = reparsed.data
    assert data.pipeline_tag == "audio-classification" and data.library_name == "transformers"
    assert data.language == ["en", "fi", "fr"] and data.base_model == "facebook/wav2vec2-base"
    assert data.datasets == ["org/emotional-speech"] and data.license == "apache-2.0"
    assert {"speech-emotion-recognition", "knowledge-distillation", "mtkd", "multilingual"} <= set(data.tags)
    model_name, results = model_index_to_eval_results(card.data.to_dict()["model-index"])
    assert model_name == "ser-student"
    values = {(r.dataset_config, r.metric_type): r.metric_value for r in results}
    metrics = test_metrics()
    assert values[("fi", "recall")] == round(100 * metrics["per_language"]["fi"]["UR"], 2)
    assert values[(None, "accuracy")] == round(100 * metrics["overall"]["WR"], 2)
    assert len(values) == 2 * 4  # UR and WR for en, fi, fr and overall

    body = reparsed.text
    assert 'pipeline("audio-classification", model="org/ser-student")' in body
    assert "import hf_mtkd" in body
    assert "Multi-Teacher Language-Aware Knowledge Distillation" in body
    assert "| en | en | [org/teacher-en](https://huggingface.co/org/teacher-en) |" in body
    assert "| fi | fi | local checkpoint `teacher_fi` |" in body
    assert "| fi | 0.250 | 0.750 |" in body  # mean teacher weights per language
    ur = metrics["per_language"]["fr"]["UR"]
    lo, hi = metrics["per_language"]["fr"]["UR_ci"]
    assert f"| fr | 4 | {100 * ur:.1f} [{100 * lo:.1f}, {100 * hi:.1f}] |" in body
    assert "95% bootstrap confidence interval" in body and "balanced accuracy" in body  # definitions
    assert "![test confusion matrix en](test_confusion_matrix_en.png)" in body
    assert "| kd_lambda | 0.25 |" in body and "- transformers 5.0.0" in body
    assert "the exit after transformer layer 3" in body
    # Each section where its placement says: usage after the Quick start, training after the training data,
    # results after the evaluation and its figures.
    order = [body.index(title) for title in ("## Quick start", "## Which exit this is", "## Labels",
                                              "## Training data", "## Teachers", "## Evaluation", "![test confusion",
                                              "## Every head", "## Training hyperparameters")]
    assert order == sorted(order)
    heads = [
        line.split(" | ")[0].lstrip("| ")
        for line in body.splitlines()
        if line.startswith(("| layer_", "| deep", "| fus"))
    ]
    assert heads == ["layer_3", "layer_10", "deepest", "fusion"]
    assert "| layer_3 | 30.00 | 12.1 |" in body and "| fusion | - | - |" in body
    # What the data checks reported: the clips skipped per split, the drawn speakers, the warnings.
    assert "- Clips: train 100 (3 clips skipped), validation 20, test 12 (1 clip skipped)" in body
    assert "- Validation speakers (drawn from the training data, `split_seed`): en_spk4, fi_spk1" in body
    warnings = body.split("## Data warnings", 1)[1].split("\n## ", 1)[0]
    assert "- Class(es) ['sad'] have no clips in the validation split" in warnings
    assert "clips with unusable audio (on_bad_audio: skip): en_spk2_angry_0.wav: cannot decode" in warnings
    assert "/home/someone" not in body  # files by name, not by the training machine's path
    trained = body.split("## Training warnings", 1)[1].split("\n## ", 1)[0]
    assert "- Validation UR was at chance level (25.0% for 4 classes" in trained
    assert body.index("## Training warnings") < body.index("## Evaluation")  # read before the results it qualifies
    assert "None" not in body


def test_card_with_every_optional_field_empty():
    card = minimal_card().render()
    data = ModelCard(str(card)).data
    assert data.pipeline_tag == "audio-classification" and data.library_name == "transformers"
    assert data.get("language") is None and data.get("base_model") is None and data.eval_results is None
    assert "model-index" not in card.data.to_dict()
    text = card.text
    assert "No evaluation results were recorded" in text and "Source: not recorded" in text
    for absent in (
        "## Teachers",
        "## Training hyperparameters",
        "import hf_mtkd",
        "![",
        "Mean weight",
        "starting from",
        "exit after",
        "Every head",
        "## Data warnings",
        "skipped",
        "speakers (drawn",
        "## Training warnings",
        "chance level",
    ):
        assert absent not in text
    assert 'model="org/ser-student"' in text and "| 3 | sad |" in text
    assert "None" not in text


@pytest.mark.parametrize("name", [f.name for f in dataclasses.fields(StudentCard)
                                  if f.name not in ("model_name", "model_id", "method", "label_names",
                                                    "framework_versions")])
def test_card_renders_with_any_one_optional_field_empty(name):
    value = getattr(full_card(), name)
    empty = type(value)() if isinstance(value, (list, dict, bool)) else None  # "", [], {}, False or None
    text = str(full_card(**{name: empty}).render())
    ModelCard(text)
    assert "None" not in text


def test_metrics_without_confidence_intervals_say_so():
    text = full_card(test_metrics=test_metrics(n_bootstrap=0)).render().text
    assert (
        "no confidence intervals were computed" in text
        and " [" not in text.split("## Evaluation")[1].split("Definitions")[0]
    )


def test_language_that_is_not_an_iso_code_stays_out_of_the_metadata():
    card = full_card(languages=["en", "english-us"]).render()
    assert card.data.language == ["en"] and "english-us" in card.text


@pytest.mark.parametrize("field", REQUIRED_FIELDS)
def test_empty_required_field_is_an_error_naming_it(field):
    empty = {} if field == "framework_versions" else [] if field == "label_names" else ""
    with pytest.raises(ModelCardError, match=f"`{field}`"):
        minimal_card().__class__(**{**dataclasses.asdict(minimal_card()), field: empty}).render()


def _template_variant(tmp_path, old, new) -> Path:
    text = TEMPLATE_PATH.read_text(encoding="utf-8")
    assert old in text
    path = tmp_path / "card.md"
    path.write_text(text.replace(old, new), encoding="utf-8")
    return path


def test_template_missing_a_required_field_is_an_error(tmp_path):
    path = _template_variant(tmp_path, "{{ model_id }}", "MODEL")
    with pytest.raises(ModelCardError, match=r"missing required field\(s\) \['model_id'\]"):
        full_card().render(path)


def test_template_without_metadata_is_an_error(tmp_path):
    path = _template_variant(tmp_path, "{{ card_data }}", "")
    with pytest.raises(ModelCardError, match="card_data"):
        full_card().render(path)


def test_template_using_a_field_nobody_fills_is_an_error(tmp_path):
    path = _template_variant(tmp_path, "## Labels", "## Labels\n\n{{ intended_uses }}")
    with pytest.raises(ModelCardError, match=r"uses field\(s\) \['intended_uses'\]"):
        full_card().render(path)


def test_template_may_use_metadata_keys_and_every_documented_field(tmp_path):
    used = " ".join("{{ %s }}" % name for name in (*OPTIONAL_FIELDS, "pipeline_tag", "license"))
    path = _template_variant(tmp_path, "## Labels", f"## Labels\n\n{used}")
    assert "apache-2.0" in full_card().render(path).text


def test_template_ships_inside_the_package():
    import hf_mtkd

    package_dir = Path(hf_mtkd.__file__).resolve().parent
    assert TEMPLATE_PATH.is_file() and package_dir in TEMPLATE_PATH.parents
    repo_copy = Path(__file__).resolve().parents[1] / "model_cards" / "student_card.md"
    if repo_copy.exists():  # the repository's model_cards/ is the same file, not a copy that could drift
        assert repo_copy.resolve() == TEMPLATE_PATH.resolve()


def test_setup_cfg_ships_the_template_as_package_data():
    import configparser
    import fnmatch

    import hf_mtkd

    setup_cfg = Path(__file__).resolve().parents[1] / "setup.cfg"
    if not setup_cfg.exists():
        pytest.skip("not a source checkout")
    config = configparser.ConfigParser()
    config.read(setup_cfg)
    patterns = [p.strip() for p in config["options.package_data"]["hf_mtkd"].split(",")]
    relative = TEMPLATE_PATH.relative_to(Path(hf_mtkd.__file__).resolve().parent).as_posix()
    assert any(fnmatch.fnmatch(relative, pattern) for pattern in patterns), (relative, patterns)


def test_card_from_an_output_dir(tmp_path):
    out = tmp_path / "run"
    out.mkdir()
    (out / "config.json").write_text(json.dumps({"model_type": "wav2vec2", "id2label": dict(enumerate(LABELS))}))
    metrics = test_metrics()
    (out / "test_metrics.json").write_text(json.dumps(metrics))
    summary = {"method": "mtkd", "label_names": LABELS, "languages": ["en", "fi", "fr"],
               "sizes": {"train": 10, "validation": 4, "test": 12},
               "teacher_weights_per_language": {"en": {"en": 0.6, "fi": 0.4}, "fi": {"en": 0.1, "fi": 0.9}},
               "results": {"test": metrics}}
    summary.update(run_provenance(ModelArguments(model_name_or_path="facebook/wav2vec2-base"),
                                  DataArguments(dataset_name="org/emotional-speech")))
    args = MultiTeacherDistillationConfig(
        output_dir=str(out), teachers=[{"model": "org/teacher-en", "language": "en"},
                                       {"model": str(tmp_path / "teacher_fi"), "language": "fi"}],
        kd_lambda=0.4, hub_token=SECRET, report_to="none",
    )
    # The method's sections travel in the summary (what MTKD's card_sections hook wrote there).
    section = teachers_section(args.teacher_specs(), summary["teacher_weights_per_language"])
    summary["card_sections"] = [section.to_dict()]
    (out / "run_summary.json").write_text(json.dumps(summary))
    save_training_args_json(args, out)  # what the trainer writes beside its pickle; the card reads only JSON
    (out / "test_confusion_matrix_en.png").write_bytes(b"\x89PNG")

    path = StudentCard.from_output_dir(out, repo_id="org/ser-student").save(out)
    text = path.read_text(encoding="utf-8")
    card = ModelCard(text)
    assert card.data.base_model == "facebook/wav2vec2-base" and card.data.datasets == ["org/emotional-speech"]
    assert card.data.language == ["en", "fi", "fr"]
    assert "| en | en | [org/teacher-en](https://huggingface.co/org/teacher-en) |" in text
    assert "| fi | fi | local checkpoint `teacher_fi` |" in text
    assert "| kd_lambda | 0.4 |" in text and "| temperature | 5 |" in text and "| teacher_weighting | cosine |" in text
    assert "| teachers |" not in text  # a list of teachers is the method's section, not a hyperparameter
    assert "![test confusion matrix en](test_confusion_matrix_en.png)" in text
    assert 'model="org/ser-student"' in text
    assert SECRET not in text and str(tmp_path) not in text  # no token, no local paths


def test_card_from_an_output_dir_reports_the_data_report_of_the_run_summary(tmp_path):
    out = tmp_path / "run"
    out.mkdir()
    (out / "config.json").write_text(json.dumps({"model_type": "wav2vec2", "id2label": dict(enumerate(LABELS))}))
    bad = tmp_path / "corpus" / "en_spk2_angry_0.wav"
    report = {
        "warnings": [
            f"test: skipped 2 of 14 clips with unusable audio (on_bad_audio: skip): {bad}: cannot decode audio"
        ],
        "skipped_clips": {"train": 0, "validation": 0, "test": 2},
        "skipped_files": {"test": [f"{bad}: cannot decode audio", f"{bad.with_name('b.wav')}: empty"]},
        "truncated_files": {},
        "drawn_speakers": {"validation": ["spk3"], "test": ["spk1", "spk7"]},
    }
    summary = {"method": "finetune", "label_names": LABELS, "sizes": {"train": 40, "validation": 8, "test": 12},
               "results": {"test": test_metrics()}, "data_report": report}
    (out / "run_summary.json").write_text(json.dumps(summary))
    loaded = RunSummary.load(out / "run_summary.json")
    assert loaded.data_report == DataReport(
        warnings=report["warnings"],
        skipped_clips={"train": [], "validation": [], "test": report["skipped_files"]["test"]},
        drawn_speakers=report["drawn_speakers"],
    )
    assert loaded.to_dict()["data_report"] == report  # the JSON form round-trips

    text = StudentCard.from_output_dir(out, repo_id="org/ser-student").save(out).read_text(encoding="utf-8")
    assert "- Clips: train 40, validation 8, test 12 (2 clips skipped)" in text
    assert "- Validation speakers (drawn from the training data, `split_seed`): spk3" in text
    assert "- Test speakers (drawn from the training data, `split_seed`): spk1, spk7" in text
    assert "## Data warnings" in text and "(on_bad_audio: skip): en_spk2_angry_0.wav: cannot decode audio" in text
    assert str(tmp_path) not in text

    # A summary written before runs recorded the data report still makes a card, without those lines.
    del summary["data_report"]
    (out / "run_summary.json").write_text(json.dumps(summary))
    text = StudentCard.from_output_dir(out, repo_id="org/ser-student").save(out).read_text(encoding="utf-8")
    assert "## Data warnings" not in text and "skipped" not in text and "drawn from" not in text


def test_data_report_with_counts_that_disagree_with_its_files_is_refused():
    with pytest.raises(ValueError, match="skipped_clips says 2 for 'test' but skipped_files lists 1"):
        DataReport.from_dict({"skipped_clips": {"test": 2}, "skipped_files": {"test": ["a.wav: empty"]}})


def test_card_from_a_folder_without_a_run_names_what_is_missing(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "wav2vec2"}))
    with pytest.raises(ModelCardError, match="no method, label_names"):
        StudentCard.from_output_dir(tmp_path)


def test_run_provenance_keeps_local_paths_out_of_the_metadata(tmp_path):
    provenance = run_provenance(ModelArguments(model_name_or_path=str(tmp_path)),
                                DataArguments(data_dir=str(tmp_path / "my_corpus")))
    assert provenance["base_model"] is None and provenance["datasets"] == []
    assert provenance["data_description"] == ["a local audiofolder (`my_corpus`)"]
    assert "transformers" in provenance["framework_versions"]
    assert str(tmp_path) not in json.dumps(provenance)  # the folder's name, never its full path


def test_the_teacher_weight_chart_title_fits_inside_the_figure(tmp_path):
    pytest.importorskip("matplotlib")
    import hf_mtkd.mtkd.plots as plots

    drawn = {}
    real_save = plots.save_figure

    def keep(figure, path):
        drawn["figure"] = figure
        return real_save(figure, path)

    plots.save_figure = keep
    try:
        plots.plot_teacher_weights({"de": {"t_de": 0.43, "t_en": 0.57}, "en": {"t_de": 0.4, "t_en": 0.6}},
                                   tmp_path / "w.png")
    finally:
        plots.save_figure = real_save
    figure = drawn["figure"]
    renderer = figure.canvas.get_renderer()
    title = figure.axes[0].title
    extent = title.get_window_extent(renderer)
    assert extent.x0 >= 0 and extent.x1 <= figure.bbox.x1, (extent, figure.bbox)
    assert title.get_text().replace("\n", " ") == "Mean teacher weight per language (training steps)"


def test_a_card_section_with_an_unknown_placement_is_refused():
    with pytest.raises(ValueError, match=r"'Teachers': placement 'footer' is not one of \['usage', 'training', "):
        CardSection("Teachers", "...", placement="footer")
