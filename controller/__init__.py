"""The charging domain: connector state machines, safety supervisor, OCPP client, app and CLI."""

from __future__ import annotations


def version() -> str:
    """This package's version, as installed."""
    from importlib.metadata import PackageNotFoundError
    from importlib.metadata import version as installed

    try:
        return installed("evse-controller")
    except PackageNotFoundError:
        return "unknown (not installed)"
