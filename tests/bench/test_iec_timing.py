"""The IEC 61851-1 times as shipped, with no test override: the 5 s PWM raise, the 6 s C1 stop, the 4 s wake-up.

These run in real time (seconds each); the other bench tests shorten the same times to stay fast.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from controller.app import App
from hil.benchconfig import socket_config
from hil.csms import CsmsSimulator
from tests.bench.test_ocpp16_core import TAG, script
from tests.bench.test_safety import IEC_BOUND, seen
from tests.conftest import sim_config


async def test_raising_the_offer_waits_the_iec_5_s(socket: App, csms: CsmsSimulator) -> None:
    assert socket.platform is not None
    socket.platform.hot = 65.0  # derate (60 C) but do not stop (75 C)
    await script(socket, f"plug; tap {TAG}; expect Charging; fault temp; wait 0.3; clear temp; wait 5.5")
    duties = [o for o in socket.platform.timeline.items("pwm", 1) if 0 < o.value < 100]
    assert [round(o.value, 2) for o in duties] == [53.33, 16.67, 53.33]
    lowered, raised = duties[1].t, duties[2].t
    assert lowered - seen(socket, "fault", "temp") < 0.2  # lowering: at once
    assert 5.0 <= raised - lowered < 5.5  # raising: 5 s after the last change, not before


async def test_an_ev_that_ignores_the_stop_is_cut_off_after_the_iec_6_s(tmp_path: Path, csms: CsmsSimulator) -> None:
    app = App(sim_config(), state_dir=tmp_path, csms_url=csms.url)
    await app.start()
    try:
        await script(app, f"plug; tap {TAG}; expect Charging; ev C; wait 0.7; tap {TAG}; expect Finishing; wait 6.3")
        closed = seen(app, "contactor", "closed", seen(app, "card", TAG, connector=None))
        withdrawn = seen(app, "pwm", 100.0, closed)
        held = seen(app, "contactor", "open", withdrawn) - withdrawn
        assert 6.0 <= held < 6.0 + IEC_BOUND
    finally:
        await app.stop()


@pytest.mark.parametrize("wakeup_after", [0.3])
async def test_the_wake_up_pulse_lasts_the_iso_15118_3_4_s(tmp_path: Path, csms: CsmsSimulator,
                                                        wakeup_after: float) -> None:
    config = socket_config(connector={"pilot": {"wakeup_after": wakeup_after}})
    app = App(config, state_dir=tmp_path, csms_url=csms.url)
    await app.start()
    try:
        await script(app, f"plug; ev sleep; tap {TAG}; expect Charging within 6")
        assert app.platform is not None
        pwm = app.platform.timeline.items("pwm", 1)
        start = next(i for i, o in enumerate(pwm) if o.value == 0.0 and i > 0)
        assert 4.0 <= pwm[start + 1].t - pwm[start].t < 4.3  # state F for t_step_EF, then the pilot is back
    finally:
        await app.stop()
