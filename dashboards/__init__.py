"""loaxa dashboards."""
