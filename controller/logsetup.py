"""Logging set-up: one level for everything, levels per component, and the OCPP frame log switched at run time.

``--log-level`` takes a level (``info``), components with theirs (``controller.ocpp=debug,pymodbus=info``), or
both (``warning,controller.evse=debug``). Libraries that talk a lot (pymodbus, websockets, transitions, ocpp)
and the OCPP frame log stay at WARNING unless debugging everything or named. SIGUSR1 switches the frame log
(``controller.ocpp.frames``: every frame sent and received) on and off without a restart.
"""

from __future__ import annotations

import logging

LEVELS = ("debug", "info", "warning", "error")
#: The OCPP frame log: every frame in and out, at DEBUG.
FRAMES = "controller.ocpp.frames"
#: Loud at INFO and below: only shown when debugging everything or named in ``--log-level``.
NOISY = (FRAMES, "transitions", "ocpp", "websockets", "pymodbus")

log = logging.getLogger(__name__)


class LogLevelError(ValueError):
    """``--log-level`` does not parse; the message says what was expected."""


def parse_levels(spec: str) -> tuple[str, dict[str, str]]:
    """``"warning,controller.ocpp=debug"`` -> ("warning", {"controller.ocpp": "debug"}); the default level is info."""
    root = "info"
    named: dict[str, str] = {}
    for part in (p.strip() for p in spec.split(",")):
        if not part:
            continue
        name, _, level = part.rpartition("=")
        level = level.strip().lower()
        if level not in LEVELS:
            raise LogLevelError(f"--log-level {spec!r}: {level!r} is not a level; expected one of "
                                f"{', '.join(LEVELS)}, or COMPONENT=LEVEL such as controller.ocpp=debug")
        if name.strip():
            named[name.strip()] = level
        else:
            root = level
    return root, named


def setup_logging(spec: str) -> None:
    """Log to stderr as ``spec`` says (see :func:`parse_levels`); a password never reaches a log."""
    from controller.ocpp.rpc import SecretFilter

    root, named = parse_levels(spec)
    logging.basicConfig(level=root.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    for handler in logging.getLogger().handlers:
        handler.addFilter(SecretFilter())
    if root != "debug":
        for noisy in NOISY:
            logging.getLogger(noisy).setLevel(logging.WARNING)
    for name, level in named.items():
        logging.getLogger(name).setLevel(level.upper())
        if level == "debug" and FRAMES.startswith(name + "."):
            # Debugging the OCPP client (controller.ocpp=debug) includes its frames.
            logging.getLogger(FRAMES).setLevel(logging.DEBUG)


def toggle_frame_log() -> bool:
    """Switch the OCPP frame log on (DEBUG) or off (WARNING); returns whether it is now on."""
    frames = logging.getLogger(FRAMES)
    on = not frames.isEnabledFor(logging.DEBUG)
    frames.setLevel(logging.DEBUG if on else logging.WARNING)
    # The message has to pass the handlers even when the root level is above INFO.
    log.warning("OCPP frame log %s (SIGUSR1 switches it %s)", "on" if on else "off", "off" if on else "on")
    return on
