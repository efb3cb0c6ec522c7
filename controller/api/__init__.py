"""The local status API and page, the status file and the session history (read-only views of the charger).

``controller.api.server`` (aiohttp) is imported only by a charger that serves the API.
"""
