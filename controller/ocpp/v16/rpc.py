"""OCPP-J 1.6 framing checks for what the CSMS sends, with the 1.6 CALLERROR codes and spellings.

The ``ocpp`` package gives an unparseable frame no answer, swaps
NotImplemented (action not known) and NotSupported (known, not supported) and
uses 2.x spellings. Every incoming frame is checked here first; a CALL that
fails gets the CALLERROR OCPP-J 1.6 section 4.2.3 prescribes:

- not JSON, not an array of the right shape, unexpected properties: FormationViolation;
- a required field missing, an array too long or short: OccurenceConstraintViolation;
- a field of the wrong type or too long: TypeConstraintViolation;
- a value outside its enumeration or range: PropertyConstraintViolation;
- an action 1.6 does not define: NotImplemented; one it defines that this station does not handle: NotSupported.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from jsonschema.exceptions import ValidationError, best_match
from ocpp.messages import get_validator
from ocpp.v16.enums import Action

CALL, CALLRESULT, CALLERROR = 2, 3, 4
_ACTIONS = {a.value for a in Action}
_ID = re.compile(r'^\s*\[\s*2\s*,\s*"([^"]{1,36})"')
_CODES = {
    "type": "TypeConstraintViolation",
    "maxLength": "TypeConstraintViolation",
    "required": "OccurenceConstraintViolation",
    "minItems": "OccurenceConstraintViolation",
    "maxItems": "OccurenceConstraintViolation",
    "additionalProperties": "FormationViolation",
}


@dataclass(frozen=True)
class CallError:
    """A CALLERROR to send back."""

    unique_id: str
    code: str
    description: str

    def to_json(self) -> str:
        """The frame as text."""
        return json.dumps([CALLERROR, self.unique_id, self.code, self.description, {}])


@dataclass(frozen=True)
class Inspected:
    """A frame that passed: its type, and for a CALL its id and action."""

    message_type: int
    unique_id: str
    action: str | None


def inspect(raw: str | bytes, handled: set[str]) -> Inspected | CallError | None:
    """Check one frame. None: ignore it (an unknown message type, as OCPP-J says)."""
    try:
        message = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        text = raw.decode(errors="replace") if isinstance(raw, bytes) else raw
        found = _ID.match(text)
        return CallError(found.group(1) if found else "-1", "FormationViolation", "message is not valid JSON")
    if not isinstance(message, list) or not message or not isinstance(message[0], int):
        return CallError("-1", "FormationViolation", "expected [MessageTypeId, UniqueId, ...]")
    kind = message[0]
    if kind not in (CALL, CALLRESULT, CALLERROR):
        return None
    if len(message) < 3:
        unique = message[1] if len(message) > 1 and isinstance(message[1], str) else "-1"
        return CallError(unique, "FormationViolation", "expected [MessageTypeId, UniqueId, ...]")
    unique_id = message[1]
    if not isinstance(unique_id, str) or not 1 <= len(unique_id) <= 36:
        return CallError("-1", "FormationViolation", "UniqueId must be a string of 1-36 characters")
    if kind != CALL:
        return Inspected(kind, unique_id, None)
    if len(message) != 4 or not isinstance(message[2], str) or not isinstance(message[3], dict):
        return CallError(unique_id, "FormationViolation", "a CALL is [2, UniqueId, Action, {payload}]")
    action, payload = message[2], message[3]
    if action not in _ACTIONS:
        return CallError(unique_id, "NotImplemented", f"action {action!r} is not an OCPP 1.6 action")
    if action not in handled:
        return CallError(unique_id, "NotSupported", f"action {action} is not supported by this station")
    problem = _schema_problem(action, payload)
    if problem is not None:
        return CallError(unique_id, *problem)
    return Inspected(kind, unique_id, action)


def _schema_problem(action: str, payload: dict[str, Any]) -> tuple[str, str] | None:
    validator = get_validator(CALL, action, "1.6")
    error: ValidationError | None = best_match(validator.iter_errors(payload))
    if error is None:
        return _range_problem(payload)
    code = _CODES.get(str(error.validator), "PropertyConstraintViolation")
    where = "/".join(str(p) for p in error.absolute_path) or "payload"
    return code, f"{where}: {error.message}"


# Integer fields the 1.6 schemas leave unbounded but that can never be negative.
_NON_NEGATIVE = {"connectorId", "reservationId", "transactionId", "listVersion", "duration", "retries",
                 "retryInterval", "chargingProfileId", "stackLevel"}


def _range_problem(node: Any, path: str = "payload") -> tuple[str, str] | None:
    if isinstance(node, dict):
        for key, value in node.items():
            if key in _NON_NEGATIVE and isinstance(value, int) and value < 0:
                return "PropertyConstraintViolation", f"{path}/{key}: {value} is below 0"
            found = _range_problem(value, f"{path}/{key}")
            if found:
                return found
    elif isinstance(node, list):
        for i, value in enumerate(node):
            found = _range_problem(value, f"{path}/{i}")
            if found:
                return found
    return None
