"""`evse-hil perf --cpu` measures a real daemon: it comes up, charges every connector, and reports figures."""

from __future__ import annotations

import os
import threading
import tomllib

from controller.config import parse_config
from hil.cpuperf import PI_AC_CONFIG, build_memory, config_text, cpu_percent, measure_case


def test_the_generated_builds_are_valid_configs() -> None:
    for n in (1, 2, 4):
        config = parse_config(tomllib.loads(config_text(n)), f"<{n} connectors>")
        assert [c.id for c in config.connector] == list(range(1, n + 1))


async def test_the_cpu_figure_counts_a_busy_process() -> None:
    # What a floor of 0 below cannot catch: a tick reader that always says 0.
    done = threading.Event()

    def spin() -> None:
        while not done.is_set():
            pass

    worker = threading.Thread(target=spin)
    worker.start()
    try:
        assert await cpu_percent(os.getpid(), 0.5) > 30  # about 100 % of one core
    finally:
        done.set()
        worker.join()


async def test_one_case_charges_its_connectors_and_reports_cpu_and_memory() -> None:
    # CPU time comes in clock ticks (10 ms at 100 Hz): over a short window a daemon using 1-2 % can show 0 ticks,
    # so the window is long enough to resolve 0.5 % and the floor is 0, not "above 0".
    case = await measure_case(2, window=2.0)
    assert case["connectors"] == 2
    assert 0 <= case["idle_cpu_pct"] < 100 and 0 <= case["charging_cpu_pct"] < 200
    assert case["charging_cpu_pct_per_connector"] == round(case["charging_cpu_pct"] / 2, 2)
    assert 20 < case["rss_mb"] < 500


def test_the_pi_ac_build_loads_none_of_the_heavy_optional_libraries() -> None:
    # cryptography (certificates, signed firmware), the 2.0.1 schemas, aiohttp (the status API), cantools (DC) and
    # pymodbus's server load only when a config or a CSMS request needs them: about 12 MB on a plain AC station.
    figure = build_memory(str(PI_AC_CONFIG))
    assert figure["heavy_modules"] == []
    assert 10 < figure["rss_mb"] < 60
