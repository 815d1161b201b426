import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from connection_practice.bench import TARGETS

ROOT = Path(__file__).resolve().parents[2]
PAGES = (
    "floor",
    "caseload_5",
    "caseload_500",
    "couple",
    "comparison",
    "comparison_pdf",
    "comparison_pdf_layout",
    "save_answer",
    "submit",
)


def test_every_bench_target_is_in_the_documented_targets_table():
    """``bench --compare`` prints the targets of docs/performance.md: the two lists stay the same."""
    doc = (ROOT / "docs" / "performance.md").read_text()
    table = doc.split("## Targets", 1)[1].split("\n## ", 1)[0]
    for what, *_ in TARGETS:
        assert f"| {what} |" in table, what


@pytest.mark.worker
def test_bench_small_prints_one_json_object_of_the_documented_shape(tmp_path):
    """The benchmark runs end to end (its own database, a real worker) and reports every measure.

    Shape only: timings are never asserted (docs/performance.md holds the numbers)."""
    env = {**os.environ, "VAR_DIR": str(tmp_path), "CELERY_QUEUE": f"bench-test-{os.getpid()}"}
    result = subprocess.run(
        [sys.executable, "manage.py", "bench", "--scale", "small", "--quick", "--json"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=540,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout)
    assert report["scale"] == "small" and report["quick"] is True
    assert report["database"] in ("sqlite", "postgresql")
    for name in PAGES:
        page = report["results"][name]
        assert page["median_ms"] > 0 and page["p95_ms"] >= page["median_ms"]
        assert isinstance(page["queries"], int) and page["queries"] > 0
        assert page["ratio_to_floor"] > 0
    assert report["results"]["floor"]["ratio_to_floor"] == 1.0
    # At most 10 queries a page (tests/clients pin the exact counts for 1, 50 and 500 couples).
    assert all(report["results"][name]["queries"] <= 10 for name in PAGES if name != "submit")
    assert report["results"]["save_answer"]["queries"] <= 3
    assert report["results"]["submit"]["queries"] <= 13  # tests/assessments/test_submit.py pins them
    assert report["results"]["comparison_pdf"]["median_ms"] > 0
    sends = report["sends"]
    assert sends["messages"] == sends["jobs"] > 0 and sends["per_s"] > 0  # every message reached the SMTP sink
    concurrent = report["concurrent_caseload"]
    assert concurrent["clients"] == 50 and concurrent["errors"] == 0 and concurrent["pages"] == 100
    assert concurrent["p99_ms"] >= concurrent["median_ms"] > 0
    assert {row["what"] for row in report["targets"]} == {what for what, *_ in TARGETS}
    export = report["export_answers_csv"]
    assert export["rows"] > 10_000 and export["rows_per_s"] > 0 and export["deidentified_rows_per_s"] > 0
    assert 0 <= export["peak_mb"] < 50  # a stream: memory stays flat whatever the size
    sweep = report["reminder_sweep"]
    assert sweep["per_s"] > 0 and sweep["sent"] == sweep["reminders"] > 0
