"""A run's timeline as a picture: per connector, the pilot state, PWM duty, contactor, current and power (on a DC
outlet the charge sequence's CAN phases, the contactor, voltage and current), with OCPP messages, faults and step
boundaries marked on the same time axis.

It draws an ``evse-hil run`` report (its ``timeline``, ``steps``, ``statuses`` and ``csms.messages``) with
matplotlib as SVG. matplotlib is the optional ``report`` extra: :func:`available` says whether it is installed.
"""

from __future__ import annotations

import importlib.util
import io
from collections import defaultdict
from typing import Any

#: Pilot states bottom to top (the plot's y-axis), as IEC 61851 orders them by voltage.
PILOT_LEVELS = ["F", "E", "D", "C", "B", "A"]
#: OCPP messages worth a label on the message row; the rest are ticks.
LABELLED = {"StartTransaction", "StopTransaction", "TransactionEvent", "Authorize", "RemoteStartTransaction",
            "RemoteStopTransaction", "RequestStartTransaction", "RequestStopTransaction", "BootNotification",
            "Reset", "ChangeAvailability", "SetChargingProfile"}


def available() -> bool:
    """Whether matplotlib (the ``report`` extra) is installed."""
    return importlib.util.find_spec("matplotlib") is not None


def _series(timeline: list[dict[str, Any]]) -> dict[tuple[str, int | None], list[tuple[float, Any]]]:
    series: dict[tuple[str, int | None], list[tuple[float, Any]]] = defaultdict(list)
    for o in timeline:
        series[(o["kind"], o["connector"])].append((o["t"], o["value"]))
    return series


def _steps(points: list[tuple[float, float]], end: float) -> tuple[list[float], list[float]]:
    """A step plot's x and y: each value holds until the next (and the last until ``end``)."""
    xs, ys = [], []
    for i, (t, v) in enumerate(points):
        xs += [t, points[i + 1][0] if i + 1 < len(points) else end]
        ys += [v, v]
    return xs, ys


def timeline_svg(report: dict[str, Any], *, title: str | None = None) -> str:
    """The report's timeline as an SVG document (raises ImportError without matplotlib)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    series = _series(report.get("timeline", []))
    steps = report.get("steps", [])
    messages = (report.get("csms") or {}).get("messages", [])
    times = [t for points in series.values() for t, _ in points] + [s["end"] for s in steps] + \
        [m["t"] for m in messages]
    end = max(times, default=1.0) + 0.2
    connectors = sorted({c for (_, c) in series if c is not None}) or [1]
    dc = {c for (kind, c) in series if kind == "dc"}
    rows: list[tuple[str, int]] = []
    for c in connectors:
        rows += [("phase", c), ("contactor", c), ("dc", c)] if c in dc else \
            [("pilot", c), ("pwm", c), ("contactor", c), ("meter", c)]
    rows.append(("ocpp", 0))
    fig, axes = plt.subplots(len(rows), 1, sharex=True, figsize=(11, 1.15 * len(rows) + 0.8),
                             gridspec_kw={"hspace": 0.12})
    for ax, (kind, c) in zip(axes, rows, strict=True):
        _draw_row(ax, kind, c, series, messages, end)
        for s in steps:  # step boundaries, and the failing step in red
            ax.axvline(s["start"], color="#c0392b" if s["status"] == "failed" else "#bbbbbb", lw=0.6,
                       ls="-" if s["status"] == "failed" else ":")
        for t, kind_of in [(t, "fault") for t, _ in series.get(("fault", c), [])] + \
                [(t, "clear") for t, _ in series.get(("clear", c), [])]:
            ax.axvline(t, color="#e74c3c" if kind_of == "fault" else "#27ae60", lw=1.2)
    labelled = -end
    for s in steps:  # a label per step, unless it would sit on the one before (steps of no duration)
        if s["start"] - labelled < end / 60 and s["status"] != "failed":
            continue
        labelled = s["start"]
        axes[0].annotate(s["step"], (s["start"], 1.02), xycoords=("data", "axes fraction"), fontsize=6,
                         rotation=35, ha="left", va="bottom", color="#c0392b" if s["status"] == "failed" else "#555")
    axes[-1].set_xlabel("seconds from the bench's start")
    axes[-1].set_xlim(0, end)
    if title:
        fig.suptitle(title, fontsize=9, y=0.995)
    out = io.StringIO()
    with plt.rc_context({"svg.fonttype": "none"}):  # text stays text: smaller, searchable, selectable
        fig.savefig(out, format="svg", bbox_inches="tight")
    plt.close(fig)
    return out.getvalue()


def _draw_row(ax: Any, kind: str, connector: int, series: dict[tuple[str, int | None], list[tuple[float, Any]]],
              messages: list[dict[str, Any]], end: float) -> None:
    ax.tick_params(labelsize=7)
    label = {"pilot": "pilot", "pwm": "PWM %", "contactor": "contactor", "meter": "A / kW", "dc": "V / A",
             "phase": "CAN phase", "ocpp": "OCPP"}[kind]
    ax.set_ylabel(f"{label}\n#{connector}" if connector else label, fontsize=7, rotation=0, ha="right", va="center")
    if kind == "pilot":
        points = [(t, float(PILOT_LEVELS.index(v))) for t, v in series.get(("pilot", connector), [])
                  if v in PILOT_LEVELS]
        ax.plot(*_steps(points, end), color="#2c3e50", lw=1.2)
        ax.set_yticks(range(len(PILOT_LEVELS)), PILOT_LEVELS)
        ax.set_ylim(-0.5, len(PILOT_LEVELS) - 0.5)
    elif kind == "phase":  # the sequence's phases in the order they came, one band each
        points = series.get(("phase", connector), [])
        names = list(dict.fromkeys(str(v) for _, v in points))
        ax.plot(*_steps([(t, float(names.index(str(v)))) for t, v in points], end), color="#34495e", lw=1.2)
        ax.set_yticks(range(len(names)), names)
        ax.tick_params(axis="y", labelsize=5)
        ax.set_ylim(-0.5, max(len(names), 1) - 0.5)
    elif kind == "pwm":
        ax.plot(*_steps([(t, float(v)) for t, v in series.get(("pwm", connector), [])], end), color="#8e44ad", lw=1)
        ax.set_ylim(-5, 105)
    elif kind == "contactor":
        points = [(t, 1.0 if v == "closed" else 0.0) for t, v in series.get(("contactor", connector), [])]
        xs, ys = _steps(points, end)
        ax.fill_between(xs, ys, step=None, color="#e67e22", alpha=0.5, lw=0)
        ax.set_yticks([0, 1], ["open", "closed"])
        ax.set_ylim(-0.1, 1.2)
    elif kind == "meter":
        readings = series.get(("meter", connector), [])
        ax.plot(*_steps([(t, v.get("A") or 0.0) for t, v in readings], end), color="#2980b9", lw=1, label="A")
        ax.plot(*_steps([(t, (v.get("W") or 0.0) / 1000) for t, v in readings], end), color="#16a085", lw=1,
                label="kW")
        ax.legend(fontsize=6, loc="upper right", frameon=False)
    elif kind == "dc":
        readings = series.get(("dc", connector), [])
        ax.plot([t for t, _ in readings], [v.get("V", 0.0) for _, v in readings], color="#c0392b", lw=1, label="V")
        ax.plot([t for t, _ in readings], [v.get("A", 0.0) for _, v in readings], color="#2980b9", lw=1, label="A")
        ax.legend(fontsize=6, loc="upper right", frameon=False)
    else:  # the OCPP messages: from the station above the line, from the CSMS below
        for m in messages:
            y = 0.5 if m["dir"] == "in" else -0.5
            ax.plot([m["t"], m["t"]], [0, y], color="#7f8c8d" if m["dir"] == "in" else "#d35400", lw=0.8)
            if m["action"] in LABELLED:
                ax.annotate(m["action"], (m["t"], y), fontsize=5, rotation=60, ha="left",
                            va="bottom" if y > 0 else "top")
        ax.axhline(0, color="#999", lw=0.5)
        ax.set_yticks([-0.5, 0.5], ["CSMS", "station"])
        ax.set_ylim(-1.6, 1.6)


def histograms_svg(figures: dict[str, Any], *, title: str = "", measure: str = "reaction") -> str:
    """One histogram per figure (``evse-hil perf --faults`` results kept with their samples), in milliseconds,
    with p50, p99 and the maximum marked."""
    return panels_svg([(kind, v[measure]) for kind, v in figures.items()
                       if isinstance(v, dict) and "samples_ms" in v.get(measure, {})], title=title)


def dc_histograms_svg(results: dict[str, Any], *, title: str = "") -> str:
    """``evse-hil perf --dc`` kept with its samples: each frame's period, then each fault's whole reaction (the
    fault to the contactors open) per protocol."""
    panels = [(f"{name} period", stats) for name, stats in results.get("periods", {}).items()]
    panels += [(f"{kind}: to open", figures["total"]) for kind, figures in results.get("reactions", {}).items()
               if "total" in figures]
    return panels_svg([(name, stats) for name, stats in panels if "samples_ms" in stats], title=title)


def panels_svg(panels: list[tuple[str, dict[str, Any]]], *, title: str = "") -> str:
    """A histogram per ``(name, stats)`` (stats as :func:`hil.perf.summarise` keeps them), in milliseconds."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if not panels:
        raise ValueError("no figure has its samples (run the benchmark with its samples kept)")
    columns = min(3, len(panels))
    rows = -(-len(panels) // columns)
    fig, axes = plt.subplots(rows, columns, figsize=(3.6 * columns, 2.4 * rows), squeeze=False)
    for ax, (kind, stats) in zip(axes.flat, panels, strict=False):
        ax.hist(stats["samples_ms"], bins=30, color="#2980b9", alpha=0.85)
        for key, colour in (("p50_ms", "#27ae60"), ("p99_ms", "#e67e22"), ("max_ms", "#c0392b")):
            ax.axvline(stats[key], color=colour, lw=1, label=f"{key[:-3]} {stats[key]:g} ms")
        ax.set_title(f"{kind} (n={stats['n']})", fontsize=8)
        ax.set_xlabel("ms", fontsize=7)
        ax.tick_params(labelsize=6)
        ax.legend(fontsize=5, frameon=False)
    for ax in list(axes.flat)[len(panels):]:
        ax.axis("off")
    if title:
        fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    out = io.StringIO()
    with plt.rc_context({"svg.fonttype": "none"}):
        fig.savefig(out, format="svg")
    plt.close(fig)
    return out.getvalue()
