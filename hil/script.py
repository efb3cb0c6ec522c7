"""The bench script language: one step per ``;`` or line, the same in ``run``, ``ctl`` and tests.

    plug [N]; tap 04A1B2C3; expect Charging within 5; draw 16; wait 10; ev B; unplug
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any

from controller.config import Config, ConnectorSection
from controller.domain.types import EvseStatus
from hil.kinds import AC_FAULT_KINDS, DC_FAULT_KINDS, FAULT_KINDS

STEPS = {
    "plug": "plug [N]",
    "unplug": "unplug [N]",
    "ev": "ev B|C|D|E|auto|sleep [N]",
    "draw": "draw AMPS [N]",
    "lag": "lag SECONDS [N]",
    "overdraw": "overdraw AMPS [N]",
    "tap": "tap UID",
    "wait": "wait SECONDS",
    "expect": "expect STATUS [N] [within SECONDS] | expect csms ACTION [within SECONDS]",
    "fault": "fault " + "|".join(FAULT_KINDS) + " [N]",
    "clear": "clear " + "|".join(FAULT_KINDS) + " [N]",
    # The bench CSMS's side (evse-hil run with the built-in CSMS): N 0 is the whole station.
    "csms": "csms reject|accept TAG | csms remote-start [N] TAG | csms remote-stop [N] | csms reset soft|hard | "
            "csms availability N operative|inoperative | csms unlock N | csms set KEY VALUE | "
            "csms offline SECONDS | csms limit AMPS|WATTSw [N] [for SECONDS] | csms unlimit [N] | "
            "csms profile [N] max|default|tx START=LIMIT[,START=LIMIT...] [for SECONDS] [stack LEVEL] | "
            "csms update URL | csms logs URL [security]",
}
#: ``expect csms ACTION [within SECONDS]``: a CALL the CSMS received (after the one the last such step matched).
EXPECT_CSMS = "expect csms ACTION [within SECONDS]"
CSMS_ACTIONS = ("reject", "accept", "remote-start", "remote-stop", "reset", "availability", "unlock", "set",
                "offline", "limit", "unlimit", "profile", "update", "logs")
#: The longest id a tag step takes (OCPP 2.0.1's IdToken is 36 characters; 1.6's idTag 20).
MAX_TAG = 36
DEFAULT_WITHIN = 5.0
#: The longest a ``wait`` or an ``expect ... within`` may be (an hour): a slip of a few extra digits is an error when
#: the script is read, not a bench that hangs for good.
MAX_STEP_SECONDS = 3600.0


class ScriptError(ValueError):
    """A script that cannot run: names the step and lists the valid ones."""


@dataclass(frozen=True)
class Step:
    """One parsed step."""

    verb: str
    args: tuple[Any, ...]
    text: str
    #: Its line in a multi-line script (0: a one-line script).
    line: int = 0


def _valid() -> str:
    return "valid steps: " + "; ".join(STEPS.values())


def _connector(token: str | None, step: str) -> int:
    if token is None:
        return 1
    if not token.isdigit() or int(token) < 1:
        raise ScriptError(f"step {step!r}: connector must be a number from 1, got {token!r}")
    return int(token)


def _number(token: str, step: str, what: str, most: float | None = None) -> float:
    try:
        value = float(token)
        if math.isnan(value):
            raise ValueError(token)
    except ValueError:
        raise ScriptError(f"step {step!r}: {what} must be a number, got {token!r}") from None
    if value < 0:
        raise ScriptError(f"step {step!r}: {what} must not be negative")
    if most is not None and value > most:
        raise ScriptError(f"step {step!r}: {what} must be at most {most:g}, got {token}")
    return value


def parse_script(text: str) -> list[Step]:
    """Parse a script; raises ScriptError for the first bad step."""
    steps: list[Step] = []
    lines = text.splitlines()
    for number, line in enumerate(lines, 1):
        line = line.split("#", 1)[0]
        for chunk in line.split(";"):
            words = chunk.split()
            if not words:
                continue
            try:
                step = _parse_step(words, " ".join(words))
            except ScriptError as exc:
                if len(lines) > 1:  # a file: say where
                    raise ScriptError(f"line {number}: {exc}") from None
                raise
            steps.append(dataclasses.replace(step, line=number if len(lines) > 1 else 0))
    return steps


def _parse_step(words: list[str], text: str) -> Step:
    verb, rest = words[0].lower(), words[1:]
    if verb not in STEPS:
        raise ScriptError(f"unknown step {text!r}; {_valid()}")
    usage = f"usage: {STEPS[verb]}"
    if verb in ("plug", "unplug"):
        if len(rest) > 1:
            raise ScriptError(f"step {text!r}: {usage}")
        return Step(verb, (_connector(rest[0] if rest else None, text),), text)
    if verb == "ev":
        if not 1 <= len(rest) <= 2 or rest[0].upper() not in ("B", "C", "D", "E", "AUTO", "SLEEP"):
            raise ScriptError(f"step {text!r}: {usage}")
        mode = rest[0].lower() if rest[0].upper() in ("AUTO", "SLEEP") else rest[0].upper()
        return Step(verb, (mode, _connector(rest[1] if len(rest) > 1 else None, text)), text)
    if verb in ("draw", "lag", "overdraw"):
        if not 1 <= len(rest) <= 2:
            raise ScriptError(f"step {text!r}: {usage}")
        what = "SECONDS" if verb == "lag" else "AMPS"
        return Step(verb, (_number(rest[0], text, what), _connector(rest[1] if len(rest) > 1 else None, text)), text)
    if verb == "tap":
        if len(rest) != 1:
            raise ScriptError(f"step {text!r}: {usage}")
        uid = rest[0].upper()
        try:
            raw = bytes.fromhex(uid)
        except ValueError:
            raise ScriptError(f"step {text!r}: UID must be hex digits, got {rest[0]!r}") from None
        if len(raw) not in (4, 5, 7, 10):
            raise ScriptError(f"step {text!r}: UID must be 4, 7 or 10 bytes (5 for EM4100), got {len(raw)}")
        return Step(verb, (uid,), text)
    if verb in ("fault", "clear"):
        if not 1 <= len(rest) <= 2 or rest[0].lower() not in FAULT_KINDS:
            raise ScriptError(f"step {text!r}: {usage}")
        return Step(verb, (rest[0].lower(), _connector(rest[1] if len(rest) > 1 else None, text)), text)
    if verb == "csms":
        return _parse_csms(rest, text, usage)
    if verb == "wait":
        if len(rest) != 1:
            raise ScriptError(f"step {text!r}: {usage}")
        return Step(verb, (_number(rest[0], text, "SECONDS", MAX_STEP_SECONDS),), text)
    # expect STATUS [N] [within SECONDS], or expect csms ACTION [within SECONDS]
    if not rest:
        raise ScriptError(f"step {text!r}: {usage}")
    if rest[0].lower() == "csms":
        return _parse_expect_csms(rest[1:], text)
    statuses = {s.value.lower(): s.value for s in EvseStatus}
    status = statuses.get(rest[0].lower())
    if status is None:
        raise ScriptError(f"step {text!r}: unknown status {rest[0]!r}; expected one of {', '.join(statuses.values())}")
    tail = rest[1:]
    connector = 1
    if tail and tail[0].lower() != "within":
        connector = _connector(tail[0], text)
        tail = tail[1:]
    within = DEFAULT_WITHIN
    if tail:
        if len(tail) != 2 or tail[0].lower() != "within":
            raise ScriptError(f"step {text!r}: {usage}")
        within = _number(tail[1], text, "SECONDS", MAX_STEP_SECONDS)
    return Step(verb, (status, connector, within), text)


def _tag(token: str, text: str) -> str:
    if not 1 <= len(token) <= MAX_TAG or not token.isprintable():
        raise ScriptError(f"step {text!r}: a tag is 1-{MAX_TAG} printable characters, got {token!r}")
    return token.upper()


def _parse_station_command(action: str, tail: list[str], text: str, usage: str) -> Step:
    """The CSMS's commands to the station and its own switches: reject/accept, remote-start/-stop, reset,
    availability, unlock, set, offline."""
    def need(count: int | tuple[int, int]) -> None:
        low, high = count if isinstance(count, tuple) else (count, count)
        if not low <= len(tail) <= high:
            raise ScriptError(f"step {text!r}: {usage}")

    if action in ("reject", "accept"):
        need(1)
        return Step("csms", (action, _tag(tail[0], text)), text)
    if action == "remote-start":
        need((1, 2))
        connector = _connector(tail[0], text) if len(tail) == 2 else None
        return Step("csms", (action, connector, _tag(tail[-1], text)), text)
    if action in ("remote-stop", "unlock"):
        need((0, 1) if action == "remote-stop" else 1)
        return Step("csms", (action, _connector(tail[0] if tail else None, text)), text)
    if action == "reset":
        need(1)
        if tail[0].lower() not in ("soft", "hard"):
            raise ScriptError(f"step {text!r}: {usage}")
        return Step("csms", (action, tail[0].lower() == "hard"), text)
    if action == "availability":
        need(2)
        if not tail[0].isdigit() or tail[1].lower() not in ("operative", "inoperative"):
            raise ScriptError(f"step {text!r}: {usage}")
        return Step("csms", (action, int(tail[0]), tail[1].lower() == "operative"), text)
    if action == "set":
        if len(tail) < 2:
            raise ScriptError(f"step {text!r}: {usage}")
        return Step("csms", (action, tail[0], " ".join(tail[1:])), text)
    need(1)  # offline SECONDS
    return Step("csms", (action, _number(tail[0], text, "SECONDS", MAX_STEP_SECONDS)), text)


def _parse_expect_csms(rest: list[str], text: str) -> Step:
    usage = f"usage: {EXPECT_CSMS}"
    if len(rest) not in (1, 3) or (len(rest) == 3 and rest[1].lower() != "within"):
        raise ScriptError(f"step {text!r}: {usage}")
    action = rest[0]
    if not action.isalpha() or not action[0].isupper():
        raise ScriptError(f"step {text!r}: ACTION is an OCPP action name such as StartTransaction, got {action!r}")
    within = _number(rest[2], text, "SECONDS", MAX_STEP_SECONDS) if len(rest) == 3 else DEFAULT_WITHIN
    return Step("expect_csms", (action, within), text)


def _parse_profile(tail: list[str], text: str, usage: str) -> Step:
    """csms profile [N] max|default|tx 0=16,60=10 [for SECONDS] [stack LEVEL]: an Absolute profile from now,
    each period's start in seconds from now; limits in A, or all in W (``7400W``)."""
    connector = None
    if tail and tail[0].isdigit():
        connector = int(tail.pop(0))
    if len(tail) < 2 or tail[0].lower() not in ("max", "default", "tx"):
        raise ScriptError(f"step {text!r}: {usage}")
    purpose, spec, options = tail[0].lower(), tail[1], tail[2:]
    periods: list[tuple[int, float]] = []
    units = set()
    for item in spec.split(","):
        begin, equals, limit = item.partition("=")
        if not equals or not begin.isdigit():
            raise ScriptError(f"step {text!r}: a period is START=LIMIT (seconds from now = A or W), got {item!r}")
        units.add("W" if limit.upper().endswith("W") else "A")
        periods.append((int(begin), _number(limit.upper().rstrip("AW"), text, "a limit")))
    starts = [begin for begin, _ in periods]
    if starts[0] != 0 or starts != sorted(set(starts)) or len(units) > 1:
        raise ScriptError(f"step {text!r}: periods start at 0, rise, and share one unit (A or W)")
    seconds, stack = None, 0
    while options:
        if len(options) < 2 or options[0].lower() not in ("for", "stack") or not options[1].isdigit():
            raise ScriptError(f"step {text!r}: {usage}")
        if options[0].lower() == "for":
            seconds = int(options[1]) or None
        else:
            stack = int(options[1])
        options = options[2:]
    if connector is None:
        connector = 1 if purpose == "tx" else 0
    return Step("csms", ("profile", connector, purpose, periods, units.pop(), seconds, stack), text)


def _parse_csms(rest: list[str], text: str, usage: str) -> Step:
    """The ``csms`` steps (:data:`STEPS`)."""
    if not rest or rest[0].lower() not in CSMS_ACTIONS:
        raise ScriptError(f"step {text!r}: {usage}")
    action, tail = rest[0].lower(), rest[1:]
    if action == "profile":
        return _parse_profile(tail, text, usage)
    if action not in ("limit", "unlimit", "update", "logs"):
        return _parse_station_command(action, tail, text, usage)
    if action in ("update", "logs"):
        kinds = {"security": "SecurityLog", "diagnostics": "DiagnosticsLog"}
        if not tail or "://" not in tail[0] or len(tail) > (1 if action == "update" else 2) \
                or (len(tail) == 2 and tail[1].lower() not in kinds):
            raise ScriptError(f"step {text!r}: {usage}")
        kind = kinds[tail[1].lower()] if len(tail) == 2 else "DiagnosticsLog"
        return Step("csms", (action, tail[0], kind), text)
    value, unit = 0.0, "A"
    if action == "limit":
        if not tail:
            raise ScriptError(f"step {text!r}: {usage}")
        token = tail.pop(0).upper()
        unit = "W" if token.endswith("W") else "A"
        value = _number(token.rstrip("AW"), text, "the limit")
    connector: int | None = None
    if tail and tail[0].lower() != "for":
        if not tail[0].isdigit():
            raise ScriptError(f"step {text!r}: connector must be a number from 0, got {tail[0]!r}")
        connector = int(tail.pop(0))
    seconds = None
    if tail:
        if action != "limit" or len(tail) != 2 or tail[0].lower() != "for":
            raise ScriptError(f"step {text!r}: {usage}")
        seconds = int(_number(tail[1], text, "SECONDS")) or None
    return Step("csms", (action, value, unit, connector, seconds), text)


def check_script(steps: list[Step], config: Config) -> None:
    """Refuse, before anything runs, a step the configured charger cannot do: a connector it does not have, a fault
    kind it has no device for (an RCM fault without an RCM, a DC fault on an AC connector, ...)."""
    connectors = {c.id: c for c in config.connector}
    for step in steps:
        where = f"line {step.line}: " if step.line else ""
        for number in _connectors_of(step):
            if number not in connectors:
                raise ScriptError(f"{where}step {step.text!r}: the charger has no connector {number} (it has "
                                  f"{', '.join(str(i) for i in sorted(connectors))})")
        if step.verb in ("fault", "clear"):
            problem = _fault_problem(step.args[0], connectors[step.args[1]], config)
            if problem:
                raise ScriptError(f"{where}step {step.text!r}: {problem}")
        if step.verb == "tap" and (config.rfid.driver == "none" or "rfid" in config.sim.external):
            raise ScriptError(f"{where}step {step.text!r}: the charger has no simulated card reader "
                              f"(rfid.driver = {config.rfid.driver!r}, sim.external = {config.sim.external!r})")


def _connectors_of(step: Step) -> list[int]:
    if step.verb in ("plug", "unplug"):
        return [step.args[0]]
    if step.verb in ("ev", "draw", "lag", "overdraw", "fault", "clear", "expect"):
        return [step.args[1]]
    if step.verb == "csms" and step.args[0] in ("limit", "unlimit"):
        number = step.args[3]  # (action, value, unit, connector, seconds)
    elif step.verb == "csms" and step.args[0] in ("remote-stop", "unlock", "remote-start", "availability",
                                                  "profile"):
        number = step.args[1]
    else:
        return []
    return [] if number in (None, 0) else [number]  # None: any connector; 0: the whole station


def _fault_problem(kind: str, conn: ConnectorSection, config: Config) -> str | None:
    """Why ``kind`` cannot be injected on ``conn``, or None."""
    name = f"connector {conn.id}"
    if kind in DC_FAULT_KINDS and not conn.dc:
        return f"fault {kind} needs a DC connector; {name} is AC"
    if kind in AC_FAULT_KINDS and conn.dc:
        return f"fault {kind} needs an AC connector; {name} is {conn.kind}"
    needs = {
        "rcm": (conn.rcm.driver != "none", "an RCM ([connector.rcm] driver)"),
        "rcmdead": (conn.rcm.driver != "none", "an RCM ([connector.rcm] driver)"),
        "lock": (conn.lock.driver != "none", "a cable lock ([connector.lock] driver)"),
        "temp": (conn.temperature.driver != "none", "a temperature sensor ([connector.temperature] driver)"),
        "pp": (conn.proximity.driver != "none", "a PP input ([connector.proximity] driver)"),
        "weld": (conn.contactor.mirror_pin is not None, "a mirror contact (contactor.mirror_pin)"),
        "stuck": (conn.contactor.mirror_pin is not None, "a mirror contact (contactor.mirror_pin)"),
        "diode": (conn.dc or conn.pilot.adc_low_channel is not None,
                  "the pilot's low half read (pilot.adc_low_channel)"),
        "meter": (conn.dc or "meter" not in config.sim.external, "a simulated meter (sim.external names it)"),
        "reader": (config.rfid.driver == "pn532" and "rfid" not in config.sim.external,
                   "the simulated PN532 ([rfid] driver = 'pn532', not in sim.external)"),
    }
    present, device = needs.get(kind, (True, ""))
    return None if present else f"fault {kind} needs {device}; {name} has none"
