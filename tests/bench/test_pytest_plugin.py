"""The pytest plugin's fixtures, used as a bench engineer's own test suite would use them (the plugin is the
package's ``pytest11`` entry point: nothing here imports it)."""

from __future__ import annotations

import pytest

from hil.pytest_plugin import BenchCharger, ScriptFailed
from tests.conftest import wait_until

TAG = "04A1B2C3"


async def test_a_session_reads_like_the_bench_script(bench_charger: BenchCharger) -> None:
    await bench_charger.run(f"plug; tap {TAG}; expect Charging; expect csms StartTransaction")
    assert bench_charger.status() == "Charging"
    (tx,) = bench_charger.csms.transactions.values()
    assert tx.id_tag == TAG
    assert bench_charger.timeline.first("contactor", 1, "closed", 0.0) is not None


@pytest.mark.bench_config("config/sim-two-socket.toml")
async def test_the_config_mark_picks_the_build_and_faults_reach_the_csms(bench_charger: BenchCharger) -> None:
    await bench_charger.run(f"plug 2; expect Preparing 2; tap {TAG}; expect Charging 2; fault rcm 2; expect Faulted 2")
    await wait_until(lambda: "RcmTripped" in bench_charger.csms_statuses(), what="the fault at the CSMS")


@pytest.mark.bench_reject("DEADBEEF")
async def test_a_failing_step_fails_the_test_and_lists_every_step(bench_charger: BenchCharger) -> None:
    with pytest.raises(ScriptFailed) as failed:
        await bench_charger.run("plug; tap DEADBEEF; expect Charging within 1; unplug")
    assert str(failed.value).splitlines() == [
        "script failed:", "  passed  plug", "  passed  tap DEADBEEF",
        "  failed  expect Charging within 1: connector 1 is Preparing, expected Charging within 1 s",
        "  skipped unplug: not run: an earlier step failed"]
    results = await bench_charger.run("csms accept DEADBEEF; wait 0.6; tap DEADBEEF; expect Charging", check=False)
    assert all(r.ok for r in results)


@pytest.mark.bench_config({"station": {"hardware": "sim", "id": "MARKED"}, "rfid": {"driver": "none"},
                            "connector": [{"id": 1}]})
async def test_a_config_table_in_the_mark_and_steps_it_cannot_run(bench_charger: BenchCharger) -> None:
    assert "MARKED" in bench_charger.csms.boots
    with pytest.raises(ValueError, match="the charger has no connector 2 \\(it has 1\\)"):
        await bench_charger.run("plug 2")
    with pytest.raises(ValueError, match="no simulated card reader"):
        await bench_charger.run(f"plug; tap {TAG}")
    await bench_charger.run(f"plug; expect Preparing; csms remote-start 1 {TAG}; expect Charging")
