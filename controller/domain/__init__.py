"""The vocabulary every layer shares: statuses, reasons, tokens, limits, answers, faults and events."""
