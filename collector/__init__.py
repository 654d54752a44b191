"""loaxa collector."""
