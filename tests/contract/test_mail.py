"""Contract of the mailer port, on every adapter: a folder of .eml files, and SMTP against
a real SMTP server (aiosmtpd) on a free loopback port."""

from __future__ import annotations

import email
import email.policy
import ipaddress
import ssl
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from adapters.maildir import MaildirMailer
from adapters.smtp import SmtpMailer
from ports.mail import Email, Mailer, PermanentMailError, TemporaryMailError
from tests.live import free_port
from tests.world import SettingsFor

MESSAGE = Email(message_id="<n-1@portal.test>", sender="Portal <portal@vendor.test>",
                to="Ann Acme <ann@acme.test>", subject="Security fix: DB Guard 5.1.1 ✓",
                text="DB Guard 5.1.1 fixes a security vulnerability.",
                html="<p>DB Guard <strong>5.1.1</strong> fixes a security vulnerability.</p>")


class Inbox:
    """An SMTP server's handler: keeps what it accepts; some addresses it refuses."""

    def __init__(self) -> None:
        self.messages: list[EmailMessage] = []

    async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str,
                          rcpt_options: list[str]) -> str:
        if address.startswith("nobody@"):
            return "550 5.1.1 No such user"
        if address.startswith("later@"):
            return "451 4.3.0 Mailbox busy, try again later"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        parsed = email.message_from_bytes(envelope.content, policy=email.policy.default)
        assert isinstance(parsed, EmailMessage)
        self.messages.append(parsed)
        return "250 Message accepted"


@pytest.fixture(scope="module")
def smtp_server() -> Iterator[tuple[int, Inbox]]:
    inbox = Inbox()
    port = free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield port, inbox
    finally:
        controller.stop()


Received = Callable[[], list[EmailMessage]]


@pytest.fixture(params=["maildir", "smtp"])
def mailer(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[Mailer, Received]:
    if request.param == "maildir":
        folder = tmp_path / "mail"

        def in_folder() -> list[EmailMessage]:
            found = []
            for path in sorted(folder.glob("*.eml")):
                parsed = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
                assert isinstance(parsed, EmailMessage)
                found.append(parsed)
            return found
        return MaildirMailer(folder), in_folder
    port, inbox = request.getfixturevalue("smtp_server")
    inbox.messages.clear()
    return SmtpMailer("127.0.0.1", port, "none", "", "", 5), lambda: list(inbox.messages)


async def test_a_message_arrives_whole(mailer: tuple[Mailer, Received]) -> None:
    send, received = mailer
    await send.send(MESSAGE)
    [got] = received()
    assert got["Message-ID"] == MESSAGE.message_id and got["Subject"] == MESSAGE.subject
    assert got["To"] == MESSAGE.to and got["From"] == MESSAGE.sender and got["Date"]
    text = got.get_body(preferencelist=("plain",))
    html = got.get_body(preferencelist=("html",))
    assert text is not None and text.get_content().strip() == MESSAGE.text
    assert html is not None and "<strong>5.1.1</strong>" in html.get_content()


async def test_text_only_messages_have_no_html_part(mailer: tuple[Mailer, Received]) -> None:
    send, received = mailer
    await send.send(Email("<n-2@portal.test>", "portal@vendor.test", "bob@acme.test",
                          "Plain", "Just text."))
    [got] = received()
    assert got.get_content_type() == "text/plain" and got.get_content().strip() == "Just text."


async def test_the_same_message_twice_is_one_file_in_the_folder(tmp_path: Path) -> None:
    mailer = MaildirMailer(tmp_path)
    await mailer.send(MESSAGE)
    await mailer.send(MESSAGE)
    assert len(list(tmp_path.glob("*.eml"))) == 1 and not list(tmp_path.glob(".writing-*"))


async def test_an_unwritable_folder_is_a_temporary_failure(tmp_path: Path) -> None:
    blocked = tmp_path / "file"
    blocked.write_text("not a folder")
    with pytest.raises(TemporaryMailError):
        await MaildirMailer(blocked / "mail").send(MESSAGE)


async def test_smtp_answers_decide_between_retry_and_give_up(
        smtp_server: tuple[int, Inbox]) -> None:
    port, _ = smtp_server
    mailer = SmtpMailer("127.0.0.1", port, "none", "", "", 5)
    with pytest.raises(PermanentMailError, match="550"):
        await mailer.send(Email("<n-3@portal.test>", "portal@vendor.test",
                                "nobody@acme.test", "x", "y"))
    with pytest.raises(TemporaryMailError, match="451"):
        await mailer.send(Email("<n-4@portal.test>", "portal@vendor.test",
                                "later@acme.test", "x", "y"))


async def test_an_address_the_server_cannot_take_is_a_permanent_failure() -> None:
    # A server without SMTPUTF8: such a recipient never goes, however often tried.
    inbox, port = Inbox(), free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=port, enable_SMTPUTF8=False)
    controller.start()
    try:
        mailer = SmtpMailer("127.0.0.1", port, "none", "", "", 5)
        with pytest.raises(PermanentMailError, match="SMTPUTF8"):
            await mailer.send(Email("<n-5@portal.test>", "portal@vendor.test",
                                    "jürgen@exämple.test", "x", "y"))
        await mailer.send(Email("<n-6@portal.test>", "portal@vendor.test",
                                "juergen@example.test", "x", "y"))  # plain ones go on
    finally:
        controller.stop()
    assert [str(message["To"]) for message in inbox.messages] == ["juergen@example.test"]


async def test_an_smtp_server_that_is_down_is_a_temporary_failure() -> None:
    mailer = SmtpMailer("127.0.0.1", free_port(), "none", "", "", 2)
    with pytest.raises(TemporaryMailError):
        await mailer.send(MESSAGE)


async def test_configuration_chooses_the_mailer(settings_for: SettingsFor,
                                                smtp_server: tuple[int, Inbox]) -> None:
    from app.container import open_services

    port, inbox = smtp_server
    inbox.messages.clear()
    embedded = settings_for("sqlite")
    async with open_services(embedded) as services:
        assert isinstance(services.mailer, MaildirMailer)
        await services.mailer.send(MESSAGE)
    assert len(list((embedded.data_dir / "mail").glob("*.eml"))) == 1
    smtp = settings_for("sqlite", PORTAL_MAIL__ADAPTER="smtp", PORTAL_MAIL__SMTP__PORT=str(port),
                        PORTAL_MAIL__SMTP__SECURITY="none")
    async with open_services(smtp) as services:
        assert isinstance(services.mailer, SmtpMailer)
        await services.mailer.send(MESSAGE)
    assert [m["Message-ID"] for m in inbox.messages] == [MESSAGE.message_id]


# --- TLS: STARTTLS and implicit TLS, with a login, against a certificate of our own CA ------

@dataclass(frozen=True)
class Pki:
    ca_file: Path
    server: ssl.SSLContext


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    """A CA and a certificate for 127.0.0.1 signed by it, as an internal relay has."""
    folder = tmp_path_factory.mktemp("pki")
    now = datetime.now(UTC)

    def certificate(subject: str, key: ec.EllipticCurvePrivateKey, issuer: x509.Name,
                    signer: ec.EllipticCurvePrivateKey, ca: bool) -> x509.Certificate:
        builder = (x509.CertificateBuilder()
                   .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)]))
                   .issuer_name(issuer).public_key(key.public_key())
                   .serial_number(x509.random_serial_number())
                   .not_valid_before(now - timedelta(hours=1))
                   .not_valid_after(now + timedelta(days=1))
                   .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True))
        if not ca:
            builder = builder.add_extension(x509.SubjectAlternativeName(
                [x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
        return builder.sign(signer, hashes.SHA256())

    ca_key, server_key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(
        ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Test mail CA")])
    ca = certificate("Test mail CA", ca_key, ca_name, ca_key, ca=True)
    server = certificate("127.0.0.1", server_key, ca_name, ca_key, ca=False)
    (folder / "ca.pem").write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    (folder / "server.pem").write_bytes(server.public_bytes(serialization.Encoding.PEM))
    (folder / "server.key").write_bytes(server_key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption()))
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(folder / "server.pem", folder / "server.key")
    return Pki(folder / "ca.pem", context)


def password_check(server: Any, session: Any, envelope: Any, mechanism: str,
                   auth_data: Any) -> AuthResult:
    ok = isinstance(auth_data, LoginPassword) and (auth_data.login, auth_data.password) == (
        b"portal", b"mail secret")
    return AuthResult(success=ok, handled=False)  # not handled: aiosmtpd answers 535 itself


@contextmanager
def tls_server(pki: Pki, implicit: bool) -> Iterator[tuple[int, Inbox]]:
    inbox, port = Inbox(), free_port()
    # Implicit TLS is TLS from the first byte, which aiosmtpd does not count as such.
    tls = {"ssl_context": pki.server, "auth_require_tls": False} if implicit else {
        "tls_context": pki.server, "require_starttls": True, "auth_required": True}
    controller = Controller(inbox, hostname="127.0.0.1", port=port, authenticator=password_check,
                            **tls)  # type: ignore[arg-type]
    controller.start()
    try:
        yield port, inbox
    finally:
        controller.stop()


@pytest.mark.parametrize("security", ["starttls", "tls"])
async def test_tls_with_a_login_delivers_and_checks_the_certificate(pki: Pki,
                                                                    security: str) -> None:
    with tls_server(pki, implicit=security == "tls") as (port, inbox):
        await SmtpMailer("127.0.0.1", port, security, "portal", "mail secret", 5,
                         ca_file=str(pki.ca_file)).send(MESSAGE)
        [got] = inbox.messages
        assert got["Message-ID"] == MESSAGE.message_id
        with pytest.raises(PermanentMailError, match="535"):
            await SmtpMailer("127.0.0.1", port, security, "portal", "wrong", 5,
                             ca_file=str(pki.ca_file)).send(MESSAGE)
        # A certificate the system's CAs never signed: refused, and tried again later
        # (an operator fixes the configuration; nothing goes out in clear meanwhile).
        with pytest.raises(TemporaryMailError, match=r"(?i)certificate"):
            await SmtpMailer("127.0.0.1", port, security, "portal", "mail secret", 5).send(
                MESSAGE)
        assert len(inbox.messages) == 1


async def test_a_server_that_demands_starttls_refuses_plain_text(pki: Pki) -> None:
    with tls_server(pki, implicit=False) as (port, inbox):
        with pytest.raises(PermanentMailError, match="530"):
            await SmtpMailer("127.0.0.1", port, "none", "", "", 5).send(MESSAGE)
        assert inbox.messages == []
