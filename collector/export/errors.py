"""The export's exception tree: one base, specific subclasses, low-level errors wrapped."""

from __future__ import annotations


class ExportError(Exception):
    """Base of every export failure."""


class SourceError(ExportError):
    """InfluxDB could not be queried (connection, HTTP status, InfluxQL error, bad JSON)."""


class OutputPathError(ExportError):
    """An output file name would land outside the output directory."""


class DeliveryError(ExportError):
    """The report could not be e-mailed or pushed upstream."""
