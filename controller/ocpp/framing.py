"""OCPP-J frame checks for what the CSMS sends, and schema checks for what the station sends, for every version.

Every incoming frame is parsed and checked here before the ``ocpp`` package routes it, because that package
gives an unparseable frame no answer, validates a decimal against ``multipleOf`` with binary floats (``21.4`` is
"not a multiple of 0.1"), and meets ``16.0`` in a charging profile with ``Decimal / float``. Here:

- the text is parsed strictly: ``NaN``/``Infinity`` are not JSON, a binary frame is not OCPP-J, nesting is bounded
  (a 1,000-level payload is refused, not a RecursionError), numbers must be finite;
- strings must be valid Unicode (a lone surrogate is refused, so it is never applied or stored);
- the schema of the ``ocpp`` package's JSON files is applied with decimals parsed exactly (a payload first meets
  a compiled fastjsonschema check; only one that fails it, or a schema with ``multipleOf``, takes jsonschema's
  slower exact path, which says what is wrong);
- a CALL that fails gets the CALLERROR its version prescribes, with a bounded description.

A CALLRESULT or CALLERROR is checked for shape only; whether the station asked for it is the connection's call.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from decimal import Decimal
from functools import cache
from importlib import resources
from typing import Any

import fastjsonschema
from jsonschema import Draft4Validator
from jsonschema.exceptions import ValidationError, best_match

CALL, CALLRESULT, CALLERROR = 2, 3, 4
#: Deepest nesting any OCPP payload needs, with room to spare (1.6 SetChargingProfile needs 6).
MAX_DEPTH = 24
#: CALLERROR descriptions and logged values are cut to this many characters.
MAX_DESCRIPTION = 200
_ID = re.compile(r'^\s*\[\s*2\s*,\s*"([^"]{1,36})"')


@dataclass(frozen=True)
class Codes:
    """How one OCPP version spells its CALLERROR codes."""

    formation: str
    occurrence: str
    type: str
    property: str
    not_implemented: str
    not_supported: str


CODES_16 = Codes("FormationViolation", "OccurenceConstraintViolation", "TypeConstraintViolation",
                 "PropertyConstraintViolation", "NotImplemented", "NotSupported")
CODES_201 = Codes("FormatViolation", "OccurrenceConstraintViolation", "TypeConstraintViolation",
                  "PropertyConstraintViolation", "NotImplemented", "NotSupported")


@dataclass(frozen=True)
class CallError:
    """A CALLERROR to send back (``unique_id`` "-1" when the frame's own could not be read)."""

    unique_id: str
    code: str
    description: str

    def to_json(self) -> str:
        """The frame as text."""
        return json.dumps([CALLERROR, self.unique_id, self.code, self.description, {}])


@dataclass(frozen=True)
class Frame:
    """A frame that passed: its type, id, and for a CALL its action and payload; for a CALLERROR its code."""

    message_type: int
    unique_id: str
    action: str | None = None
    payload: Any = None
    error_code: str | None = None


class Rules:
    """The checks of one OCPP version: its actions, its schemas, its error spellings."""

    def __init__(self, version: str, schema_dir: str, actions: set[str], codes: Codes,
                 request_suffix: str = "", non_negative: frozenset[str] = frozenset()) -> None:
        self.version = version
        self.codes = codes
        #: Integer fields the schemas leave unbounded but that can never be negative (ids, counts).
        self._non_negative = non_negative
        self._schema_dir = schema_dir
        self._actions = actions
        self._request_suffix = request_suffix

    def inspect(self, raw: str | bytes, handled: set[str]) -> Frame | CallError | None:
        """Check one incoming frame. None: ignore it (an unknown message type, as OCPP-J says).

        A CALLRESULT or CALLERROR is never answered: a malformed one comes back with ``payload`` (or
        ``error_code``) None, for the connection to treat as a failed answer or to drop.
        """
        c = self.codes
        if isinstance(raw, bytes):
            found = _ID.match(raw.decode(errors="replace"))
            return CallError(found.group(1), c.formation, "binary frame: OCPP-J uses text frames") if found else None
        try:
            message = json.loads(raw, parse_float=Decimal, parse_constant=_no_constant)
        except (ValueError, RecursionError):
            found = _ID.match(raw)
            return CallError(found.group(1) if found else "-1", c.formation, "message is not valid JSON")
        if not isinstance(message, list) or not message or type(message[0]) is not int:
            return CallError("-1", c.formation, "expected [MessageTypeId, UniqueId, ...]")
        kind = message[0]
        if kind not in (CALL, CALLRESULT, CALLERROR):
            return None
        unique = message[1] if len(message) > 1 and isinstance(message[1], str) and 1 <= len(message[1]) <= 36 \
            else None
        problem = self._deep_problem(message)
        if kind == CALLRESULT:
            ok = unique is not None and len(message) == 3 and isinstance(message[2], dict) and problem is None
            return None if unique is None else Frame(kind, unique, payload=message[2] if ok else None)
        if kind == CALLERROR:
            ok = unique is not None and len(message) == 5 and isinstance(message[2], str) and problem is None
            return None if unique is None else Frame(kind, unique, payload=message[3] if ok else None,
                                                     error_code=message[2] if ok else None)
        if unique is None:
            return CallError("-1", c.formation, "UniqueId must be a string of 1-36 characters")
        if len(message) != 4 or not isinstance(message[2], str) or not isinstance(message[3], dict):
            return CallError(unique, c.formation, "a CALL is [2, UniqueId, Action, {payload}]")
        if problem is not None:
            return CallError(unique, *problem)
        action, payload = message[2], message[3]
        if action not in self._actions:
            return CallError(unique, c.not_implemented,
                             bounded(f"action {action!r} is not an OCPP {self.version} action"))
        if action not in handled:
            return CallError(unique, c.not_supported, f"action {action} is not supported by this station")
        invalid = self.schema_problem(action + self._request_suffix, payload)
        return CallError(unique, *invalid) if invalid else Frame(kind, unique, action, payload)

    def request_problem(self, action: str, payload: dict[str, Any]) -> str | None:
        """What is wrong with a request the station is about to send (None: nothing)."""
        found = self.schema_problem(action + self._request_suffix, payload, ranges=False)
        return found[1] if found else None

    def result_problem(self, action: str, payload: Any) -> str | None:
        """What is wrong with the CSMS's answer to the station's request (None: nothing)."""
        found = self.schema_problem(action + "Response", payload, ranges=False)
        return found[1] if found else None

    def _deep_problem(self, message: Any) -> tuple[str, str] | None:
        """Nesting, non-finite numbers and strings that are not Unicode, found without recursion."""
        # Paths start inside each element of the frame (the payload's own field names).
        stack: list[tuple[Any, int, str]] = [(node, 1, "") for node in message]
        while stack:
            node, depth, path = stack.pop()
            if depth > MAX_DEPTH:
                return self.codes.formation, f"nested deeper than {MAX_DEPTH} levels"
            if isinstance(node, dict):
                for key, value in node.items():
                    if not _unicode(key):
                        return self.codes.type, f"{path.lstrip('/') or 'payload'}: a key is not valid Unicode"
                    stack.append((value, depth + 1, f"{path}/{key}"))
            elif isinstance(node, list):
                stack.extend((value, depth + 1, f"{path}/{i}") for i, value in enumerate(node))
            elif isinstance(node, str) and not _unicode(node):
                return self.codes.type, bounded(f"{path.lstrip('/') or 'payload'}: not valid Unicode (lone surrogate)")
            elif isinstance(node, Decimal | float) and not math.isfinite(float(node)):
                return self.codes.type, bounded(f"{path.lstrip('/') or 'payload'}: number out of range")
        return None

    def _range_problem(self, payload: Any) -> tuple[str, str] | None:
        stack: list[tuple[Any, str]] = [(payload, "payload")]
        while stack:
            node, path = stack.pop()
            if isinstance(node, dict):
                for key, value in node.items():
                    if key in self._non_negative and type(value) is int and value < 0:
                        return self.codes.property, f"{path}/{key}: {value} is below 0"
                    stack.append((value, f"{path}/{key}"))
            elif isinstance(node, list):
                stack.extend((value, f"{path}/{i}") for i, value in enumerate(node))
        return None

    def schema_problem(self, schema: str, payload: Any, *, ranges: bool = True) -> tuple[str, str] | None:
        """The CALLERROR code and description for a payload that breaks its schema, or None.

        ``ranges`` also refuses negative ids: what the CSMS sends may not have them, but the station itself
        sends transactionId -1 for a start that was never confirmed (1.6 errata).
        """
        quick = _quick_validator(self._schema_dir, schema)
        if quick is not None:
            try:
                quick(payload)
            except fastjsonschema.JsonSchemaException:
                pass  # the exact check below says what is wrong
            else:
                return self._range_problem(payload) if ranges else None
        error: ValidationError | None = best_match(_validator(self._schema_dir, schema).iter_errors(_exact(payload)))
        if error is None:
            return self._range_problem(payload) if ranges else None
        c = self.codes
        code = {"type": c.type, "maxLength": c.type, "required": c.occurrence, "minItems": c.occurrence,
                "maxItems": c.occurrence, "additionalProperties": c.formation}.get(str(error.validator), c.property)
        where = "/".join(str(p) for p in error.absolute_path) or "payload"
        return code, bounded(f"{where}: {error.message}")


def bounded(text: str) -> str:
    """``text`` cut to :data:`MAX_DESCRIPTION` characters, so a huge bad value is never echoed whole."""
    return text if len(text) <= MAX_DESCRIPTION else text[:MAX_DESCRIPTION - 3] + "..."


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _unicode(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _exact(payload: Any) -> Any:
    # The station's own floats, as decimals: 21.4 checks as a multiple of 0.1 (a decimal parsed exactly stays one).
    return json.loads(json.dumps(payload, default=float), parse_float=Decimal)


@cache
def _quick_validator(schema_dir: str, schema: str) -> Any:
    """The schema compiled by fastjsonschema, or None where binary floats could misjudge it (``multipleOf``)."""
    text = (resources.files("ocpp") / schema_dir / f"{schema}.json").read_text(encoding="utf-8-sig")
    # use_default=False: a check must not fill in the schema's defaults (it would change what is sent).
    return None if "multipleOf" in text else fastjsonschema.compile(json.loads(text), use_default=False)


@cache
def _validator(schema_dir: str, schema: str) -> Draft4Validator:
    # The ocpp package's schema files, parsed with exact decimals (multipleOf 0.1).
    text = (resources.files("ocpp") / schema_dir / f"{schema}.json").read_text(encoding="utf-8-sig")
    return Draft4Validator(json.loads(text, parse_float=Decimal))
