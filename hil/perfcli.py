"""``evse-hil perf``'s command line: which benchmark runs, its JSON on standard output, its histograms in ``--svg``."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from controller.config import Config, ConfigError


def _kinds(given: str | None, known: tuple[str, ...], what: str) -> tuple[str, ...] | None:
    """``--kinds`` as a tuple (all of ``known`` when not given); None, with the problem printed, for an unknown one."""
    kinds = tuple(given.split(",")) if given else known
    unknown = [k for k in kinds if k not in known]
    if unknown:
        print(f"evse-hil: unknown {what}(s) {', '.join(unknown)}; expected {', '.join(known)}", file=sys.stderr)
        return None
    return kinds


def _drop_samples(figures: Any) -> None:
    """The histogram has every sample; the JSON stays a summary."""
    if isinstance(figures, dict):
        figures.pop("samples_ms", None)
        for value in figures.values():
            _drop_samples(value)


def perf_command(args: argparse.Namespace, load_config: Callable[[str | None], Config]) -> int:
    """``evse-hil perf``: run the benchmark the options name, print its JSON, draw ``--svg``; the exit code."""
    from hil import plot
    from hil.perf import run_perf

    if args.cpu and args.svg:
        print("evse-hil: --svg draws the latency benchmarks' histograms; --cpu measures none", file=sys.stderr)
        return 2
    if args.cpu:
        from hil.cpuperf import measure_cpu

        print(json.dumps(asyncio.run(measure_cpu(args.window)), indent=2))
        return 0
    if args.svg and not plot.available():
        print("evse-hil: --svg needs matplotlib: pip install 'evse-controller[report]'", file=sys.stderr)
        return 2
    results: dict[str, Any]
    if args.dc:
        from hil.dcperf import KINDS as DC_KINDS
        from hil.dcperf import measure_dc

        kinds = _kinds(args.kinds, DC_KINDS, "DC kind")
        if kinds is None:
            return 2
        results = asyncio.run(measure_dc(args.cycles, args.trials, kinds, keep=bool(args.svg)))
        if args.svg:
            Path(args.svg).write_text(plot.dc_histograms_svg(results, title="DC frame periods and fault reactions"),
                                      encoding="utf-8")
    elif args.faults:
        from hil.faultperf import KINDS, measure_faults

        fault_kinds = _kinds(args.kinds, KINDS, "fault kind")
        if fault_kinds is None:
            return 2
        results = asyncio.run(measure_faults(args.trials, fault_kinds, keep=bool(args.svg)))
        if args.svg:
            Path(args.svg).write_text(plot.histograms_svg(results, title="fault reaction times"), encoding="utf-8")
    if args.dc or args.faults:
        _drop_samples(results)
        print(json.dumps(results, indent=2))
        return 0

    try:
        config = load_config(args.config)
    except ConfigError as exc:
        print("\n".join(exc.problems), file=sys.stderr)
        return 2
    results = asyncio.run(run_perf(config, args.config, args.trials, args.tap_trials, not args.no_memory,
                                   keep=bool(args.svg)))
    if args.svg:
        Path(args.svg).write_text(plot.panels_svg([(name, stats) for name, stats in results.items()
                                                   if isinstance(stats, dict) and "samples_ms" in stats],
                                                  title="latencies"), encoding="utf-8")
    _drop_samples(results)
    print(json.dumps(results, indent=2))
    return 0
