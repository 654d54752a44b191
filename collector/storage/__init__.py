"""collector storage."""
