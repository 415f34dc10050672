"""Intake: HR termination events, their adapters, durable and idempotent processing."""
