"""The Markdown report: the table of every metric per contender, the target lines pyinit should
meet, and the notes on the machine, the columns and the configuration.
"""

from __future__ import annotations

import json
import platform
import statistics
import time

from contenders import FLOOR, FROZEN
from processes import WAIT


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))]


def fmt(value: float | None, digits: int = 1) -> str:
    return "—" if value is None else f"{value:.{digits}f}"


def median_of(runs: list[dict], key: str) -> float | None:
    """The median of runs' KEY values, leaving out those that timed out (None)."""
    values = [r[key] for r in runs if r[key] is not None]
    return statistics.median(values) if values else None


def table(results: dict, columns: list[str]) -> str:
    """The Markdown table: one row per metric, one column per contender."""
    rows: list[tuple[str, dict[str, str]]] = []
    startup, idle = results.get("startup"), results.get("idle")
    sig, storms, teardown = results.get("signals"), results.get("storms"), results.get("teardown")

    def row(label: str, cells: dict[str, str]) -> None:
        rows.append((label, cells))

    if startup:
        for mode, label in (("pid1", "as PID 1 (unshare)"), ("plain", "not PID 1")):
            data = startup[mode]
            floor = statistics.median(data[FLOOR])
            row(f"start-up {label}: median ms [p25-p75]",
                {n: f"{statistics.median(v):.1f} [{pct(v, 25):.1f}-{pct(v, 75):.1f}]"
                 for n, v in data.items()})
            row(f"start-up {label}: median / floor",
                {n: f"{statistics.median(v) / floor:.2f}x" for n, v in data.items()})
    if idle:
        floor_rss = idle[FLOOR]["rss_kb"]
        floor_pss = idle[FLOOR]["pss_kb"]
        row("idle RSS MiB", {n: f"{v['rss_kb'] / 1024:.1f}" for n, v in idle.items()})
        row("idle RSS / floor", {n: f"{v['rss_kb'] / floor_rss:.2f}x" for n, v in idle.items()})
        row("idle PSS MiB", {n: f"{v['pss_kb'] / 1024:.1f}" for n, v in idle.items()})
        row("idle PSS / floor", {n: f"{v['pss_kb'] / floor_pss:.2f}x" for n, v in idle.items()})
        window = results["config"]["idle"]
        row(f"idle wake-ups in {window:g} s (voluntary ctx switches)",
            {n: str(v["wakeups"]) for n, v in idle.items()})
    if sig:
        row("signal forwarding p50 µs", {n: f"{pct(v, 50):.0f}" for n, v in sig.items()})
        row("signal forwarding p99 µs", {n: f"{pct(v, 99):.0f}" for n, v in sig.items()})
        if "tini" in sig:
            tini99 = pct(sig["tini"], 99)
            row("signal p99 / tini p99", {n: f"{pct(v, 99) / tini99:.2f}x" for n, v in sig.items()})
    if storms:
        for size, data in storms.items():
            if size.endswith("stopped"):
                count = size.split()[0]
                row(f"reap {count} zombies at once (init stopped while they exit): ms, "
                    "init CPU ms",
                    {n: f"{fmt(median_of(v, 'ms'))}, {fmt(median_of(v, 'cpu_ms'))}"
                     for n, v in data.items()})
                continue
            row(f"storm {size} orphans exit at once: median ms to zero zombies",
                {n: fmt(median_of(v, 'ms')) for n, v in data.items()})
            row(f"storm {size} orphans: max zombie backlog seen",
                {n: str(max(r["backlog"] for r in v)) for n, v in data.items()})
            row(f"storm {size} orphans: init's CPU ms while reaping (median)",
                {n: fmt(median_of(v, 'cpu_ms')) for n, v in data.items()})
    if teardown:
        for size, data in teardown.items():
            row(f"teardown {size} escapees (not PID 1): median ms, left alive",
                {n: f"{statistics.median(r['ms'] for r in v):.1f}, "
                    f"{max(r['left'] for r in v)} left" for n, v in data.items()})
    for path, sizes in results.get("crowd", {}).items():
        for size, data in sizes.items():
            row(f"teardown 100 escapees among {size} unrelated processes, {path} path: "
                "median ms, left alive",
                {n: f"{statistics.median(r['ms'] for r in v):.1f}, "
                    f"{max(r['left'] for r in v)} left" for n, v in data.items()})

    header = "| metric | " + " | ".join(columns) + " |"
    lines = [header, "|---|" + "---|" * len(columns)]
    for label, cells in rows:
        lines.append(f"| {label} | " + " | ".join(cells.get(c, "—") for c in columns) + " |")
    return "\n".join(lines)


def targets(results: dict) -> list[str]:
    """One line per target pyinit should meet, with the measured number and whether it does."""
    out = []

    def line(ok: bool | None, text: str) -> None:
        mark = "n/a" if ok is None else ("MET" if ok else "MISSED")
        out.append(f"- **{mark}** {text}")

    startup, idle = results.get("startup"), results.get("idle")
    sig, storms, teardown = results.get("signals"), results.get("storms"), results.get("teardown")
    if startup:
        for mode, label in (("pid1", "as PID 1"), ("plain", "not PID 1")):
            data = startup[mode]
            floor = statistics.median(data[FLOOR])
            for name, limit in (("pyinit", 2.0), ("pyinit -m", 2.0), ("frozen", 3.0)):
                if name in data:
                    ratio = statistics.median(data[name]) / floor
                    line(ratio <= limit, f"start-up {label}, {name}: {ratio:.2f}x floor "
                         f"(target ≤ {limit:g}x)")
                elif name == "frozen":
                    line(None, f"start-up {label}, frozen: bundle not built")
    if idle:
        for name in ("pyinit", "frozen"):
            if name in idle:
                ratio = idle[name]["rss_kb"] / idle[FLOOR]["rss_kb"]
                line(ratio <= 1.3, f"idle RSS, {name}: {ratio:.2f}x bare interpreter "
                     f"(target ≤ 1.3x)")
                wakes = idle[name]["wakeups"]
                line(wakes == 0, f"idle wake-ups, {name}: {wakes} in "
                     f"{results['config']['idle']:g} s (target 0)")
    if sig and "tini" in sig:
        tini99 = pct(sig["tini"], 99)
        for name in ("pyinit", "frozen"):
            if name in sig:
                ratio = pct(sig[name], 99) / tini99
                line(ratio <= 2.0, f"signal p99, {name}: {pct(sig[name], 99):.0f} µs = "
                     f"{ratio:.2f}x tini's {tini99:.0f} µs (target ≤ 2x)")
    if storms:
        size = max((s for s in storms if s.isdigit()), key=int)
        data = storms[size]
        if "tini" in data:
            tini_ms, tini_cpu = median_of(data["tini"], "ms"), median_of(data["tini"], "cpu_ms")
            tini_backlog = max(r["backlog"] for r in data["tini"])
            for name in ("pyinit", "frozen"):
                if name not in data:
                    continue
                ms = median_of(data[name], "ms")
                if ms is None:
                    line(False, f"storm {size}, {name}: zombies left at the {WAIT:g} s timeout")
                elif tini_ms is not None:
                    ratio = ms / tini_ms
                    backlog = max(r["backlog"] for r in data[name])
                    line(ratio <= 1.05,
                         f"storm {size}, {name}: {ms:.0f} ms = {ratio:.2f}x tini's "
                         f"{tini_ms:.0f} ms (target ≤ 1x, 5% noise allowed); drained; "
                         f"backlog {backlog} (tini {tini_backlog}) of {size}; init CPU "
                         f"{median_of(data[name], 'cpu_ms'):.0f} ms (tini {tini_cpu:.0f} ms)")
    if teardown:
        size = max(teardown, key=int)
        for name in ("pyinit", "frozen"):
            if name in teardown[size]:
                runs = teardown[size][name]
                ms = statistics.median(r["ms"] for r in runs)
                left = max(r["left"] for r in runs)
                line(ms <= 150 and left == 0, f"teardown {size} escapees, {name}: {ms:.1f} ms, "
                     f"{left} left (target ≤ 150 ms, 0 left)")
    return out


def document(results: dict, columns: list[str], failed: list[str]) -> str:
    """The whole report: the machine, the table, the targets, then what the columns are and the
    configuration."""
    versions_text = ", ".join(f"{k} {v}" for k, v in results["versions"].items())
    missing = results["missing"]
    notes = [
        f"{time.strftime('%Y-%m-%d %H:%M %Z')}; kernel {results['kernel']}, "
        f"{results['cpus']} CPUs; Python {platform.python_version()} ({results['python']}); "
        f"{versions_text}.",
        "Columns: `pyinit` = the console script `.venv/bin/pyinit` (what users run); "
        "`pyinit -m` = `.venv/bin/python -m pyinit` (start-up only: the same process "
        f"afterwards); `frozen` = {FROZEN}; tini runs with `-s`. "
        + (f"Not available: {', '.join(missing)}. " if missing else "")
        + "floor = `python3 -I -S -c pass` (start-up), a bare `python3 -I -S` that only sleeps "
        "(idle), a kill straight to the child with no init between (signals).",
        f"Config: {json.dumps(results['config'])}."
        + (f" FAILED (rows missing): {', '.join(failed)}." if failed else ""),
    ]
    return "\n\n".join([*notes[:1], table(results, columns), "\n".join(targets(results)),
                        *notes[1:]]) + "\n"
