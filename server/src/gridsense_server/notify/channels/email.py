"""E-mail: ``email://someone@example.com``, through the deployment's SMTP server with
STARTTLS (the server's certificate checked against ``ca_file`` or the system's CAs).

A subject and a plain body. A refused mailbox or login is a configuration fault (no retry);
a 4xx answer or a dropped connection is retried.
"""

from __future__ import annotations

import smtplib
import ssl
from email.message import EmailMessage
from email.utils import formataddr
from typing import ClassVar
from urllib.parse import unquote, urlsplit

from ..messages import Message
from . import register
from .base import Outcome, Settings


class EmailSettings(Settings):
    host: str | None = None  # None: e-mail is not set up
    port: int = 587
    starttls: bool = True
    ca_file: str | None = None
    username: str | None = None
    password: str | None = None
    sender: str = "gridsense@localhost"
    sender_name: str = "gridsense 告警"
    timeout_s: float = 15.0


@register("email")
class Email:
    name: ClassVar[str] = "email"
    Settings = EmailSettings

    def __init__(self, settings: EmailSettings) -> None:
        self.settings = settings

    def close(self) -> None:
        pass

    def send(self, target: str, message: Message) -> Outcome:
        parts = urlsplit(target)
        address = unquote(f"{parts.netloc}{parts.path}".strip("/"))
        settings = self.settings
        if not settings.host:
            return Outcome("bad_config", self.name, "",
                           "e-mail is not set up (lifecycle.vendors.email.host)")
        mail = EmailMessage()
        mail["Subject"] = message.title
        mail["From"] = formataddr((settings.sender_name, settings.sender))
        mail["To"] = address
        mail.set_content(message.text())
        try:
            with smtplib.SMTP(settings.host, settings.port,
                              timeout=settings.timeout_s) as smtp:
                if settings.starttls:
                    smtp.starttls(context=ssl.create_default_context(cafile=settings.ca_file))
                if settings.username:
                    smtp.login(settings.username, settings.password or "")
                smtp.send_message(mail)
        except smtplib.SMTPRecipientsRefused as exc:
            code, words = next(iter(exc.recipients.values()))
            return Outcome("bad_config", self.name, str(code), _text(words))
        except (smtplib.SMTPAuthenticationError, smtplib.SMTPNotSupportedError,
                ssl.SSLCertVerificationError) as exc:
            return Outcome("bad_config", self.name, str(getattr(exc, "smtp_code", "")),
                           _text(getattr(exc, "smtp_error", str(exc))))
        except smtplib.SMTPResponseException as exc:
            status = "retry" if 400 <= exc.smtp_code < 500 else "bad_config"
            return Outcome(status, self.name, str(exc.smtp_code), _text(exc.smtp_error))
        except (OSError, smtplib.SMTPException) as exc:
            return Outcome("retry", self.name, "", f"{type(exc).__name__}: {exc}")
        return Outcome("sent", self.name, "250", f"accepted by {settings.host}")


def _text(words: bytes | str) -> str:
    return words.decode(errors="replace") if isinstance(words, bytes) else words
