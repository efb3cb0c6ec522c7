"""What the CHAdeMO and GB/T fake-time harnesses share: stepping, waiting, finding a sample, the simulated IMD."""

from __future__ import annotations

from typing import Any

from hil.dccircuit import DcCircuit

IMD_MEASURE = 1.0  # s of test voltage before the (simulated) IMD gives its verdict


class FakeTimeHarness:
    """A sequence and the bench's car on one DC circuit, advanced ``step_s`` at a time by :meth:`step`."""

    step_s: float
    now: float
    samples: list[Any]
    seq: Any
    out: Any
    circuit: DcCircuit
    test_voltages: list[float]
    _test_since: float | None

    def step(self) -> None:
        raise NotImplementedError

    def imd_reading(self) -> float | None:
        """The insulation resistance once the test voltage has stood ``IMD_MEASURE`` s; None before."""
        voltage = self.out.insulation_test
        if voltage is None:
            self._test_since = None
            return None
        if self._test_since is None:
            self._test_since = self.now
            self.test_voltages.append(voltage)
        if self.now - self._test_since < IMD_MEASURE or self.circuit.stage_voltage < 0.95 * voltage:
            return None
        return self.circuit.insulation_ohms

    def run(self, seconds: float) -> None:
        for _ in range(round(seconds / self.step_s)):
            self.step()

    def run_until(self, test: object, timeout: float) -> float:
        """Step until ``test()`` holds; returns the time. Fails after ``timeout`` s."""
        end = self.now + timeout
        while self.now < end:
            self.step()
            if test():  # type: ignore[operator]
                return self.now
        raise AssertionError(f"not reached within {timeout} s (phase {self.seq.phase.value})")

    def first(self, test: object, after: float = 0.0) -> Any:
        return next(s for s in self.samples if s.t > after and test(s))  # type: ignore[operator]
