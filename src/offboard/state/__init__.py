"""State: the one schema, the store that owns it, and its migrations."""
