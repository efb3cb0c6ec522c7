"""The bench script language: one step per ``;`` or line, the same in ``run``, ``ctl`` and tests.

    plug [N]; tap 04A1B2C3; expect Charging within 5; draw 16; wait 10; ev B; unplug
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from controller.config import redact
from controller.domain.types import EvseStatus
from controller.ocpp.transfer import TransferError
from hil.fleet import Fleet
from hil.kinds import FAULT_KINDS

STEPS = {
    "plug": "plug [N]",
    "unplug": "unplug [N]",
    "ev": "ev B|C|D|E|auto|sleep [N]",
    "draw": "draw AMPS [N]",
    "lag": "lag SECONDS [N]",
    "overdraw": "overdraw AMPS [N]",
    "tap": "tap UID",
    "wait": "wait SECONDS",
    "expect": "expect STATUS [N] [within SECONDS]",
    "fault": "fault " + "|".join(FAULT_KINDS) + " [N]",
    "clear": "clear " + "|".join(FAULT_KINDS) + " [N]",
    # The bench CSMS's side (evse-hil run with the built-in CSMS): N 0 is the whole station.
    "csms": "csms limit AMPS|WATTSw [N] [for SECONDS] | csms unlimit [N] | csms update URL | "
            "csms logs URL [security]",
}
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
                steps.append(_parse_step(words, " ".join(words)))
            except ScriptError as exc:
                if len(lines) > 1:  # a file: say where
                    raise ScriptError(f"line {number}: {exc}") from None
                raise
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
    # expect STATUS [N] [within SECONDS]
    if not rest:
        raise ScriptError(f"step {text!r}: {usage}")
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


def _parse_csms(rest: list[str], text: str, usage: str) -> Step:
    """csms limit 16 [N] [for SECONDS], csms limit 7400W ..., csms unlimit [N], csms update URL, csms logs URL
    [security]."""
    if not rest or rest[0].lower() not in ("limit", "unlimit", "update", "logs"):
        raise ScriptError(f"step {text!r}: {usage}")
    action, tail = rest[0].lower(), rest[1:]
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


class Bench(Protocol):
    """What a script drives: the simulators and the controller's reported status."""

    def ev(self, connector_id: int) -> Any:
        """The EV simulator of a connector."""

    def tap(self, uid: str) -> None:
        """Present a card."""

    def status(self, connector_id: int) -> str:
        """The connector's current status."""

    def inject(self, kind: str, connector_id: int, active: bool) -> None:
        """Start (or end) an injected fault."""


PASSED, FAILED, SKIPPED = "passed", "failed", "skipped"


@dataclass
class StepResult:
    """What happened when a step ran (monotonic ``start`` and ``end``), or that it did not (``skipped``)."""

    step: str
    ok: bool
    start: float
    end: float
    detail: str = ""
    status: str = PASSED

    @property
    def duration(self) -> float:
        """Seconds the step took."""
        return self.end - self.start

    def as_json(self, t0: float = 0.0) -> dict[str, Any]:
        """The report's form: times in seconds from ``t0``."""
        return {"step": self.step, "status": self.status, "ok": self.ok, "start": round(self.start - t0, 6),
                "end": round(self.end - t0, 6), "duration": round(self.duration, 6), "detail": self.detail}


async def run_steps(steps: list[Step], bench: Bench, clock: Callable[[], float] = time.monotonic,
                    deadline: float | None = None) -> list[StepResult]:
    """Run steps in order until one fails; the rest are reported as skipped. ``deadline`` (a ``clock`` time)
    bounds the whole script: the step running when it passes fails, saying so."""
    results: list[StepResult] = []
    for step in steps:
        started = clock()
        if results and not results[-1].ok:
            results.append(StepResult(step.text, False, started, started, "not run: an earlier step failed",
                                      SKIPPED))
            continue
        remaining = None if deadline is None else deadline - started
        try:
            if remaining is not None and remaining <= 0:
                raise TimeoutError
            ok, detail = await asyncio.wait_for(_run(step, bench), remaining)
        except TimeoutError:
            ok, detail = False, "the script's time limit (--timeout) ran out during this step"
        results.append(StepResult(step.text, ok, started, clock(), detail, PASSED if ok else FAILED))
    return results


async def _run(step: Step, bench: Bench) -> tuple[bool, str]:
    verb, args = step.verb, step.args
    try:
        if verb == "plug":
            bench.ev(args[0]).plug()
        elif verb == "unplug":
            bench.ev(args[0]).unplug()
        elif verb == "ev":
            bench.ev(args[1]).set_mode(args[0])
        elif verb == "draw":
            bench.ev(args[1]).draw(args[0])
        elif verb == "lag":
            bench.ev(args[1]).set_behaviour(lag=args[0])
        elif verb == "overdraw":
            bench.ev(args[1]).set_behaviour(overdraw=args[0])
        elif verb in ("fault", "clear"):
            bench.inject(args[0], args[1], verb == "fault")
        elif verb == "tap":
            bench.tap(args[0])
        elif verb == "csms":
            return await _csms_step(bench, *args)
        elif verb == "wait":
            await asyncio.sleep(args[0])
        elif verb == "expect":
            status, connector, within = args
            deadline = time.monotonic() + within
            while True:
                now_status = bench.status(connector)
                if now_status == status:
                    return True, f"connector {connector} is {status}"
                if time.monotonic() >= deadline:
                    return False, f"connector {connector} is {now_status}, expected {status} within {within:g} s"
                await asyncio.sleep(0.01)
    except (KeyError, RuntimeError, ValueError) as exc:
        return False, f"cannot run: {exc}"
    return True, ""


async def _csms_step(bench: Bench, action: str, *args: Any) -> tuple[bool, str]:
    csms = getattr(bench, "csms", None)
    if csms is None:
        return False, "csms steps need the built-in CSMS (evse-hil run without --csms)"
    fleet = Fleet(csms)
    if action == "update":
        try:
            status = await fleet.update(args[0])
        except (TransferError, ValueError, KeyError) as exc:
            return False, f"cannot read the image's signature {redact(args[0])}.sig: {exc}"
        return status == "Accepted", f"the station answered {status}"
    if action == "logs":
        status, name = await fleet.logs(args[0], args[1])
        return status == "Accepted", f"the station answered {status}" + (f"; it uploads {name}" if name else "")
    value, unit, connector, seconds = args
    if action == "limit":
        status = await fleet.limit(0 if connector is None else connector, value, unit, seconds=seconds)
    else:
        status = await fleet.unlimit(connector)
    # Clearing where nothing was set is no failure (ClearChargingProfile answers Unknown).
    return status == "Accepted" or (action == "unlimit" and status == "Unknown"), f"the station answered {status}"
