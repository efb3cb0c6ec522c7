"""The local status API and page, the status file and the session history (read-only views of the charger)."""

from controller.api.publisher import StatusPublisher
from controller.api.server import StatusApi

__all__ = ["StatusApi", "StatusPublisher"]
