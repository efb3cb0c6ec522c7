"""The charging domain: connector state machines, safety supervisor, OCPP client, app and CLI."""
