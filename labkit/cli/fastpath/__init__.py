"""``labkit run --rm`` the short way, kept apart because it exists for speed (see README.md here)."""
