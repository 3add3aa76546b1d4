"""The same application run on different orchestrators, step for step, for side-by-side tables."""
