"""One exception tree for every HAL role.

Each error also inherits the matching builtin so callers that only know the
standard library (``TimeoutError``, ``ValueError``) still catch it.
"""


class HalError(Exception):
    """Base class of every hardware error."""


class HalConfigError(HalError, ValueError):
    """A driver was given settings it cannot use (unknown driver, bad pin, bad map)."""


class HalTimeoutError(HalError, TimeoutError):
    """A device did not answer in time."""


class HalProtocolError(HalError, ValueError):
    """A device sent a frame that could not be understood."""


class HalIOError(HalError, OSError):
    """The bus itself failed (port missing, connection refused)."""
