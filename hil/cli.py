"""``evse-hil``: run a script against a simulated charger, drive a running one, or measure it."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import sys
import tempfile
from pathlib import Path

from controller.cli import OCPP_VERSIONS, log_levels
from controller.config import Config, ConfigError, default_config, load_config
from controller.logsetup import setup_logging
from hil.script import ScriptError, check_script, parse_script

#: How long a whole script may take unless --timeout says otherwise.
DEFAULT_TIMEOUT = 600.0
EXIT_CODES = """exit codes:
  0  every step passed
  1  a step failed, the time limit ran out, or the CSMS was never reached
  2  the script or the config cannot be used (the JSON report says why; nothing ran)"""


def _config(path: str | None, station_id: str | None, ocpp_version: str | None = None) -> Config:
    config = load_config(path) if path else default_config()
    if ocpp_version:
        config.ocpp.version = ocpp_version
    if config.station.hardware != "sim":
        raise ConfigError([f"{config.source}: station.hardware = {config.station.hardware!r}: "
                           "expected sim (the bench drives simulated buses)"])
    if station_id:
        config.station.id = station_id
    return config


def _script_text(args: argparse.Namespace) -> tuple[str, str]:
    """(the script's name in the report, its text): ``--script``, a file, or ``-`` for standard input."""
    if (args.file is None) == (args.script is None):
        raise ScriptError("give a script: a FILE (- for standard input) or --script TEXT, not both")
    if args.script is not None:
        return "<command line>", args.script
    if args.file == "-":
        return "<stdin>", sys.stdin.read()
    try:
        return args.file, Path(args.file).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ScriptError(f"{args.file}: cannot read the script: {getattr(exc, 'strerror', None) or exc}") from exc


def _in_script(name: str, exc: ScriptError) -> str:
    """A script error as the report gives it: a file's errors name the file."""
    error = str(exc)
    return error if name.startswith("<") or error.startswith(name) else f"{name}: {error}"


def _unusable(config: Config | None, name: str, error: str) -> int:
    """A script, config or bench file that cannot run: the report's JSON on stdout, one line on stderr, exit 2."""
    from hil.runner import error_report

    print(json.dumps(error_report(config, name, error), indent=2))
    print(f"evse-hil: {error}", file=sys.stderr)
    return 2


def _run_remote(args: argparse.Namespace) -> int:
    from dataclasses import replace

    from hil.benchfile import BenchFileError, load_bench
    from hil.remote import check_remote_script, run_remote

    name = "<command line>"
    try:
        name, text = _script_text(args)
        bench = load_bench(args.bench)
        if args.csms:  # where the bench CSMS listens instead of the file's csms.listen
            host, _, port = args.csms.split("://", 1)[-1].rstrip("/").rpartition(":")
            if not host or not port.isdigit():
                raise ScriptError(f"--csms {args.csms!r}: with --bench, expected ws://HOST:PORT (where the bench "
                                  "CSMS listens for the charger)")
            bench = replace(bench, csms_host=host, csms_port=int(port))
        steps = parse_script(text)
        check_remote_script(steps, bench)
    except ScriptError as exc:
        return _unusable(None, name, _in_script(name, exc))
    except BenchFileError as exc:
        return _unusable(None, name, str(exc))
    try:
        report = asyncio.run(run_remote(bench, steps, script=name, connect_wait=args.csms_wait,
                                        timeout=args.timeout))
    except OSError as exc:  # a serial port that is not there, an address in use
        return _unusable(None, name, f"{bench.source}: cannot serve the bench: {exc}")
    print(json.dumps(report, indent=2))
    return 0 if report["ok"] else 1


def _run(args: argparse.Namespace) -> int:
    from hil.runner import run_script

    if args.bench:
        return _run_remote(args)

    name, config = "<command line>", None
    try:
        name, text = _script_text(args)
        config = _config(args.config, args.id, args.ocpp_version)
        steps = parse_script(text)
        check_script(steps, config)
        if args.reject and args.csms:
            raise ScriptError("--reject steers the built-in CSMS; with --csms the CSMS is another's")
    except ScriptError as exc:
        return _unusable(config, name, _in_script(name, exc))
    except ConfigError as exc:
        return _unusable(config, name, "\n".join(exc.problems))
    with contextlib.ExitStack() as stack:
        state = Path(args.state_dir) if args.state_dir else Path(
            stack.enter_context(tempfile.TemporaryDirectory(prefix="evse-hil-")))
        summary = asyncio.run(run_script(config, steps, state_dir=state, csms_url=args.csms,
                                         connect_wait=args.csms_wait, timeout=args.timeout, script=name,
                                         rejected={tag.upper() for tag in args.reject}))
    print(json.dumps(summary, indent=2))
    return 0 if summary["ok"] else 1


def _suite(args: argparse.Namespace) -> int:
    from hil.junit import junit_xml
    from hil.report import html_report
    from hil.suite import SuiteError, run_shared, run_suite, summary_table

    paths = [Path(p) for p in args.paths]
    extra = [*(["--config", args.config] if args.config else []), "--timeout", str(args.timeout)]
    try:
        result = asyncio.run(run_shared(paths, config=args.config) if args.shared
                             else run_suite(paths, jobs=args.jobs, extra=extra))
    except SuiteError as exc:
        print(f"evse-hil: {exc}", file=sys.stderr)
        return 2
    print(summary_table(result))
    for path, text in ((args.junit, lambda: junit_xml(result)), (args.html, lambda: html_report(result)),
                       (args.json, lambda: json.dumps(result.as_json(), indent=2))):
        if path:
            Path(path).write_text(text(), encoding="utf-8")
    return 0 if result.ok else 1


def _plot(args: argparse.Namespace) -> int:
    from hil import plot

    if not plot.available():
        print("evse-hil: plots need matplotlib: pip install 'evse-controller[report]'", file=sys.stderr)
        return 2
    try:
        report = json.loads(Path(args.report).read_text(encoding="utf-8") if args.report != "-" else sys.stdin.read())
    except (OSError, ValueError) as exc:
        print(f"evse-hil: {args.report}: not an evse-hil run report ({exc})", file=sys.stderr)
        return 2
    if not isinstance(report, dict) or "timeline" not in report:
        print(f"evse-hil: {args.report}: not an evse-hil run report (no timeline)", file=sys.stderr)
        return 2
    Path(args.output).write_text(plot.timeline_svg(report, title=str(report.get("script", ""))), encoding="utf-8")
    return 0


def _ctl(args: argparse.Namespace) -> int:
    from hil.control import send_script

    try:
        parse_script(args.script)  # fail fast, before touching the charger
        result = asyncio.run(send_script(Path(args.state_dir), args.script))
    except ScriptError as exc:
        print(f"evse-hil: {exc}", file=sys.stderr)
        return 2
    except ConnectionError as exc:
        print(f"evse-hil: {exc}", file=sys.stderr)
        return 2
    print(json.dumps(result, indent=2))
    return 0 if result.get("ok") else 1


def _perf(args: argparse.Namespace) -> int:
    from hil.perfcli import perf_command

    return perf_command(args, lambda path: _config(path, None))


def _count(text: str) -> int:
    """A command-line count: a whole number, 1 or more (argparse turns the error into one line)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected 1 or more, got {value}")
    return value


def _reliability(args: argparse.Namespace) -> int:
    from hil.reliability import kill_cycles, outage_drain

    with tempfile.TemporaryDirectory(prefix="evse-reliability-") as work:
        results = {
            "sigkill": asyncio.run(kill_cycles(args.kills, args.seed, Path(work), args.ocpp_version)),
            "outage": asyncio.run(outage_drain(args.messages, Path(work), args.ocpp_version)),
        }
    print(json.dumps(results, indent=2))
    ok = results["sigkill"]["lost"] == 0 and results["sigkill"]["duplicated"] == 0 and results["outage"]["in_order"]
    return 0 if ok else 1


def _car(args: argparse.Namespace) -> int:
    from hil.benchcar import BenchCarError
    from hil.benchfile import BenchFileError, load_bench
    from hil.carproc import run_bench_car, run_car

    try:
        if args.bench:
            bench = load_bench(args.bench)
            cars = [c for c in bench.cars if c.kind == args.kind and args.connector in (None, c.connector)]
            if not cars:
                which = f" for connector {args.connector}" if args.connector else ""
                raise BenchFileError([f"{args.bench}: no {args.kind} [[car]]{which}"])
            return run_bench_car(cars[0])
        if not args.link or not args.channel:
            raise BenchFileError(["expected --link and --channel (a simulated charger's car), or --bench FILE"])
        return run_car(args.kind, Path(args.link), interface=args.interface, channel=args.channel, soc=args.soc,
                       target_soc=args.target_soc, quick=args.quick)
    except (ConnectionError, BenchFileError, BenchCarError) as exc:
        print(f"evse-hil: {exc}", file=sys.stderr)
        return 2


def build_parser() -> argparse.ArgumentParser:
    """The ``evse-hil`` argument parser."""
    parser = argparse.ArgumentParser(prog="evse-hil", description="Hardware-in-the-loop bench for the controller")
    parser.add_argument("--log-level", default="error", type=log_levels, metavar="LEVELS",
                      help="a level, and/or COMPONENT=LEVEL pairs, comma-separated")
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="run a script against the controller on simulated hardware",
                         description="Start a simulated charger, run a script's steps against it and print a JSON "
                                     "report: every step with its start, end, duration and detail, the steps after "
                                     "a failure as skipped.", epilog=EXIT_CODES,
                         formatter_class=argparse.RawDescriptionHelpFormatter)
    run.add_argument("file", nargs="?", help="a script file (.hil: one step per line or ';', # comments); - reads "
                                             "standard input")
    run.add_argument("--script", help='the steps on the command line instead, e.g. "plug; tap 04A1B2C3"')
    run.add_argument("--timeout", type=float, default=DEFAULT_TIMEOUT,
                     help=f"seconds the whole script may take (default {DEFAULT_TIMEOUT:g}); the step running when "
                          "it runs out fails")
    run.add_argument("--csms", help="external CSMS base URL (default: the built-in one); with --bench, where the "
                                    "bench CSMS listens (ws://HOST:PORT)")
    run.add_argument("--bench", metavar="BENCH.toml",
                     help="no charger here: run against one elsewhere, through the CSMS, reader and meters this "
                          "bench file serves (hil/benchfile.py)")
    run.add_argument("--reject", action="append", default=[], metavar="TAG",
                     help="the built-in CSMS answers Invalid for TAG (repeat for more; `csms reject TAG` in a script)")
    run.add_argument("--csms-wait", type=float, default=15.0,
                     help="seconds to wait for the CSMS before the script starts; a run that never reaches it fails")
    run.add_argument("--id", help="charge point id")
    run.add_argument("--ocpp-version", choices=OCPP_VERSIONS, help="OCPP version (default: from config, 1.6)")
    run.add_argument("--config", help="a sim config (default: built-in)")
    run.add_argument("--state-dir", help="state directory (default: a temporary one)")
    run.set_defaults(func=_run)
    suite = sub.add_parser("suite", help="run every .hil script of a folder, each on a fresh simulated charger",
                           description="Run every .hil script under PATH (each on its own simulated charger and "
                                       "built-in CSMS, in parallel), print a summary table, and write JUnit XML, "
                                       "an HTML report and the JSON reports where asked. A script's first comment "
                                       "lines may set '# config: FILE', '# ocpp: 2.0.1', '# reject: TAG' and "
                                       "'# timeout: SECONDS'.",
                           epilog="exit codes:\n  0  every script passed\n  1  a script failed or could not run\n"
                                  "  2  no scripts, or a header the suite does not understand",
                           formatter_class=argparse.RawDescriptionHelpFormatter)
    suite.add_argument("paths", nargs="+", metavar="PATH", help="folders (searched for *.hil) and script files")
    suite.add_argument("--jobs", type=_count, help="scripts at a time (default: the machine's cores)")
    suite.add_argument("--shared", action="store_true",
                       help="one charger for all, the scripts one after the other (each finds it as the last left it)")
    suite.add_argument("--config", help="a sim config for every script without its own '# config:'")
    suite.add_argument("--timeout", type=float, default=DEFAULT_TIMEOUT, help="seconds each script may take")
    suite.add_argument("--junit", metavar="FILE", help="write JUnit XML (one testcase per script)")
    suite.add_argument("--html", metavar="FILE", help="write a self-contained HTML report")
    suite.add_argument("--json", metavar="FILE", help="write every script's JSON report")
    suite.set_defaults(func=_suite)
    plotter = sub.add_parser("plot", help="draw a run report's timeline as SVG (the report extra)")
    plotter.add_argument("report", help="an `evse-hil run` JSON report (- for standard input)")
    plotter.add_argument("-o", "--output", required=True, help="the SVG file to write")
    plotter.set_defaults(func=_plot)
    ctl = sub.add_parser("ctl", help="run steps against a running `evse run` with simulated hardware")
    ctl.add_argument("--state-dir", required=True, help="the running charger's state directory")
    ctl.add_argument("script")
    ctl.set_defaults(func=_ctl)
    perf = sub.add_parser("perf", help="measure reaction times and memory from the bench's timeline")
    perf.add_argument("--config", help="a sim config (default: built-in)")
    perf.add_argument("--trials", type=_count, default=200, help="EV C->B trials (default 200)")
    perf.add_argument("--tap-trials", type=_count, default=25, help="card tap trials (default 25)")
    perf.add_argument("--no-memory", action="store_true", help="skip the daemon memory figure")
    perf.add_argument("--faults", action="store_true",
                      help="instead: reaction time per fault kind on the busy two-socket build (--trials each)")
    perf.add_argument("--kinds", help="with --faults: a comma-separated subset of "
                      "short,adc,diode,rcm,lock,weld,overcurrent,meter,temp; with --dc: of "
                      "evsilent,insulation,estop,overvoltage")
    perf.add_argument("--svg", metavar="FILE", help="also draw the latencies' histograms there "
                                                    "(the report extra)")
    perf.add_argument("--dc", action="store_true",
                      help="instead: CHAdeMO and GB/T frame periods and DC reactions on the two-outlet DC station "
                           "(--trials each, default 200: give fewer)")
    perf.add_argument("--cycles", type=_count, default=3000, help="with --dc: CHAdeMO cycles (100 ms) for the periods")
    perf.add_argument("--cpu", action="store_true",
                      help="instead: the daemon's CPU (idle, charging) and RSS with 1, 2 and 4 connectors")
    perf.add_argument("--window", type=float, default=10.0, help="with --cpu: seconds each figure is taken over")
    perf.set_defaults(func=_perf)
    car = sub.add_parser("car", help="a simulated DC car in this process, plugged into a running simulated charger "
                         "(--link) or, on the bench's CAN interface and GPIO, into a real one (--bench)")
    car.add_argument("kind", choices=["chademo", "gbt"])
    car.add_argument("--bench", help="bench.toml: its [[car]] of this kind, on the bench's own bus and lines")
    car.add_argument("--connector", type=int, help="with --bench: the [[car]] for this connector")
    car.add_argument("--link", help="the simulated charger's car link socket (STATE_DIR/car-N.sock)")
    car.add_argument("--interface", default="remote", help="python-can interface of the car bus (default remote)")
    car.add_argument("--channel", help="python-can channel, e.g. ws://127.0.0.1:54701/")
    car.add_argument("--soc", type=float, default=50.0,
                     help="state of charge at the start (default 50); with --bench, the file's soc and target_soc")
    car.add_argument("--target-soc", type=float, default=80.0, help="where the car stops charging (default 80)")
    car.add_argument("--quick", action="store_true", help="bench timings: permission in 0.5 s, contactors 0.3 s")
    car.set_defaults(func=_car)
    rel = sub.add_parser("reliability", help="SIGKILL the daemon at random moments; count lost/duplicated transactions")
    rel.add_argument("--kills", type=_count, default=50, help="kill/restart cycles (default 50)")
    rel.add_argument("--seed", type=int, default=1, help="random seed for the kill moments")
    rel.add_argument("--messages", type=_count, default=1000, help="messages to queue during the outage (default 1000)")
    rel.add_argument("--ocpp-version", choices=OCPP_VERSIONS, default="1.6", help="OCPP version (default 1.6)")
    rel.set_defaults(func=_reliability)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``evse-hil``."""
    args = build_parser().parse_args(argv)
    setup_logging(args.log_level)
    code: int = args.func(args)
    return code


def entry() -> None:
    """Console-script wrapper: exit with main()'s code."""
    sys.exit(main())


if __name__ == "__main__":
    entry()
