"""Running a parsed script against a bench: each step's result and timing, the rest skipped after a failure.

The steps' grammar is :mod:`hil.script`'s; the CSMS's side of a step is :class:`hil.fleet.Fleet`'s.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Protocol

from controller.config import redact
from controller.ocpp.transfer import TransferError
from hil.fleet import Fleet
from hil.script import Step


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


def status_counts(results: list[StepResult]) -> dict[str, int]:
    """How many steps passed, failed and were skipped (the reports' ``counts``)."""
    return {kind: sum(r.status == kind for r in results) for kind in (PASSED, FAILED, SKIPPED)}


async def run_steps(steps: list[Step], bench: Bench, clock: Callable[[], float] = time.monotonic,
                    deadline: float | None = None) -> list[StepResult]:
    """Run steps in order until one fails; the rest are reported as skipped. ``deadline`` (a ``clock`` time)
    bounds the whole script: the step running when it passes fails, saying so."""
    results: list[StepResult] = []
    csms = getattr(bench, "csms", None)
    run = _Run(len(csms.frames) if csms is not None else 0)
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
            ok, detail = await asyncio.wait_for(_run(step, bench, run), remaining)
        except TimeoutError:
            ok, detail = False, "the script's time limit (--timeout) ran out during this step"
        results.append(StepResult(step.text, ok, started, clock(), detail, PASSED if ok else FAILED))
    return results


@dataclass
class _Run:
    """What one script's steps share: where in the CSMS's frames the next ``expect csms`` starts looking."""

    csms_from: int


#: The station's answers that count as a ``csms`` command step passing.
_ANSWERS_OK = {"remote-start": ("Accepted",), "remote-stop": ("Accepted",), "reset": ("Accepted", "Scheduled"),
               "availability": ("Accepted", "Scheduled"), "unlock": ("Unlocked",),
               "set": ("Accepted", "RebootRequired")}


async def _run(step: Step, bench: Bench, run: _Run) -> tuple[bool, str]:
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
            try:
                return await _csms_step(bench, *args)
            except TimeoutError:  # the ocpp call's own wait (not the script's limit, which cancels us instead)
                return False, "the station did not answer the CSMS in time"
        elif verb == "expect_csms":
            return await _expect_csms(bench, run, *args)
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
    except Exception as exc:  # a dropped link, a closed port: the step fails, the report still comes
        return False, f"cannot run: {type(exc).__name__}: {exc}"
    return True, ""


async def _csms_step(bench: Bench, action: str, *args: Any) -> tuple[bool, str]:
    csms = getattr(bench, "csms", None)
    if csms is None:
        return False, "csms steps need the built-in CSMS (evse-hil run without --csms)"
    if action in ("reject", "accept"):
        (csms.rejected_tags.add if action == "reject" else csms.rejected_tags.discard)(args[0])
        csms.tag_statuses.pop(args[0], None)
        return True, f"the CSMS {'rejects' if action == 'reject' else 'accepts'} {args[0]} from now on"
    if action == "offline":
        csms.go_offline(args[0])
        return True, f"the CSMS dropped every station and refuses them for {args[0]:g} s"
    fleet = Fleet(csms)
    if action in _ANSWERS_OK:
        commands: dict[str, Callable[..., Awaitable[str]]] = {
            "remote-start": fleet.remote_start, "remote-stop": fleet.remote_stop, "reset": fleet.reset,
            "availability": fleet.availability, "unlock": fleet.unlock, "set": fleet.configure}
        command = commands[action]
        status = await command(*args)
        return status in _ANSWERS_OK[action], f"the station answered {status}"
    if action == "profile":
        connector, purpose, periods, unit, seconds, stack = args
        status = await fleet.profile(connector, periods, unit, seconds=seconds, purpose=purpose, stack_level=stack)
        return status == "Accepted", f"the station answered {status}"
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


async def _expect_csms(bench: Bench, run: _Run, action: str, within: float) -> tuple[bool, str]:
    csms = getattr(bench, "csms", None)
    if csms is None:
        return False, "expect csms needs the built-in CSMS (evse-hil run without --csms)"
    deadline = time.monotonic() + within
    while True:
        for index in range(run.csms_from, len(csms.frames)):
            frame = csms.frames[index]
            call = frame.call()
            if frame.direction == "in" and call is not None and call[0] == action:
                run.csms_from = index + 1
                return True, f"the CSMS received {action}"
        if time.monotonic() >= deadline:
            return False, f"the CSMS received no {action} within {within:g} s"
        await asyncio.sleep(0.01)

