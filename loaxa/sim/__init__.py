"""Simulated hardware (MCU, GSM modem) on real ptys, for tests and demos."""
