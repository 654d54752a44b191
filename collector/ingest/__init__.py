"""collector ingest."""
