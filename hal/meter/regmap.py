"""Modbus register maps as data files: which register holds which quantity, and how to decode it.

A map is a TOML file (``hal/meter/maps/<model>.toml`` or any path) with map-wide
defaults (``function``, ``type``, ``word_order``) and a ``[quantities]`` table.
Each quantity names an ``address`` (wire address, 0-based) and may override
the defaults and give a ``scale`` that converts the raw value to Wh, W, V or A,
and an ``exponent``: the address of a register holding its decimal exponent.
A DC meter's voltage and current take the ``voltage_l1`` and ``current_l1`` names.
"""

from __future__ import annotations

import math
import struct
import tomllib
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from hal.errors import HalConfigError, HalProtocolError

QUANTITIES = (
    "energy_import",
    "power",
    "voltage_l1",
    "voltage_l2",
    "voltage_l3",
    "current_l1",
    "current_l2",
    "current_l3",
)
#: What a map's [identity] table may name.
IDENTITY = ("serial",)
# struct format and register count per type.
TYPES: dict[str, tuple[str, int]] = {
    "float32": ("f", 2),
    "int32": ("i", 2),
    "uint32": ("I", 2),
    "int16": ("h", 1),
    "uint16": ("H", 1),
    "uint64": ("Q", 4),
    "int64": ("q", 4),
}
FUNCTIONS = {"input": 4, "holding": 3}
# One Modbus read returns at most 125 registers; gaps up to this size are read
# through rather than costing another round trip.
MAX_BLOCK = 125
MAX_GAP = 16


@dataclass(frozen=True)
class Register:
    """Where one quantity lives and how to decode it."""

    quantity: str
    address: int
    function: int
    type: str
    word_order: str
    scale: float
    #: A register holding a decimal exponent for this value (value = raw * 10 ** (exponent - 3) * scale), as
    #: DC meters such as the Acrel DJSF1352 keep them; None: a plain value.
    exponent: int | None = None

    @property
    def count(self) -> int:
        """Number of 16-bit registers the value spans."""
        return TYPES[self.type][1]

    @property
    def span(self) -> tuple[int, int]:
        """First and one-past-last address a read of this value must cover (its exponent register too)."""
        start, end = self.address, self.address + self.count
        if self.exponent is not None:
            start, end = min(start, self.exponent), max(end, self.exponent + 1)
        return start, end

    def decode_in(self, words: list[int], first: int) -> float:
        """Decode from a block read starting at address ``first``."""
        value = self.decode(words[self.address - first : self.address - first + self.count])
        if self.exponent is not None:
            value *= 10.0 ** (words[self.exponent - first] - 3)
        return value

    def decode(self, words: list[int]) -> float:
        """Decode this register's words to a scaled float; NaN/inf is a protocol error."""
        if self.word_order == "little":
            words = list(reversed(words))
        raw = struct.unpack(">" + TYPES[self.type][0], struct.pack(f">{len(words)}H", *words))[0]
        value = float(raw) * self.scale
        if not math.isfinite(value):
            raise HalProtocolError(f"meter sent a non-finite {self.quantity} ({raw})")
        return value


@dataclass(frozen=True)
class Block:
    """A contiguous read: function code, first address, count, and the registers inside."""

    function: int
    address: int
    count: int
    registers: tuple[Register, ...]


@dataclass(frozen=True)
class RegisterMap:
    """A meter model's register map."""

    name: str
    registers: dict[str, Register]
    #: Registers that say which meter this is (``serial``), read once at start.
    identity: dict[str, Register] = field(default_factory=dict)
    #: What the meter measures: "ac" (per phase) or "dc" (one voltage and current, in ``*_l1``).
    current: str = "ac"

    def blocks(self) -> list[Block]:
        """Group the registers into as few reads as the 125-register limit allows."""
        ordered = sorted(self.registers.values(), key=lambda r: (r.function, r.span))
        blocks: list[Block] = []
        current: list[Register] = []
        for reg in ordered:
            if current:
                first = current[0]
                end = max(r.span[1] for r in current)
                if (
                    reg.function == first.function
                    and reg.span[0] - end <= MAX_GAP
                    and reg.span[1] - first.span[0] <= MAX_BLOCK
                ):
                    current.append(reg)
                    continue
                blocks.append(_block(current))
            current = [reg]
        if current:
            blocks.append(_block(current))
        return blocks


def _block(regs: list[Register]) -> Block:
    start = min(r.span[0] for r in regs)
    end = max(r.span[1] for r in regs)
    return Block(regs[0].function, start, end - start, tuple(regs))


def load_register_map(model: str) -> RegisterMap:
    """Load a bundled map by model name (``sdm630``) or a map file by path."""
    if model.endswith(".toml") or "/" in model:
        path = Path(model)
        try:
            text = path.read_text()
        except OSError as exc:
            raise HalConfigError(f"cannot read register map {path}: {exc}") from exc
        source = str(path)
    else:
        resource = resources.files("hal.meter") / "maps" / f"{model}.toml"
        if not resource.is_file():
            raise HalConfigError(f"no bundled register map {model!r}; expected one of {', '.join(bundled_maps())}")
        text = resource.read_text()
        source = f"bundled map {model}"
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise HalConfigError(f"{source}: {exc}") from exc
    return parse_register_map(data, source)


def bundled_maps() -> list[str]:
    """Model names of the maps shipped with the package."""
    folder = resources.files("hal.meter") / "maps"
    return sorted(p.name.removesuffix(".toml") for p in folder.iterdir() if p.name.endswith(".toml"))


def parse_register_map(data: dict[str, Any], source: str) -> RegisterMap:
    """Validate a map's data; every problem names the quantity, key and expected value."""
    defaults = {
        "function": data.get("function", "input"),
        "type": data.get("type", "float32"),
        "word_order": data.get("word_order", "big"),
    }
    quantities = data.get("quantities")
    if not isinstance(quantities, dict) or "energy_import" not in quantities:
        raise HalConfigError(f"{source}: [quantities] must exist and define energy_import")
    registers = {name: _register(name, spec, defaults, f"{source}: quantities.{name}", QUANTITIES)
                 for name, spec in quantities.items()}
    identity = data.get("identity", {})
    if not isinstance(identity, dict):
        raise HalConfigError(f"{source}: identity: expected a table such as [identity] serial = {{ ... }}")
    ids = {name: _register(name, spec, defaults, f"{source}: identity.{name}", IDENTITY)
           for name, spec in identity.items()}
    current = data.get("current", "ac")
    if current not in ("ac", "dc"):
        raise HalConfigError(f"{source}: current = {current!r}: expected \"ac\" or \"dc\"")
    return RegisterMap(str(data.get("name", source)), registers, ids, current)


def _register(name: str, spec: Any, defaults: dict[str, Any], where: str, known: tuple[str, ...]) -> Register:
    if name not in known:
        raise HalConfigError(f"{where}: unknown name; expected one of {', '.join(known)}")
    if not isinstance(spec, dict):
        raise HalConfigError(f"{where}: expected a table such as {{ address = 0x48 }}")
    merged = {**defaults, **spec}
    address = merged.get("address")
    if not isinstance(address, int) or not 0 <= address <= 0xFFFF:
        raise HalConfigError(f"{where}.address = {address!r}: expected an integer 0-65535")
    if merged["function"] not in FUNCTIONS:
        raise HalConfigError(f"{where}.function = {merged['function']!r}: expected input or holding")
    if merged["type"] not in TYPES:
        raise HalConfigError(f"{where}.type = {merged['type']!r}: expected one of {', '.join(TYPES)}")
    if merged["word_order"] not in ("big", "little"):
        raise HalConfigError(f"{where}.word_order = {merged['word_order']!r}: expected big or little")
    scale = merged.get("scale", 1.0)
    if not isinstance(scale, int | float) or scale == 0:
        raise HalConfigError(f"{where}.scale = {scale!r}: expected a non-zero number")
    exponent = spec.get("exponent")
    if exponent is not None and (not isinstance(exponent, int) or not 0 <= exponent <= 0xFFFF):
        raise HalConfigError(f"{where}.exponent = {exponent!r}: expected the address (0-65535) of the register "
                             "holding the value's decimal exponent")
    return Register(name, address, FUNCTIONS[merged["function"]], merged["type"], merged["word_order"], float(scale),
                    exponent)
