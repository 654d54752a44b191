"""`loaxa demo`: the whole system on one machine, with a simulated Cao Bằng fleet."""
