"""loaxa agent."""
