"""The EVSE machine's table: every status and every move between them an EVSE may make."""

from __future__ import annotations

from controller.domain.types import EvseStatus

S = EvseStatus
_ENERGY = [S.CHARGING.value, S.SUSPENDED_EV.value, S.SUSPENDED_EVSE.value]
_SESSION = [S.PREPARING.value, *_ENERGY]

STATES = [S.AVAILABLE, S.PREPARING, S.CHARGING, S.SUSPENDED_EV, S.SUSPENDED_EVSE, S.FINISHING, S.FAULTED,
          S.UNAVAILABLE, S.RESERVED]

TRANSITIONS: list[dict[str, object]] = [
    {"trigger": "plug", "source": S.AVAILABLE.value, "dest": S.PREPARING.value},
    {"trigger": "present", "source": [S.AVAILABLE.value, S.RESERVED.value], "dest": S.PREPARING.value},
    {"trigger": "reserve", "source": S.AVAILABLE.value, "dest": S.RESERVED.value},
    {"trigger": "unreserve", "source": S.RESERVED.value, "dest": S.AVAILABLE.value},
    {"trigger": "cancel", "source": S.PREPARING.value, "dest": S.AVAILABLE.value},
    {"trigger": "charge", "source": [S.PREPARING.value, S.SUSPENDED_EV.value, S.SUSPENDED_EVSE.value],
     "dest": S.CHARGING.value},
    {"trigger": "suspend_ev", "source": [S.PREPARING.value, S.CHARGING.value, S.SUSPENDED_EVSE.value],
     "dest": S.SUSPENDED_EV.value},
    {"trigger": "suspend_evse", "source": [S.PREPARING.value, S.CHARGING.value, S.SUSPENDED_EV.value],
     "dest": S.SUSPENDED_EVSE.value},
    {"trigger": "finish", "source": _SESSION, "dest": S.FINISHING.value},
    {"trigger": "unplug", "source": [*_SESSION, S.FINISHING.value], "dest": S.AVAILABLE.value},
    {"trigger": "fail", "source": [*_SESSION, S.AVAILABLE.value, S.FINISHING.value, S.RESERVED.value],
     "dest": S.FAULTED.value},
    {"trigger": "recover", "source": S.FAULTED.value, "dest": S.AVAILABLE.value},
    {"trigger": "disable",
     "source": [S.AVAILABLE.value, S.PREPARING.value, S.FINISHING.value, S.FAULTED.value, S.RESERVED.value],
     "dest": S.UNAVAILABLE.value},
    {"trigger": "enable", "source": S.UNAVAILABLE.value, "dest": S.AVAILABLE.value},
]
