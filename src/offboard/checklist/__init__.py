"""Checklists: the human steps of a case (tasks, equipment returns, reminders) and the notices that go out."""
