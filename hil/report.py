"""A suite (or one run) as one self-contained HTML page: the summary, then each script with its steps, their
timings and details, and its timeline drawn inline (SVG, with the ``report`` extra; without it the page says so).
Nothing is loaded from elsewhere: the page can be kept as a CI artefact and opened anywhere.
"""

from __future__ import annotations

import html
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from hil import plot
from hil.suite import SuiteResult

_STYLE = """
body { font: 14px/1.4 system-ui, sans-serif; margin: 2em auto; max-width: 1100px; color: #222; }
h1 { font-size: 1.4em; } h2 { font-size: 1.1em; margin-top: 2em; border-top: 1px solid #ddd; padding-top: 1em; }
table { border-collapse: collapse; width: 100%; margin: .5em 0; }
th, td { text-align: left; padding: 2px 8px; border-bottom: 1px solid #eee; vertical-align: top; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
.passed { color: #1e7e34; } .failed { color: #c0392b; font-weight: bold; } .skipped { color: #999; }
.error { color: #c0392b; font-weight: bold; }
.badge { display: inline-block; padding: 0 .6em; border-radius: 3px; color: #fff; }
.badge.ok { background: #1e7e34; } .badge.bad { background: #c0392b; }
.meta { color: #666; font-size: .9em; } figure { margin: .5em 0; } figure svg { width: 100%; height: auto; }
"""


def _result(report: dict[str, Any]) -> tuple[str, str]:
    if report["ok"]:
        return "passed", "PASS"
    return ("failed", "FAIL") if report["steps"] else ("error", "ERROR")


def _summary_rows(result: SuiteResult) -> str:
    rows = []
    for i, r in enumerate(result.reports):
        css, label = _result(r)
        failing = next((s for s in r["steps"] if s["status"] == "failed"), None)
        detail = r.get("error") or (f"{failing['step']}: {failing['detail']}" if failing else "")
        counts = r["counts"]
        rows.append(f'<tr><td><a href="#s{i}">{html.escape(Path(r["script"]).name)}</a></td>'
                    f'<td class="{css}">{label}</td><td class="num">{counts["passed"]}/{sum(counts.values())}</td>'
                    f'<td class="num">{r.get("duration", 0.0):.2f} s</td><td>{html.escape(detail)}</td></tr>')
    return "\n".join(rows)


def _script_section(index: int, report: dict[str, Any], plots: bool) -> str:
    css, label = _result(report)
    charger = report.get("charger") or {}
    parts = [f'<h2 id="s{index}">{html.escape(Path(report["script"]).name)} <span class="{css}">{label}</span></h2>',
             f'<p class="meta">{html.escape(report["script"])} &middot; config {html.escape(str(report.get("config")))}'
             f' &middot; charger {html.escape(str(charger.get("id")))} OCPP {html.escape(str(charger.get("ocpp")))}'
             f'{" &middot; energy " + str(report["energy_wh"]) + " Wh" if "energy_wh" in report else ""}</p>']
    if report.get("error"):
        parts.append(f'<p class="error">{html.escape(report["error"])}</p>')
    if report["steps"]:
        rows = "".join(f'<tr><td class="num">{s["start"]:.3f}</td><td class="num">{s["duration"]:.3f}</td>'
                       f'<td class="{s["status"]}">{s["status"]}</td><td><code>{html.escape(s["step"])}</code></td>'
                       f'<td>{html.escape(s["detail"])}</td></tr>' for s in report["steps"])
        parts.append("<table><tr><th>start (s)</th><th>took (s)</th><th>result</th><th>step</th><th>detail</th>"
                     f"</tr>{rows}</table>")
    if report.get("timeline"):
        if plots:
            svg = plot.timeline_svg(report)
            parts.append(f"<figure>{svg[svg.index('<svg'):]}</figure>")
        else:
            parts.append('<p class="meta">Timeline plots need the report extra: pip install '
                         "'evse-controller[report]'.</p>")
    return "\n".join(parts)


def html_report(result: SuiteResult) -> str:
    """The page for ``result``."""
    counts = result.counts()
    plots = plot.available()
    when = datetime.fromtimestamp(result.started_at, UTC).strftime("%Y-%m-%d %H:%M UTC")
    version = result.reports[0].get("version", "") if result.reports else ""
    badge = '<span class="badge ok">all passed</span>' if result.ok else '<span class="badge bad">failures</span>'
    sections = "\n".join(_script_section(i, r, plots) for i, r in enumerate(result.reports))
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>evse-hil: {html.escape(result.name)}</title>
<style>{_STYLE}</style></head><body>
<h1>evse-hil suite {html.escape(result.name)} {badge}</h1>
<p class="meta">evse-controller {html.escape(str(version))} &middot; {when} &middot; {counts['scripts']} scripts:
{counts['passed']} passed, {counts['failed']} failed, {counts['errors']} in error &middot; {result.wall:.1f} s wall
with {result.jobs} job(s){' on one shared charger' if result.shared else ''}</p>
<table><tr><th>script</th><th>result</th><th>steps passed</th><th>time</th><th>detail</th></tr>
{_summary_rows(result)}
</table>
{sections}
</body></html>
"""
