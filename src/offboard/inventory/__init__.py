"""Inventory: every account in every system, the people sources, orphans and end-date sweeps."""
