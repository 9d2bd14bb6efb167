"""A small SMTP server for the tests: it records what it delivers and can hold a connection open
without answering, so a worker can be caught in the middle of sending."""

from __future__ import annotations

import socketserver
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

HOLD_SECONDS = 120


@dataclass
class Mailbox:
    """What the server delivered (one recipient list per message), and its hold switch."""

    hold_next: bool = False
    # Hold the next message whose subject holds this, once its text is in: mid-send.
    hold_subject: str | None = None
    held: threading.Event = field(default_factory=threading.Event)
    release: threading.Event = field(default_factory=threading.Event)
    delivered: list[list[str]] = field(default_factory=list)
    subjects: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def recipients(self, subject: str = "") -> list[str]:
        """The recipients of every message delivered, or of those whose subject holds `subject`."""
        with self.lock:
            return [
                address
                for message, title in zip(self.delivered, self.subjects, strict=True)
                if subject in title
                for address in message
            ]


class _Handler(socketserver.StreamRequestHandler):
    server: _Server

    def reply(self, line: str) -> None:
        self.wfile.write(f"{line}\r\n".encode())

    def handle(self) -> None:
        mailbox = self.server.mailbox
        with mailbox.lock:
            hold, mailbox.hold_next = mailbox.hold_next, False
        if hold:
            # Accept the connection and say nothing: the client waits for the greeting.
            mailbox.held.set()
            mailbox.release.wait(HOLD_SECONDS)
            return
        self.reply("220 test SMTP")
        recipients: list[str] = []
        while line := self.rfile.readline():
            command = line.decode(errors="replace").strip()
            verb = command.split(" ", 1)[0].upper()
            if verb in {"EHLO", "HELO"}:
                self.reply("250 test")
            elif verb == "MAIL":
                recipients = []
                self.reply("250 OK")
            elif verb == "RCPT":
                recipients.append(command.split(":", 1)[1].strip().strip("<>"))
                self.reply("250 OK")
            elif verb == "DATA":
                self.reply("354 end with .")
                subject = ""
                while (text := self.rfile.readline()) not in {b".\r\n", b".\n", b""}:
                    if text.lower().startswith(b"subject:") and not subject:
                        subject = text.decode(errors="replace").split(":", 1)[1].strip()
                with mailbox.lock:
                    hold = mailbox.hold_subject is not None and mailbox.hold_subject in subject
                    if hold:
                        mailbox.hold_subject = None
                if hold:
                    # The text is in and no answer comes: the client waits, mid-send.
                    mailbox.held.set()
                    mailbox.release.wait(HOLD_SECONDS)
                    return
                with mailbox.lock:
                    mailbox.delivered.append(recipients)
                    mailbox.subjects.append(subject)
                self.reply("250 queued")
            elif verb == "QUIT":
                self.reply("221 bye")
                return
            else:
                self.reply("250 OK")


class _Server(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True
    mailbox: Mailbox


@contextmanager
def smtp_server() -> Iterator[tuple[int, Mailbox]]:
    """Serve SMTP on a free loopback port; yield the port and the mailbox."""
    server = _Server(("127.0.0.1", 0), _Handler)
    server.mailbox = Mailbox()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1], server.mailbox
    finally:
        server.mailbox.release.set()
        server.shutdown()
        server.server_close()
