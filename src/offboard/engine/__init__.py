"""The engine: cases, planning, applying actions with retries and rate limits, the recorder, distributed execution."""
