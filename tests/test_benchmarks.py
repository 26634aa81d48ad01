"""The committed benchmark results render, and the README quotes their ratio table as run_all.py writes it."""

import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

import run_all  # noqa: E402


def test_results_render_and_readme_quotes_them():
    results = sorted((ROOT / "benchmarks" / "results").glob("*.json"))
    assert results, "run benchmarks/run_all.py and commit benchmarks/results/<machine>.{json,md}"
    readme = (ROOT / "README.md").read_text()
    quoted = 0
    for path in results:
        report = json.loads(path.read_text())
        text = run_all.markdown(report)
        assert text == path.with_suffix(".md").read_text(), f"re-render with run_all.py --render {path}"
        table = run_all.summary_table(report)
        assert table in text
        quoted += table in readme
    assert quoted, "README.md's Benchmarks section does not quote a results table"
