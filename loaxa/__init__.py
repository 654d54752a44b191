"""loaxa: monitoring for the commune loudspeaker radio network (shared contracts and CLI)."""

__version__ = "0.1.0"
