"""The web layer: the HR webhook server, the auditors' pages and metrics."""
