"""collector health."""
