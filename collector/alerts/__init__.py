"""collector alerts."""
