"""The station's variables: every component and variable it has, with defaults from the config.

These are the required variables of OCPP 2.0.1's Core controllers (Part 2 "Referenced Components and
Variables", the set TC_B_53_CS reads through a FullInventory report) plus the ones a 1.6 key stands for, and
the ChargingStation / EVSE / Connector components. Each one steers something: the code it names reads it here
when it acts (a few report the state of the moment instead: the clock, an EVSE's availability and power).
"""

from __future__ import annotations

import functools
import math
from pathlib import Path
from typing import TYPE_CHECKING

from controller.clock import Clock, iso_utc
from controller.config import Config
from controller.ocpp import device_model as dm
from controller.ocpp import smart_charging as smart
from controller.ocpp.certificates import MAX_ROOTS
from controller.ocpp.device_model import (
    BOOLEAN,
    DATE_TIME,
    DECIMAL,
    INTEGER,
    MEMBER_LIST,
    OPTION_LIST,
    READ_ONLY,
    READ_WRITE,
    SEQUENCE_LIST,
    STRING,
    WRITE_ONLY,
    Ref,
    Variable,
    component_ref,
    measurand_problem,
    split,
)
from controller.ocpp.network import SLOTS, configured_profile
from controller.ocpp.security import MAX_CHAIN
from controller.storage import Store

if TYPE_CHECKING:
    from controller.station import Station

#: What the file transfers speak (log uploads: controller/ocpp/diagnostics.py).
FILE_TRANSFER_PROTOCOLS = ("HTTP", "HTTPS", "FTP")
#: ClockCtrlr.TimeSource members: the CSMS's time in Heartbeat answers, or the system clock (kept by the OS).
TIME_SOURCES = ("Heartbeat", "RealTimeClock")
AVAILABILITY_STATES = ("Available", "Occupied", "Reserved", "Unavailable", "Faulted")
#: Per-phase volts assumed for an AC outlet's rated power.
NOMINAL_VOLTS = 230
_CONNECTOR_TYPES = {"chademo": "cG105", "gbt": "cGBT"}


def _password_problem(value: str) -> str | None:
    return None if 16 <= len(value) <= 40 else "expected 16-40 characters"


def certificates_in(ca_file: str) -> int:
    """How many certificates the configured CA file holds (the CSMS roots this station trusts)."""
    if not ca_file:
        return 0
    try:
        return Path(ca_file).read_text(errors="replace").count("-----BEGIN CERTIFICATE-----")
    except OSError:
        return 0


def _slots_problem(store: Store, value: str) -> str | None:
    """A NetworkConfigurationPriority may list only slots that hold a profile."""
    for slot in split(value):
        if not slot.isdigit() or int(slot) not in SLOTS:
            return f"{slot!r} is not a configuration slot (1-{SLOTS[-1]})"
        if int(slot) != 1 and store.get_setting(f"network.profile.{slot}") is None:
            return f"slot {slot} holds no network profile"
    return None if split(value) else "expected at least one slot"


def standard_variables(config: Config, station: Station, clock: Clock, store: Store) -> list[Variable]:
    """Every variable this station has, with defaults that suit a public charger or come from the config."""
    connectors = len(config.connector)
    ocpp = config.ocpp

    def flag(ref: Ref, default: bool, mutability: str = READ_WRITE) -> Variable:
        return Variable(ref, BOOLEAN, "true" if default else "false", mutability)

    def number(ref: Ref, default: int, lo: int = 0, hi: int = 86400 * 7, mutability: str = READ_WRITE) -> Variable:
        return Variable(ref, INTEGER, str(default), mutability, lo, hi)

    def measurands(ref: Ref, default: str, allow_empty: bool) -> Variable:
        return Variable(ref, MEMBER_LIST, default, max_items=dm.MEASURANDS_MAX, allow_empty=allow_empty,
                        check=measurand_problem, values=tuple(sorted(dm.MEASURANDS)))

    def points(ref: Ref, default: str) -> Variable:
        return Variable(ref, MEMBER_LIST, default, allow_empty=False, values=dm.TX_POINTS)

    password = ocpp.basic_auth_password
    profile = configured_profile(ocpp.csms_url, ocpp)
    # The reconnect back-off's defaults keep the config's: from reconnect_min, doubling up to reconnect_max.
    doublings = int(math.log2(ocpp.reconnect_max / ocpp.reconnect_min)) if ocpp.reconnect_max > ocpp.reconnect_min \
        else 0

    return [
        Variable(dm.BASIC_AUTH_PASSWORD, STRING, password, WRITE_ONLY, check=_password_problem),
        Variable(dm.SECURITY_PROFILE, INTEGER, str(profile), READ_ONLY, 0, 3),
        Variable(dm.IDENTITY, STRING, config.station.id, READ_ONLY),
        # The O of the station's certificate signing requests (1.6 CpoName).
        Variable(dm.ORGANIZATION_NAME, STRING, ""),
        # The certificates in ocpp.ca_file and the installed roots (the client provides the count of the moment).
        Variable(dm.CERTIFICATE_ENTRIES, INTEGER, str(certificates_in(ocpp.ca_file)), READ_ONLY,
                 max_items=MAX_ROOTS),
        number(dm.MAX_CERTIFICATE_CHAIN_SIZE, MAX_CHAIN, mutability=READ_ONLY),
        # No root replaces another by a check against the one before (the whitepaper's optional rule).
        flag(dm.ADDITIONAL_ROOT_CHECK, False, READ_ONLY),
        number(dm.HEARTBEAT_INTERVAL, ocpp.heartbeat_interval, lo=1),
        number(dm.WEBSOCKET_PING_INTERVAL, 60, hi=3600),
        Variable(dm.FILE_TRANSFER_PROTOCOLS, MEMBER_LIST, ",".join(FILE_TRANSFER_PROTOCOLS), READ_ONLY,
                 values=FILE_TRANSFER_PROTOCOLS),
        number(dm.MESSAGE_TIMEOUT, max(1, round(ocpp.response_timeout)), lo=1, mutability=READ_ONLY),
        # Slot 1 is the configured CSMS; SetNetworkProfile fills others (controller/ocpp/network.py).
        Variable(dm.NETWORK_PRIORITY, SEQUENCE_LIST, "1", values=tuple(str(s) for s in SLOTS), reboot=True,
                 check=lambda value: _slots_problem(store, value)),
        number(dm.NETWORK_PROFILE_ATTEMPTS, 10, lo=1, hi=1000),
        number(dm.OFFLINE_THRESHOLD, 60, hi=86400),
        number(dm.RETRY_WAIT_MINIMUM, round(ocpp.reconnect_min), hi=3600),
        number(dm.RETRY_RANDOM_RANGE, round(ocpp.reconnect_min * 2), hi=3600),
        number(dm.RETRY_REPEAT_TIMES, doublings, hi=20),
        number(dm.MESSAGE_ATTEMPTS, 3, lo=1, hi=100),
        number(dm.MESSAGE_ATTEMPT_INTERVAL, 60, hi=3600),
        number(dm.RESET_RETRIES, 3, hi=10),
        number(dm.MINIMUM_STATUS_DURATION, 0, hi=3600),
        flag(dm.UNLOCK_ON_EV_SIDE_DISCONNECT, True),
        Variable(dm.DATE_TIME_NOW, DATE_TIME, "", READ_ONLY, live=lambda: iso_utc(clock.utcnow())),
        Variable(dm.TIME_SOURCE, SEQUENCE_LIST, "Heartbeat", values=TIME_SOURCES),
        number(dm.EV_CONNECTION_TIMEOUT, 60, lo=1),
        flag(dm.STOP_TX_ON_EV_SIDE_DISCONNECT, True),
        # A transaction is the charging session (1.6's meaning) unless the CSMS moves its edges.
        points(dm.TX_START_POINT, "PowerPathClosed"),
        points(dm.TX_STOP_POINT, "EVConnected,Authorized"),
        flag(dm.STOP_TX_ON_INVALID_ID, True),
        number(dm.MAX_ENERGY_ON_INVALID_ID, 0, hi=10_000_000),
        flag(dm.AUTHORIZE_REMOTE_START, False),
        flag(dm.LOCAL_AUTHORIZE_OFFLINE, True),
        flag(dm.LOCAL_PRE_AUTHORIZE, False),
        flag(dm.OFFLINE_TX_FOR_UNKNOWN_ID, False),
        # Empty: no master pass. A group id is an idToken: at most 36 characters.
        Variable(dm.MASTER_PASS_GROUP_ID, STRING, "", check=lambda v: None if len(v) <= 36 else "over 36 characters"),
        flag(dm.AUTH_CACHE_ENABLED, True),
        flag(dm.LOCAL_LIST_ENABLED, True),
        Variable(dm.LOCAL_LIST_ENTRIES, INTEGER, "0", READ_ONLY, max_items=dm.LOCAL_LIST_MAX),
        number(dm.LOCAL_LIST_ITEMS_PER_MESSAGE, dm.SEND_LOCAL_LIST_MAX, mutability=READ_ONLY),
        number(dm.TX_UPDATED_INTERVAL, ocpp.meter_value_sample_interval),
        # A DC car tells its state of charge; what the charger offers it is worth seeing beside what it takes.
        measurands(dm.TX_UPDATED_MEASURANDS, "Energy.Active.Import.Register,Power.Active.Import,Current.Import,Voltage"
                   + (",SoC,Power.Offered" if any(c.dc for c in config.connector) else ""), allow_empty=False),
        measurands(dm.TX_STARTED_MEASURANDS, "Energy.Active.Import.Register", allow_empty=True),
        measurands(dm.TX_ENDED_MEASURANDS, "", allow_empty=True),
        number(dm.TX_ENDED_INTERVAL, ocpp.meter_value_sample_interval),
        number(dm.ALIGNED_INTERVAL, 0),
        measurands(dm.ALIGNED_MEASURANDS, "Energy.Active.Import.Register", allow_empty=False),
        measurands(dm.ALIGNED_TX_ENDED_MEASURANDS, "", allow_empty=True),
        number(dm.ALIGNED_TX_ENDED_INTERVAL, 0),
        number(dm.GET_VARIABLES_ITEMS, dm.GET_VARIABLES_MAX, mutability=READ_ONLY),
        number(dm.SET_VARIABLES_ITEMS, dm.GET_VARIABLES_MAX, mutability=READ_ONLY),
        number(dm.GET_REPORT_ITEMS, dm.GET_VARIABLES_MAX, mutability=READ_ONLY),
        number(dm.GET_VARIABLES_BYTES, dm.BYTES_PER_MESSAGE, hi=10_000_000, mutability=READ_ONLY),
        number(dm.SET_VARIABLES_BYTES, dm.BYTES_PER_MESSAGE, hi=10_000_000, mutability=READ_ONLY),
        number(dm.GET_REPORT_BYTES, dm.BYTES_PER_MESSAGE, hi=10_000_000, mutability=READ_ONLY),
        flag(dm.NON_EVSE_SPECIFIC_RESERVATION, True, READ_ONLY),
        Variable(dm.PHASE_ROTATION, STRING, ",".join(f"{i}.RST" for i in range(1, connectors + 1))),
        number(dm.NUMBER_OF_CONNECTORS, connectors, mutability=READ_ONLY),
        Variable(dm.SUPPORTED_FEATURE_PROFILES, STRING, dm.PROFILES, READ_ONLY),
        flag(dm.SMART_ENABLED, True, READ_ONLY),
        flag(dm.SMART_AVAILABLE, True, READ_ONLY),
        Variable(dm.SMART_ENTRIES, INTEGER, "0", READ_ONLY, max_items=smart.MAX_PROFILES),
        # A relative change of the offered limit worth telling (no external limit source is wired yet: see README).
        Variable(dm.LIMIT_CHANGE_SIGNIFICANCE, DECIMAL, "0.1", READ_WRITE, 0, 1),
        number(dm.PERIODS_PER_SCHEDULE, smart.MAX_PERIODS, mutability=READ_ONLY),
        number(dm.PROFILE_STACK_LEVEL, smart.MAX_STACK_LEVEL, mutability=READ_ONLY),
        Variable(dm.RATE_UNIT, MEMBER_LIST, "A,W", READ_ONLY, values=("A", "W")),
        # No contactor switches a three-phase outlet to one phase: numberPhases cannot be obeyed by switching.
        flag(dm.PHASES_3TO1, False, READ_ONLY),
        flag(dm.AC_PHASE_SWITCHING, False, READ_ONLY),
        *_components(config, station),
    ]


def _components(config: Config, station: Station) -> list[Variable]:
    """ChargingStation, and an EVSE and a Connector component per outlet: availability, phases, power, type."""
    def state(evse_id: int) -> str:
        # Read by a 2.0.1 CSMS only: a 1.6 station does not load the 2.0.1 schemas and enums (about 4 MB).
        from controller.ocpp.v201.codes import CONNECTOR_STATUS

        if evse_id == 0:
            return CONNECTOR_STATUS[station.station_status()]
        return CONNECTOR_STATUS[station.evses[evse_id].status]

    def power(evse_id: int) -> str:
        reading = station.evses[evse_id].reading
        return str(round(reading.power_w)) if reading is not None and reading.power_w is not None else "0"

    def common(component: str, evse_id: int, phases: int) -> list[Variable]:
        return [
            Variable(component_ref(component, "AvailabilityState", evse_id), OPTION_LIST, "", READ_ONLY,
                     values=AVAILABILITY_STATES, live=lambda: state(evse_id)),
            Variable(component_ref(component, "Available", evse_id), BOOLEAN, "true", READ_ONLY),
            # 0: DC.
            Variable(component_ref(component, "SupplyPhases", evse_id), INTEGER, str(phases), READ_ONLY, 0, 3),
        ]

    ac_phases = [c.phases for c in config.connector if not c.dc]
    variables = common("ChargingStation", 0, max(ac_phases, default=0))
    for c in config.connector:
        phases = 0 if c.dc else c.phases
        rated = station.evses[c.id].limits.maximum
        watts = rated.watts if rated.watts is not None else (rated.amps or c.max_current) * NOMINAL_VOLTS * \
            max(phases, 1)
        variables += common("EVSE", c.id, phases)
        variables.append(Variable(component_ref("EVSE", "Power", c.id), INTEGER, "0", READ_ONLY, 0,
                                  math.ceil(watts), live=functools.partial(power, c.id)))
        variables += common("Connector", c.id, phases)
        # A socket has a PP resistor to read; a tethered cable has none.
        kind = _CONNECTOR_TYPES.get(c.kind, "sType2" if c.proximity.adc_channel is not None else "cType2")
        variables.append(Variable(component_ref("Connector", "ConnectorType", c.id), STRING, kind, READ_ONLY))
    return variables
