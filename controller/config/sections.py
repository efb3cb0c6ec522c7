"""The config file's sections: station, OCPP, card reader, and each connector's AC devices.

A field's default is the value a missing key takes; its metadata (``opt``) says what a value may be.
The DC devices of a CHAdeMO or GB/T connector are in :mod:`controller.config.dc`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from controller.config.dc import CanSection, DcIoSection, DcPowerSection, ImdSection
from controller.config.fields import opt


@dataclass
class StationSection:
    """[station]: who the charger is and what it runs on."""

    id: str = "SIM-0001"
    vendor: str = "evse-controller"
    model: str = "AC-1"
    serial_number: str = ""
    hardware: str = opt("sim", choices=("sim", "pi"))
    state_dir: str = "/var/lib/evse"
    #: How often a running transaction's meter reading is written to disk (what a PowerLoss stop reports).
    #: Each write is an fsync: every 10 s spares SD cards while losing at most 10 s of billing on power loss.
    reading_persist_interval: float = opt(10.0, lo=0, hi=600)
    #: Amps per phase the site's supply allows all connectors together (0: no limit). Shared equally
    #: between the connectors with a transaction; one that would get less than 6 A waits (SuspendedEVSE).
    site_current_limit: float = opt(0.0, lo=0, hi=1000)
    #: The IANA time zone a Recurring charging profile repeats in: a daily profile for 17:00 stays at 17:00
    #: local time when daylight saving starts or ends.
    timezone: str = "UTC"


@dataclass
class OcppSection:
    """[ocpp]: the CSMS connection."""

    csms_url: str = ""
    version: str = opt("1.6", choices=("1.6", "2.0.1"))
    heartbeat_interval: int = opt(300, lo=1, hi=86400)
    meter_value_sample_interval: int = opt(60, lo=0, hi=86400)
    response_timeout: float = opt(30.0, lo=1, hi=600)
    connect_timeout: float = opt(10.0, lo=1, hi=600)
    #: The reconnect back-off: the first wait, and the most it doubles to. They are the defaults of
    #: OCPPCommCtrlr.RetryBackOffWaitMinimum / RetryBackOffRepeatTimes; reconnect_min stays the least wait
    #: whatever the CSMS sets.
    reconnect_min: float = opt(1.0, lo=0.05, hi=3600)
    reconnect_max: float = opt(60.0, lo=0.05, hi=3600)
    #: Security profile 1 and 2: HTTP Basic with the station id and this password (16-40 characters); the
    #: CSMS may change it (2.0.1 SecurityCtrlr.BasicAuthPassword). Empty: none.
    basic_auth_password: str = ""
    #: Security profile 2: the CA certificate (PEM) a wss:// CSMS's certificate must chain to. Empty: the
    #: system's trust store. CSMS roots the CSMS installs (InstallCertificate) are trusted too.
    ca_file: str = ""
    #: Security profile 3: the station's first client certificate (PEM chain) and its key. A certificate the
    #: CSMS signs later (SignCertificate / CertificateSigned) replaces them in the state directory.
    client_cert_file: str = ""
    client_key_file: str = ""
    #: The security profile to connect with: 0-3, or -1 to infer it (2 for wss:// with a password, 3 for
    #: wss:// with a client certificate, 1 for ws:// with a password, else 0). The CSMS may raise it.
    security_profile: int = opt(-1, lo=-1, hi=3)


@dataclass
class FirmwareSection:
    """[firmware]: how the CSMS's firmware updates install (releases of this package, see the README)."""

    #: Where releases live: ``releases/<name>/`` virtual environments, the ``current`` link the service starts
    #: and the guard that rolls a failed one back (the installer sets /opt/evse). Empty: updates are refused.
    releases_dir: str = ""
    #: How long a new release has to reach an Accepted BootNotification before it is rolled back.
    trial_seconds: float = opt(600.0, lo=30, hi=86400)
    #: The manufacturer's root certificate (PEM) firmware signing certificates must lead to, provisioned with
    #: the station; roots the CSMS installs (ManufacturerRootCertificate) count too. Empty: only those.
    manufacturer_root_file: str = ""


@dataclass
class SimSection:
    """[sim]: with ``station.hardware = "sim"``, buses served from outside the daemon instead of by its simulators."""

    #: "meter": every AC connector's meter is the one its [connector.meter] names (a bench's meter simulator in
    #: another process, or a real meter on an adapter); "rfid": the reader is the one [rfid] names. The pilot,
    #: the contactor and the other pins stay simulated in the daemon (mock GPIO does not cross processes).
    external: list[str] = opt([], choices=("meter", "rfid"))


@dataclass
class ApiSection:
    """[api]: the local status API and page (read-only), and the session history it shows."""

    #: "HOST:PORT" to serve on (empty: no API); 127.0.0.1 keeps it on the charger itself.
    listen: str = ""
    #: When set, every request must carry it (``Authorization: Bearer TOKEN`` or ``?token=TOKEN``).
    token: str = ""
    #: Ended sessions are kept this many days in <state_dir>/sessions.sqlite3 (API or not).
    history_days: int = opt(90, lo=1, hi=3650)


@dataclass
class RfidSection:
    """[rfid]: the card reader shared by all connectors."""

    driver: str = opt("pn532", choices=("pn532", "rdm6300", "none"))
    port: str = "/dev/serial0"
    baudrate: int | None = opt(None, choices=(2400, 4800, 9600, 19200, 38400, 57600, 115200, 230400))
    #: PN532: how often the field is polled while a card stays in it (its leaving is seen within one poll);
    #: with no card the PN532 itself waits for one.
    poll_interval: float = opt(0.1, lo=0.01, hi=5)


@dataclass
class PilotSection:
    """[connector.pilot]: PWM pin and the ADC that reads the pilot voltage."""

    #: "pwm": the SoC's hardware PWM through the kernel's pwm class (GPIO12/13/18/19, dtoverlay=pwm or
    #: pwm-2chan); "gpio": gpiozero's PWM, timed in software, on any pin (the pilot's duty jitters with load).
    driver: str = opt("gpio", choices=("gpio", "pwm", "evsewb", "rapi"))
    pwm_pin: int = opt(18, lo=0, hi=27)
    pwm_active_high: bool = True
    #: Hardware PWM: the pwmchip and channel under /sys/class/pwm. The channel defaults to the pin's on a
    #: Pi 4 or earlier (GPIO12/18: 0, GPIO13/19: 1); a Pi 5 on a kernel before 6.12 has the chip at 2, and
    #: its GPIO18/19 are channels 2/3.
    pwm_chip: int = opt(0, lo=0, hi=15)
    pwm_channel: int | None = opt(None, lo=0, hi=3)
    adc_channel: int = opt(0, lo=0, hi=7)
    #: MCP3008 channel on the low-half (negative peak) detector; the diode check needs it.
    adc_low_channel: int | None = opt(None, lo=0, hi=7)
    spi_port: int = opt(0, lo=0, hi=1)
    spi_device: int = opt(0, lo=0, hi=1)
    adc_volts_at_zero: float = -15.0
    adc_volts_at_full: float = 15.0
    #: The pilot's poll period (s) while a reading waits for its debounce or a diode check for its result.
    poll_interval: float = opt(0.002, lo=0.0005, hi=0.05)
    #: The poll period (s) once the state and the diode check are confirmed: a change (a vehicle stopping, a CP
    #: short) is seen within one of these and confirmed at ``poll_interval``; never below ``poll_interval``.
    steady_interval: float = opt(0.02, lo=0.0005, hi=0.05)
    debounce_samples: int = opt(2, lo=1, hi=50)
    #: A pilot read in no state's band, or not read at all, for this long (s) is a fault (a dead or stuck ADC).
    invalid_after: float = opt(0.02, lo=0.002, hi=1.0)
    #: The site ventilates (state D may charge); without it state D is a fault.
    ventilation: bool = False
    #: How long an EV may stay in C after the PWM is withdrawn before the contactor opens under load (IEC: 6 s).
    ev_stop_timeout: float = opt(6.0, lo=0.05, hi=6)
    #: Wake an EV that sits in B2 this long (s) with a state-F pulse; 0 disables the wake-up.
    wakeup_after: float = opt(0.0, lo=0, hi=3600)


@dataclass
class ContactorSection:
    """[connector.contactor]: coil output and optional mirror contact ("evsewb": the board's relay)."""

    driver: str = opt("gpio", choices=("gpio", "evsewb", "rapi"))
    pin: int = opt(17, lo=0, hi=27)
    active_high: bool = True
    mirror_pin: int | None = opt(None, lo=0, hi=27)
    mirror_type: str = opt("nc", choices=("nc", "no"))
    #: How long the mirror contact may lag the coil before a mismatch is a fault (contactor release time).
    feedback_delay: float = opt(0.2, lo=0.02, hi=2)
    #: Close and open once at start-up (only with no vehicle connected) to prove the mirror contact follows.
    self_test: bool = True


#: Drivers of EVSE boards that own the pilot and the relay.
BOARD_DRIVERS = ("evsewb", "rapi")


@dataclass
class BoardSection:
    """[connector.board]: an EVSE board that owns the pilot and the relay: pilot, contactor and rcm driver
    "evsewb" (the Modbus EVSE-WB / EVSE-DIN boards, 9600 8N1 address 1 from the factory) or "rapi" (OpenEVSE's
    serial protocol, 115200 8N1)."""

    transport: str = opt("rtu", choices=("rtu", "tcp"))
    port: str = "/dev/ttyUSB0"
    #: Default: the board's own (9600 for evsewb, 115200 for rapi).
    baudrate: int | None = opt(None, choices=(2400, 4800, 9600, 19200, 38400, 57600, 115200))
    parity: str = opt("N", choices=("N", "E", "O"))
    address: int = opt(1, lo=1, hi=247)
    host: str = "127.0.0.1"
    tcp_port: int = opt(502, lo=1, hi=65535)
    timeout: float = opt(0.3, lo=0.05, hi=5)
    #: How often the board's state is read (s); its relay and vehicle state are as fresh as this.
    poll_interval: float = opt(0.1, lo=0.02, hi=2)


@dataclass
class ProximitySection:
    """[connector.proximity]: a socket's PP-PE resistor read through the pilot's MCP3008."""

    driver: str = opt("mcp3008", choices=("mcp3008",))
    #: MCP3008 channel of the PP divider; unset for a tethered cable (no PP to read).
    adc_channel: int | None = opt(None, lo=0, hi=7)
    #: The divider's pull-up from Vref to PP, in ohms.
    pullup_ohms: float = opt(1000.0, lo=50, hi=100000)


@dataclass
class RcmSection:
    """[connector.rcm]: a residual current monitor (6 mA DC / 30 mA AC) on GPIO, or an EVSE board's RCD input."""

    driver: str = opt("none", choices=("none", "gpio", "evsewb", "rapi"))
    fault_pin: int = opt(5, lo=0, hi=27)
    fault_active_high: bool = True
    test_pin: int = opt(6, lo=0, hi=27)
    test_active_high: bool = True
    #: How long the module may take to trip once its test input is driven, and to release after.
    test_timeout: float = opt(1.0, lo=0.01, hi=15)
    release_timeout: float = opt(1.5, lo=0.01, hi=15)
    #: Repeat the self-test this often while idle (IEC 62955 asks for at least once a day).
    selftest_interval: float = opt(86400.0, lo=1, hi=86400)
    #: Re-close after a trip without an unplug, after ``reclose_delay`` s, at most ``reclose_attempts`` times.
    auto_reclose: bool = False
    reclose_delay: float = opt(300.0, lo=0.05, hi=3600)
    reclose_attempts: int = opt(3, lo=1, hi=10)


@dataclass
class LockSection:
    """[connector.lock]: a socket's cable lock motor (H-bridge on two pins) with a feedback switch."""

    driver: str = opt("none", choices=("none", "gpio"))
    lock_pin: int = opt(12, lo=0, hi=27)
    unlock_pin: int = opt(13, lo=0, hi=27)
    feedback_pin: int = opt(16, lo=0, hi=27)
    #: The feedback switch reads high when locked (else low when locked).
    feedback_active_high: bool = True
    #: Motor pulse length; the feedback must show the new position by its end.
    pulse: float = opt(0.3, lo=0.01, hi=3)
    #: At least this long between two moves (the motor is not rated for continuous duty).
    min_interval: float = opt(1.0, lo=0, hi=60)


@dataclass
class LedSection:
    """[connector.led]: an RGB status LED."""

    driver: str = opt("none", choices=("none", "gpio"))
    red_pin: int = opt(22, lo=0, hi=27)
    green_pin: int = opt(23, lo=0, hi=27)
    blue_pin: int = opt(24, lo=0, hi=27)
    active_high: bool = True


@dataclass
class TemperatureSection:
    """[connector.temperature]: a temperature input (1-Wire sensor file, millidegrees Celsius)."""

    driver: str = opt("none", choices=("none", "w1"))
    path: str = "/sys/bus/w1/devices/28-000000000000/temperature"
    #: The GPIO of the 1-Wire bus (dtoverlay=w1-gpio,gpiopin=N; 4 unless the overlay says otherwise).
    w1_pin: int = opt(4, lo=0, hi=27)
    poll_interval: float = opt(5.0, lo=0.01, hi=600)
    #: At or above ``derate_at`` the offer drops to ``derate_current``; at ``stop_at`` charging stops.
    derate_at: float = opt(60.0, lo=-40, hi=150)
    derate_current: float = opt(10.0, lo=6, hi=80)
    stop_at: float = opt(75.0, lo=-40, hi=150)
    #: Both levels clear this many degrees below where they set in.
    hysteresis: float = opt(5.0, lo=0, hi=30)


@dataclass
class MeterSection:
    """[connector.meter]: the energy meter and its bus."""

    driver: str = opt("modbus", choices=("modbus",))
    model: str = "sdm630"
    transport: str = opt("rtu", choices=("rtu", "tcp"))
    port: str = "/dev/ttyUSB0"
    baudrate: int = opt(9600, choices=(1200, 2400, 4800, 9600, 19200, 38400, 57600, 115200))
    parity: str = opt("N", choices=("N", "E", "O"))
    stopbits: int = opt(1, choices=(1, 2))
    bytesize: int = opt(8, choices=(7, 8))
    host: str = "127.0.0.1"
    tcp_port: int = opt(502, lo=1, hi=65535)
    address: int = opt(1, lo=1, hi=247)
    timeout: float = opt(0.5, lo=0.05, hi=10)
    poll_interval: float = opt(1.0, lo=0.1, hi=60)
    #: No good reading for this long means the meter is lost.
    loss_timeout: float = opt(5.0, lo=0.2, hi=600)
    #: A lost meter stops the session ("stop"), or charging goes on with the fault flagged ("continue").
    loss_policy: str = opt("stop", choices=("stop", "continue"))


@dataclass
class ConnectorSection:
    """[[connector]]: one charging outlet."""

    id: int = opt(1, lo=1, hi=16)
    #: "ac": IEC 61851 with a control pilot; "chademo" or "gbt": DC over CAN (the DC sections below).
    kind: str = opt("ac", choices=("ac", "chademo", "gbt"))
    #: Amps per phase (AC, 6-80) or DC amps at the outlet (DC).
    max_current: float = opt(32.0, lo=1, hi=1000)
    phases: int = opt(3, choices=(1, 3))
    #: Measured current above the offer by more than this margin (A) for ``overcurrent_grace`` s lowers
    #: the offer; overdrawing for a second grace period stops the session.
    overcurrent_margin: float = opt(2.0, lo=0.5, hi=20)
    overcurrent_grace: float = opt(7.0, lo=0.05, hi=60)
    pilot: PilotSection = opt(PilotSection())
    board: BoardSection = opt(BoardSection())
    proximity: ProximitySection = opt(ProximitySection())
    contactor: ContactorSection = opt(ContactorSection())
    meter: MeterSection = opt(MeterSection())
    rcm: RcmSection = opt(RcmSection())
    lock: LockSection = opt(LockSection())
    led: LedSection = opt(LedSection())
    temperature: TemperatureSection = opt(TemperatureSection())
    can: CanSection = opt(CanSection())
    dc_power: DcPowerSection = opt(DcPowerSection())
    imd: ImdSection = opt(ImdSection())
    dc_io: DcIoSection = opt(DcIoSection())

    @property
    def dc(self) -> bool:
        """A DC connector (CHAdeMO or GB/T)."""
        return self.kind != "ac"

    @property
    def on_board(self) -> bool:
        """An EVSE board owns this connector's pilot and relay (``[connector.board]``)."""
        return self.pilot.driver in BOARD_DRIVERS


@dataclass
class Config:
    """The whole configuration."""

    station: StationSection = opt(StationSection())
    ocpp: OcppSection = opt(OcppSection())
    rfid: RfidSection = opt(RfidSection())
    firmware: FirmwareSection = opt(FirmwareSection())
    api: ApiSection = opt(ApiSection())
    sim: SimSection = opt(SimSection())
    connector: list[ConnectorSection] = opt([])
    #: Where the config came from (not a key in the file).
    source: str = field(default="<defaults>", metadata={"internal": True})
