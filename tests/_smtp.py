"""A real SMTP server (aiosmtpd) on a free loopback port, keeping what it receives."""

from __future__ import annotations

import email
import socket
import time
from email import policy as email_policy

import pytest


class Inbox:
    """An aiosmtpd handler keeping every message it receives."""

    def __init__(self):
        self.messages: list[tuple[list[str], email.message.EmailMessage]] = []

    async def handle_DATA(self, server, session, envelope):
        self.messages.append(
            (list(envelope.rcpt_tos), email.message_from_bytes(envelope.content, policy=email_policy.default))
        )
        return "250 OK"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def smtp():
    """A started SMTP server; ``smtp.port`` to send to, ``smtp.messages`` what arrived."""
    from aiosmtpd.controller import Controller

    inbox = Inbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=free_port())
    controller.start()
    inbox.port = controller.port
    yield inbox
    controller.stop()


def mail_notifier(inbox: Inbox, *events: str) -> dict:
    """The ``notifiers:`` section of a config: one email notifier for ``events``, sending to ``inbox``."""
    return {
        "mail": {
            "type": "email",
            "events": list(events),
            "settings": {
                "host": "127.0.0.1",
                "port": inbox.port,
                "security": "none",
                "sender": "offboard@corp.example",
                "to": ["it@corp.example"],
            },
        }
    }


def wait_for(predicate, timeout=5.0):
    deadline = time.monotonic() + timeout
    while not predicate() and time.monotonic() < deadline:
        time.sleep(0.02)
