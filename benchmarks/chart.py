"""The PNG chart: start-up and idle-RSS ratios to the floor, one group of bars per init."""

from __future__ import annotations

import statistics
from pathlib import Path

from contenders import FLOOR


def chart(results: dict, columns: list[str], path: Path) -> str:
    """Start-up and idle-RSS ratios to the floor, one group of bars per init."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return "no chart: matplotlib is missing (scripts/setup installs the bench extra)"
    startup, idle = results.get("startup"), results.get("idle")
    panels = [p for p in (startup and "startup", idle and "idle") if p]
    if not panels:
        return "no chart: start-up and idle were skipped"
    fig, axes = plt.subplots(1, len(panels), figsize=(6.5 * len(panels), 4.6), squeeze=False)
    for ax, panel in zip(axes[0], panels):
        shown = startup["pid1"] if panel == "startup" else idle
        names = [c for c in columns if c != FLOOR and c in shown]
        if panel == "startup":
            series = {}
            for mode, label in (("pid1", "as PID 1"), ("plain", "not PID 1")):
                floor = statistics.median(startup[mode][FLOOR])
                series[label] = [statistics.median(startup[mode][n]) / floor
                                 if n in startup[mode] else 0 for n in names]
            limits = [(2.0, "source, single target 2x"), (3.0, "frozen target 3x")]
            title = "start-up of INIT -- /bin/true\n(median, ÷ python3 -I -S -c pass)"
        else:
            series = {
                "RSS": [idle[n]["rss_kb"] / idle[FLOOR]["rss_kb"] if n in idle else 0
                        for n in names],
                "PSS": [idle[n]["pss_kb"] / idle[FLOOR]["pss_kb"] if n in idle else 0
                        for n in names],
            }
            limits = [(1.3, "target 1.3x")]
            title = "idle footprint while the child sleeps\n(÷ a bare sleeping python3 -I -S)"
        width = 0.8 / len(series)
        for k, (label, values) in enumerate(series.items()):
            xs = [i + (k - (len(series) - 1) / 2) * width for i in range(len(names))]
            bars = ax.bar(xs, values, width, label=label)
            ax.bar_label(bars, labels=[f"{v:.2f}" if v else "n/a" for v in values],
                         fontsize=8, padding=2)
        for value, label in limits:
            ax.axhline(value, linestyle="--", linewidth=1, color="grey")
            ax.annotate(label, (len(names) - 0.5, value), ha="right", va="bottom",
                        fontsize=8, color="dimgrey")
        ax.axhline(1.0, linewidth=1, color="black")
        ax.set_xticks(range(len(names)), names)
        ax.set_ylabel("x floor")
        ax.set_title(title, fontsize=10)
        ax.legend(fontsize=8, loc="upper left")
        ax.margins(y=0.15)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return f"chart: {path}"
