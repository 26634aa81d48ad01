"""README result tables come from committed result files (hf_mtkd.metrics.results_doc, scripts/render_results.py)."""

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from hf_mtkd.metrics.results_doc import collect_results, render_readme, stale_blocks
from hf_mtkd.metrics.single_runs import collect_runs
from hf_mtkd.multi_stage import run_pipeline
from testing_utils import tiny_recipe, write_tone_corpus

ROOT = Path(__file__).resolve().parents[1]


def test_readme_result_tables_match_their_committed_result_files():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert stale_blocks(readme, ROOT) == [], "run: python scripts/render_results.py"
    done = subprocess.run([sys.executable, str(ROOT / "scripts" / "render_results.py"), "--check"],
                          capture_output=True, text=True, cwd=ROOT)
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.fixture(scope="module")
def seeded_pipeline(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("render")
    corpus = write_tone_corpus(tmp / "corpus", languages=("en",))
    common = tiny_recipe(corpus, "unused", max_steps=2, n_bootstrap=100)
    common.pop("output_dir")
    config = tmp / "p.yaml"
    config.write_text(yaml.safe_dump({"common": common, "seeds": [0, 1], "baseline": "a",
                                      "stages": {"a": {"method": "finetune", "learning_rate": 1e-6},
                                                 "b": {"method": "finetune"}}}))
    run_pipeline(str(config), str(tmp / "out"))
    return tmp


def test_a_rendered_block_follows_the_result_files_and_a_changed_number_is_caught(seeded_pipeline, tmp_path):
    root = tmp_path / "repo"
    collect_results(seeded_pipeline / "out", root / "results" / "demo")
    provenance = json.loads((root / "results" / "demo" / "provenance.json").read_text())
    assert provenance["seeds"] == [0, 1] and provenance["torch_num_threads"] == 1 and provenance["cpu_model"]
    readme = "intro\n<!-- results:demo -->\nold table\n<!-- /results:demo -->\nafter\n"
    assert stale_blocks(readme, root) == ["demo"]
    rendered = render_readme(readme, root)
    assert stale_blocks(rendered, root) == [] and rendered.endswith("<!-- /results:demo -->\nafter\n")
    assert "| b | 2 |" in rendered and "(baseline)" in rendered and f"`{provenance['commit']}`" in rendered
    # The committed CSV changes (a number typed over, a rerun): the README block is stale.
    csv_path = root / "results" / "demo" / "comparison_seeds.csv"
    lines = csv_path.read_text().splitlines()
    fields = lines[1].split(",")
    fields[4] = "0.999"  # UR of the first row
    csv_path.write_text("\n".join([lines[0], ",".join(fields), *lines[2:]]) + "\n")
    assert stale_blocks(rendered, root) == ["demo"]


def test_single_runs_render_from_their_result_file_and_a_changed_number_is_caught(seeded_pipeline, tmp_path):
    root = tmp_path / "repo"
    runs = {"floor": seeded_pipeline / "out" / "seed-0" / "a", "student": seeded_pipeline / "out" / "seed-1" / "b"}
    path = collect_runs(runs, root / "results" / "sizes")
    data = json.loads(path.read_text())
    assert data["provenance"]["seeds"] == {"floor": 0, "student": 1} and data["provenance"]["cpu_model"]
    trained_at = json.loads((runs["floor"] / "run_summary.json").read_text())["commit"]
    assert trained_at and data["provenance"]["trained_at"]["floor"] == trained_at  # the run's own commit
    readme = "<!-- results:sizes -->\n<!-- /results:sizes -->\n"
    rendered = render_readme(readme, root)
    test = json.loads((runs["student"] / "test_metrics.json").read_text())["overall"]
    row = next(line for line in rendered.splitlines() if line.startswith("| student |"))
    ur = f"{100 * test['UR']:.1f} [{100 * test['UR_ci'][0]:.1f}, {100 * test['UR_ci'][1]:.1f}]"
    assert ur in row and "no paired test" in rendered and "seed 0, 1" in rendered
    assert stale_blocks(rendered, root) == []
    data["rows"][1]["test"]["UR"] = 0.999  # a number typed over
    path.write_text(json.dumps(data))
    assert stale_blocks(rendered, root) == ["sizes"]
    with pytest.raises(FileNotFoundError, match="not a finished run"):
        collect_runs({"gone": tmp_path / "nowhere"}, root / "results" / "gone")
