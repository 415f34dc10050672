"""Configuration, policies, secret references, paths and logging: what every subsystem reads."""
