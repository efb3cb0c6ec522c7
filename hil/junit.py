"""A suite's reports as JUnit XML: one ``testcase`` per script, the failing step and its detail in the failure.

The layout is the one CI servers read (Jenkins, GitLab, GitHub test reporters): ``testsuites`` > ``testsuite`` >
``testcase`` with ``failure`` (a step failed), ``error`` (the script or its config could not run) and the step list
with timings in ``system-out``.
"""

from __future__ import annotations

import socket
import xml.etree.ElementTree as ET
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from hil.suite import SuiteResult


def _steps_text(report: dict[str, Any]) -> str:
    return "\n".join(f"{s['start']:9.3f} s {s['duration']:8.3f} s  {s['status']:<7} {s['step']}"
                     + (f"  -- {s['detail']}" if s["detail"] else "") for s in report["steps"])


def junit_xml(result: SuiteResult) -> str:
    """The JUnit XML document for ``result``."""
    counts = result.counts()
    attrs = {"name": result.name, "tests": str(counts["scripts"]), "failures": str(counts["failed"]),
             "errors": str(counts["errors"]), "skipped": "0", "time": f"{result.wall:.3f}"}
    root = ET.Element("testsuites", attrs)
    suite = ET.SubElement(root, "testsuite", {
        **attrs, "timestamp": datetime.fromtimestamp(result.started_at, UTC).isoformat(timespec="seconds"),
        "hostname": socket.gethostname()})
    properties = ET.SubElement(suite, "properties")
    version = result.reports[0].get("version") if result.reports else None
    for key, value in (("version", version), ("jobs", result.jobs), ("shared", result.shared)):
        ET.SubElement(properties, "property", {"name": key, "value": str(value)})
    for report in result.reports:
        path = Path(report["script"])
        case = ET.SubElement(suite, "testcase", {
            "classname": path.parent.name or "scripts", "name": path.stem, "file": str(path),
            "time": f"{report.get('duration', 0.0):.3f}"})
        if not report["ok"]:
            failing = next((s for s in report["steps"] if s["status"] == "failed"), None)
            if failing is not None:
                element = ET.SubElement(case, "failure", {
                    "message": f"{failing['step']}: {failing['detail']}", "type": "StepFailed"})
                element.text = _steps_text(report)
            else:
                element = ET.SubElement(case, "error", {
                    "message": report.get("error") or "the script did not run", "type": "ScriptError"})
                element.text = report.get("error") or ""
        charger = report.get("charger") or {}
        out = ET.SubElement(case, "system-out")
        out.text = (f"config: {report.get('config')}\ncharger: {charger.get('id')} OCPP {charger.get('ocpp')}\n"
                    + _steps_text(report))
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"
