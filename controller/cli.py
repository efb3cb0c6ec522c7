"""``evse``: run the charger, check a config, or run the demo."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import signal
import sys
from importlib.metadata import entry_points
from pathlib import Path

from controller import version
from controller.config import Config, ConfigError, csms_url_problem, default_config, load_config, redact
from controller.config.rules import api_listen_problem
from controller.logsetup import LogLevelError, parse_levels, setup_logging, toggle_frame_log
from hal.errors import HalError

#: Installed packages add ``evse`` subcommands here (the bench adds ``demo``): name -> "module:register".
COMMANDS_GROUP = "evse_controller.commands"


def log_levels(value: str) -> str:
    """argparse type of ``--log-level``: a level, COMPONENT=LEVEL pairs, or both, comma-separated."""
    try:
        parse_levels(value)
    except LogLevelError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return value


def _load(path: str | None, csms_url: str | None = None) -> Config:
    return load_config(path, csms_url=csms_url) if path else default_config()


def _config_check(args: argparse.Namespace) -> int:
    try:
        load_config(args.file)
    except ConfigError as exc:
        for problem in exc.problems:
            print(problem)
        return 2
    print("OK")
    return 0


def _install(args: argparse.Namespace) -> int:
    from controller.installer import main as install

    return install(args.options)


def _firmware_pack(args: argparse.Namespace) -> int:
    from controller.ocpp.signing import sign_image
    from controller.releases import ImageProblem, pack, read_image

    if bool(args.key) != bool(args.cert):
        print("evse firmware pack: --key and --cert go together", file=sys.stderr)
        return 2
    out = Path(args.out)
    try:
        image = pack(out, source=Path(args.source) if args.source else None,
                     wheels=Path(args.wheels) if args.wheels else None, extras=args.extras)
        signature = sign_image(image, Path(args.key).read_bytes()) if args.key else None
        cert = Path(args.cert).read_text() if args.cert else ""
    except (ImageProblem, OSError, ValueError) as exc:
        print(f"evse firmware pack: {exc}", file=sys.stderr)
        return 2
    wheels, version = read_image(image)[:2]
    print(f"{out}: evse-controller {version}, {len(wheels)} wheels, {len(image)} bytes")
    if signature is not None:
        sidecar = out.with_name(out.name + ".sig")
        sidecar.write_text(json.dumps({"signature": signature, "signingCertificate": cert}))
        print(f"{sidecar}: signature (for 1.6 UpdateFirmware; SignedUpdateFirmware and 2.0.1 carry it): {signature}")
    return 0


def _run(args: argparse.Namespace) -> int:
    setup_logging(args.log_level)
    bad_url = csms_url_problem(args.csms) if args.csms else None
    if bad_url:
        print(f"evse: not starting: --csms {redact(args.csms)}: {bad_url}", file=sys.stderr)
        return 2
    bad_api = api_listen_problem(args.api) if args.api else None
    if bad_api:
        print(f"evse: not starting: --api {args.api}: {bad_api}", file=sys.stderr)
        return 2
    try:
        config = _load(args.config, args.csms)
    except ConfigError as exc:
        for problem in exc.problems:
            print(problem, file=sys.stderr)
        print("evse: not starting: fix the configuration above", file=sys.stderr)
        return 2
    if args.id:
        config.station.id = args.id
    if args.ocpp_version:
        config.ocpp.version = args.ocpp_version
    from controller.app import App
    from controller.hardware import PlatformError
    from controller.releases import Releases
    from controller.schema import StorageError

    state_dir = Path(args.state_dir or config.station.state_dir)
    unusable = _state_dir_problem(state_dir)
    if unusable is not None:
        print(f"evse: not starting: {unusable}", file=sys.stderr)
        return 2
    try:
        app = App(config, state_dir=state_dir, csms_url=args.csms, api_listen=args.api)
        app.platform.check()  # before anything is created: a Pi without GPIO says so in one line
    except PlatformError as exc:
        print(f"evse: not starting: {exc}", file=sys.stderr)
        return 2

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        loop.add_signal_handler(signal.SIGUSR1, toggle_frame_log)
        await app.run(stop)

    try:
        asyncio.run(main())
    except (PlatformError, StorageError, HalError, OSError) as exc:
        # The outputs are already safe (App.start makes everything built so far safe on any failure).
        print(f"evse: not starting: {exc}", file=sys.stderr)
        return 2
    if app.restart == "firmware":
        # Into the release a firmware update switched to (or back from one on trial), through the guard that
        # counts its starts; the same process slot, so systemd keeps its watchdog and notify socket.
        logging.getLogger(__name__).warning("restarting through the release guard")
        logging.shutdown()
        command = Releases(config.firmware.releases_dir).guard_command(sys.argv[1:])
        os.execv(command[0], command)
    if app.restart:
        # A CSMS Reset: the outputs are safe and the transactions ended; start afresh in this process slot.
        logging.getLogger(__name__).warning("restarting after a %s reset", app.restart)
        logging.shutdown()
        os.execv(sys.executable, [sys.executable, "-m", "controller.cli", *sys.argv[1:]])
    return 0


def _state_dir_problem(path: Path) -> str | None:
    """What keeps the daemon from using ``path`` as its state directory (it is created only once all is well)."""
    if path.exists():
        if not path.is_dir():
            return f"state directory {path} is a file: point --state-dir (or station.state_dir) at a directory"
        if not os.access(path, os.W_OK | os.X_OK):
            return f"state directory {path} is not writable by this user"
        return None
    parent = next(p for p in path.parents if p.exists())
    if not parent.is_dir() or not os.access(parent, os.W_OK | os.X_OK):
        return f"state directory {path} cannot be created: {parent} is not a writable directory"
    return None


#: What ``--ocpp-version`` may say (ocpp.version's choices).
OCPP_VERSIONS = ("1.6", "2.0.1")


def build_parser() -> argparse.ArgumentParser:
    """The ``evse`` argument parser."""
    parser = argparse.ArgumentParser(prog="evse", description="On-charger EV charging controller")
    parser.add_argument("--version", action="version", version=f"%(prog)s {version()}")
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="run the charger (under systemd on a real build)")
    run.add_argument("--config", help="TOML config file (default: built-in simulated charger)")
    run.add_argument("--csms", help="CSMS base URL; the station appends /<id> (default: from config); "
                     "'builtin' for a test charge against the built-in CSMS")
    run.add_argument("--id", help="charge point id (default: from config)")
    run.add_argument("--ocpp-version", choices=OCPP_VERSIONS, help="OCPP version (default: from config, 1.6)")
    run.add_argument("--state-dir", help="state directory (default: station.state_dir)")
    run.add_argument("--api", metavar="HOST:PORT", help="serve the status API and page here (default: api.listen)")
    run.add_argument("--log-level", default="info", type=log_levels, metavar="LEVELS",
                     help="debug, info, warning or error, and/or COMPONENT=LEVEL pairs, comma-separated "
                     "(e.g. warning,controller.ocpp=debug); SIGUSR1 switches the OCPP frame log on and off")
    run.set_defaults(func=_run)
    from controller.probe import add_probe_command
    from controller.statuscmd import add_status_command

    add_probe_command(sub)
    install = sub.add_parser("install", help="install this checkout as a systemd service (systemd/install.sh; "
                             "see `evse install --help`)", add_help=False)
    install.add_argument("options", nargs=argparse.REMAINDER)
    install.set_defaults(func=_install)

    add_status_command(sub)
    check = sub.add_parser("config", help="configuration tools").add_subparsers(dest="action", required=True)
    chk = check.add_parser("check", help="validate a config file: prints OK or every problem (exit 2)")
    chk.add_argument("file")
    chk.set_defaults(func=_config_check)
    firmware = sub.add_parser("firmware", help="firmware images (releases of this package)").add_subparsers(
        dest="action", required=True)
    pack = firmware.add_parser("pack", help="make a firmware image of this package and its dependencies")
    pack.add_argument("out", help="the image file to write (a .tar)")
    pack.add_argument("--source", help="the source tree to build (default: the current directory)")
    pack.add_argument("--wheels", help="take the wheels in this folder instead of building them")
    pack.add_argument("--extras", default="", help="extras the station installs, e.g. pi")
    pack.add_argument("--key", help="the manufacturer's signing key (PEM): also write OUT.sig")
    pack.add_argument("--cert", help="the signing certificate (PEM) that goes with --key")
    pack.set_defaults(func=_firmware_pack)
    for command in sorted(entry_points(group=COMMANDS_GROUP), key=lambda e: e.name):
        command.load()(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``evse`` command."""
    args = build_parser().parse_args(argv)
    code: int = args.func(args)
    return code


def entry() -> None:
    """Console-script wrapper: exit with main()'s code."""
    sys.exit(main())


if __name__ == "__main__":
    entry()
