"""Mail through an SMTP server (aiosmtplib): STARTTLS or implicit TLS with the server's
certificate checked (against the system's CAs or a CA file of one's own), optional login, a
timeout on everything. Connection failures, timeouts and 4xx answers are temporary; 5xx
answers are permanent."""

from __future__ import annotations

import aiosmtplib

from adapters.mime import build_message
from ports.mail import Email, PermanentMailError, TemporaryMailError

# Steps of one send before the message itself: connect, EHLO, STARTTLS, EHLO, AUTH.
_STEPS = 5


class SmtpMailer:
    def __init__(self, host: str, port: int, security: str, username: str, password: str,
                 timeout_seconds: float, ca_file: str = "",
                 data_timeout_seconds: float = 600) -> None:
        if security not in ("none", "starttls", "tls"):
            raise ValueError(f"smtp security is none, starttls or tls, not {security!r}")
        self._host = host
        self._port = port
        self._security = security
        self._username = username or None
        self._password = password or None
        self._timeout = timeout_seconds
        # RFC 5321 4.5.3.2 gives the server 5 minutes for MAIL and RCPT and 10 for the end
        # of the data: a client that gives up sooner resends what was delivered.
        self._data_timeout = max(data_timeout_seconds, timeout_seconds)
        self._ca_file = ca_file or None

    @property
    def longest_send(self) -> float:
        return _STEPS * self._timeout + 3 * self._data_timeout

    def _connection(self) -> aiosmtplib.SMTP:
        return aiosmtplib.SMTP(
            hostname=self._host, port=self._port, use_tls=self._security == "tls",
            start_tls=self._security == "starttls", username=self._username,
            password=self._password, timeout=self._timeout, cert_bundle=self._ca_file)

    async def probe(self) -> str:
        """Connects, greets (and logs in, with TLS if configured) and says goodbye."""
        try:
            async with self._connection() as smtp:
                await smtp.noop()
        except (aiosmtplib.SMTPException, OSError, TimeoutError) as exc:
            raise TemporaryMailError(f"{self._host}:{self._port}: {exc}") from exc
        return f"SMTP server {self._host}:{self._port} answers ({self._security})"

    async def send(self, email: Email) -> None:
        try:
            async with self._connection() as smtp:
                await smtp.send_message(build_message(email), timeout=self._data_timeout)
        except aiosmtplib.SMTPRecipientsRefused as exc:
            codes = [refused.code for refused in exc.recipients]
            failure = f"{self._host}:{self._port} refused {email.to}: " + "; ".join(
                f"{refused.code} {refused.message}" for refused in exc.recipients)
            if codes and all(500 <= code < 600 for code in codes):
                raise PermanentMailError(failure) from exc
            raise TemporaryMailError(failure) from exc
        except aiosmtplib.SMTPResponseException as exc:
            failure = f"{self._host}:{self._port} answered {exc.code} {exc.message}"
            if 500 <= exc.code < 600:
                raise PermanentMailError(failure) from exc
            raise TemporaryMailError(failure) from exc
        except aiosmtplib.SMTPNotSupported as exc:
            failure = f"{self._host}:{self._port}: {exc}"
            if "SMTPUTF8" in str(exc):  # the address needs what the server lacks: always
                raise PermanentMailError(f"{failure} (the address {email.to} needs it)") \
                    from exc
            raise TemporaryMailError(failure) from exc
        except (aiosmtplib.SMTPException, OSError, TimeoutError) as exc:
            raise TemporaryMailError(f"{self._host}:{self._port}: {exc}") from exc
        except (ValueError, UnicodeError) as exc:
            # The message cannot be written for SMTP at all (an address it cannot encode).
            raise PermanentMailError(f"{self._host}:{self._port}: {exc}") from exc
