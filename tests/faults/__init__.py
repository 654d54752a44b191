"""Fault-injection suite (issue 5): each case injects a real fault and records its figures."""
