"""The hardware-in-the-loop bench: simulators for the far end of every bus, scripts, scenarios, benchmarks."""
