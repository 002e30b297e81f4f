"""The benchmark runs end to end in its tiny configuration and writes a well-formed table.

Timings are never asserted: only that every row of the Markdown table has one cell per column,
that every metric is there, and that the files under the results directory were written.
"""

from __future__ import annotations

import json
import subprocess
import sys

from helpers import ROOT

RUN = ROOT / "benchmarks" / "run.py"
METRICS = (
    "start-up as PID 1",
    "start-up not PID 1",
    "idle RSS MiB",
    "idle PSS MiB",
    "idle wake-ups",
    "signal forwarding p50",
    "signal forwarding p99",
    "storm 50 orphans exit at once: median ms to zero zombies",
    "storm 50 orphans: max zombie backlog seen",
    "teardown 3 escapees",
)


def _cells(line: str) -> list[str]:
    assert line.startswith("|") and line.endswith("|"), line
    return [cell.strip() for cell in line[1:-1].split("|")]


def test_tiny_benchmark_writes_a_table(tmp_path):
    run = subprocess.run([sys.executable, str(RUN), "--tiny", "--results", str(tmp_path)],
                         capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert run.returncode == 0, run.stderr

    table = [line for line in run.stdout.splitlines() if line.startswith("|")]
    header = _cells(table[0])
    assert header[0] == "metric"
    assert header[1] == "pyinit" and header[-1] == "floor"
    assert set(_cells(table[1])) == {"---"}
    assert len(table) > 2 + len(METRICS)
    for line in table[2:]:
        cells = _cells(line)
        assert len(cells) == len(header), line
        assert all(cells), line
    labels = [_cells(line)[0] for line in table[2:]]
    for metric in METRICS:
        assert any(label.startswith(metric) for label in labels), metric
    assert "pyinit" in run.stdout and ("MET" in run.stdout or "MISSED" in run.stdout)

    assert (tmp_path / "benchmark.md").read_text() == run.stdout
    raw = json.loads((tmp_path / "benchmark.json").read_text())
    assert {"startup", "idle", "signals", "storms", "teardown"} <= raw.keys()
    png = tmp_path / "benchmark.png"
    assert not png.exists() or png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
