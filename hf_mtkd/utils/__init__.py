"""Small helpers every layer may use: atomic file writes, sums pooled over processes."""
