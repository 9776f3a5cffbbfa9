"""The `portal` command, run as a newcomer or an operator would: as a process."""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import psycopg2
import pytest

from tests.conftest import TEST_ENV
from tests.pg import temporary_database

PORTAL = str(Path(sys.executable).with_name("portal"))


def run(data_dir: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    environ = {k: v for k, v in os.environ.items() if not k.startswith("PORTAL_")}
    environ.update(TEST_ENV, PORTAL_DATA_DIR=str(data_dir), **env)
    return subprocess.run([PORTAL, *args], env=environ, capture_output=True, text=True,
                          timeout=120, check=False)


def test_demo_is_idempotent_and_prints_working_accounts(tmp_path: Path) -> None:
    first = run(tmp_path, "demo")
    assert first.returncode == 0, first.stderr
    assert "admin@acme.example" in first.stdout and "demo-acme-admin" in first.stdout
    for role in ("staff_admin", "staff ", "customer_admin", "customer_user"):
        assert role in first.stdout
    second = run(tmp_path, "demo")
    assert second.returncode == 0 and second.stdout == first.stdout
    # Still one vendor and four customers: creating the cabinet again clashes on its billing id.
    clash = run(tmp_path, "cabinets", "create", "--name", "X", "--kind", "customer",
                "--external-id", "DEMO-ACME")
    assert clash.returncode == 1
    assert "billing id" in clash.stderr


def test_cabinets_and_users_create_print_json(tmp_path: Path) -> None:
    parent = run(tmp_path, "cabinets", "create", "--name", "Initech", "--kind", "customer",
                 "--external-id", "CRM-7")
    assert parent.returncode == 0, parent.stderr
    created = json.loads(parent.stdout)
    assert created["name"] == "Initech" and created["external_id"] == "CRM-7"
    child = run(tmp_path, "cabinets", "create", "--name", "Initech Labs", "--kind", "customer",
                "--parent", "CRM-7")
    assert json.loads(child.stdout)["parent_id"] == created["id"]

    user = run(tmp_path, "users", "create", "--email", "peter@initech.example", "--role",
               "customer_admin", "--cabinet", created["id"], "--name", "Peter",
               PORTAL_USER_PASSWORD="tps reports 2026")
    assert user.returncode == 0, user.stderr
    shown = json.loads(user.stdout)
    assert shown["email"] == "peter@initech.example" and shown["has_password"] is True
    assert "password" not in user.stdout.replace("has_password", "")


def test_users_create_refuses_a_weak_password_and_a_missing_one(tmp_path: Path) -> None:
    cabinet = json.loads(run(tmp_path, "cabinets", "create", "--name", "A", "--kind",
                             "customer").stdout)
    weak = run(tmp_path, "users", "create", "--email", "a@a.example", "--role",
               "customer_user", "--cabinet", cabinet["id"], PORTAL_USER_PASSWORD="short")
    assert weak.returncode == 1 and "at least 10 characters" in weak.stderr
    missing = run(tmp_path, "users", "create", "--email", "a@a.example", "--role",
                  "customer_user", "--cabinet", cabinet["id"])
    assert missing.returncode != 0 and "PORTAL_USER_PASSWORD" in missing.stderr


def test_invalid_configuration_stops_with_one_clear_message(tmp_path: Path) -> None:
    result = run(tmp_path, "migrate", PORTAL_STORAGE__ADAPTER="oracle")
    assert result.returncode == 2
    assert result.stderr.strip() == (
        "portal: invalid configuration: storage.adapter (from PORTAL_STORAGE__ADAPTER): "
        "Input should be 'sqlite' or 'postgres'")
    assert "Traceback" not in result.stderr


def test_migrate_applies_once(tmp_path: Path) -> None:
    first = run(tmp_path, "migrate")
    assert first.returncode == 0 and "0001_foundation" in first.stdout
    second = run(tmp_path, "migrate")
    assert second.stdout.strip() == "the schema is up to date"


@pytest.mark.postgres
def test_without_auto_migrate_a_stale_schema_refuses_to_start(tmp_path: Path,
                                                             pg_dsn: str) -> None:
    with temporary_database("portal_cli", pg_dsn) as dsn:
        env = {"PORTAL_STORAGE__ADAPTER": "postgres", "PORTAL_STORAGE__DSN": dsn,
               "PORTAL_STORAGE__AUTO_MIGRATE": "false"}
        refused = run(tmp_path, "demo", "--force", **env)
        assert refused.returncode == 1
        assert "run `portal migrate`" in refused.stderr
        assert run(tmp_path, "migrate", **env).returncode == 0
        guarded = run(tmp_path, "demo", **env)
        assert guarded.returncode == 2 and "--force" in guarded.stderr
        assert run(tmp_path, "demo", "--force", **env).returncode == 0


def test_keys_generate_writes_a_private_key_once(tmp_path: Path) -> None:
    out = tmp_path / "signing.jwk"
    assert run(tmp_path, "keys", "generate", "--out", str(out)).returncode == 0
    key = json.loads(out.read_text())
    assert key["kty"] == "OKP" and key["crv"] == "Ed25519" and "d" in key
    assert out.stat().st_mode & 0o077 == 0
    again = run(tmp_path, "keys", "generate", "--out", str(out))
    assert again.returncode == 1 and "refusing to overwrite" in again.stderr


def test_feed_import_applies_each_line_once_and_reports_bad_lines(tmp_path: Path) -> None:
    import json as json_module

    from tests.feed import purchase

    assert run(tmp_path, "demo").returncode == 0  # a catalogue with the product dbguard
    good, other = purchase("dbguard"), purchase("dbguard")
    unknown = purchase("no-such-product")
    feed = tmp_path / "events.jsonl"
    feed.write_text("\n".join([
        json_module.dumps(good), "{not json", "", json_module.dumps(unknown),
        json_module.dumps(other), json_module.dumps(good)]) + "\n")
    first = run(tmp_path, "feed", "import", str(feed))
    assert first.returncode == 1
    assert first.stdout.strip() == "5 events: 2 applied, 1 applied before, 2 refused"
    assert f"{feed}:2: " in first.stderr and "not valid JSON" in first.stderr
    assert f"{feed}:4: items.0.product_code: No product has this code." in first.stderr
    again = run(tmp_path, "feed", "import", str(feed))
    assert again.stdout.strip() == "5 events: 0 applied, 3 applied before, 2 refused"
    missing = run(tmp_path, "feed", "import", str(tmp_path / "nope.jsonl"))
    assert missing.returncode == 1 and "cannot read" in missing.stderr


@pytest.mark.parametrize("kind", ["sqlite", "postgres"])
def test_feed_import_keeps_each_customers_events_in_file_order(tmp_path: Path, kind: str,
                                                               pg_dsn: str) -> None:
    """Events are applied several at once, but one that depends on an earlier one (its
    customer, parent, items or covered license) waits for it: renewals and refunds find
    what the purchase before them made, children find their parent."""
    from tests.feed import purchase

    def item(external_id: str, **more: object) -> dict[str, object]:
        return {"external_id": external_id, "kind": "license", **more}

    def bought(customer: str, order: str, parent: str | None = None) -> dict[str, object]:
        return purchase("dbguard", customer, parent=parent, items=[item(
            order, product_code="dbguard", edition="Pro", seats=5, valid_to="2027-01-31")])

    lines = [bought("CRM-A", "A-1"), bought("CRM-A1", "A1-1", parent="CRM-A"),
             purchase("dbguard", "CRM-A", type_="purchase.renewed",
                      items=[item("A-1", valid_to="2028-01-31")]),
             purchase("dbguard", "CRM-A", type_="purchase.refunded", items=[item("A-1")]),
             *[bought(f"CRM-{n}", f"N-{n}") for n in range(8)],
             # A certificate of another customer covering A1's license, after it.
             purchase("dbguard", "CRM-C", items=[{
                 "external_id": "C-1", "kind": "certificate", "product_code": "dbguard",
                 "level": "basic", "valid_to": "2027-01-31", "license_external_id": "A1-1"}]),
             purchase("dbguard", "CRM-A1", type_="purchase.renewed",
                      items=[item("A1-1", valid_to="2029-01-31")])]
    feed = tmp_path / "events.jsonl"
    feed.write_text("".join(json.dumps(line) + "\n" for line in lines))
    with contextlib.ExitStack() as stack:
        env = {"PORTAL_STORAGE__ADAPTER": kind}
        if kind == "postgres":
            env["PORTAL_STORAGE__DSN"] = stack.enter_context(
                temporary_database("portal_cli", pg_dsn))
        assert run(tmp_path, "demo", "--force", **env).returncode == 0
        done = run(tmp_path, "feed", "import", str(feed), **env)
        assert done.stdout.strip() == "14 events: 14 applied, 0 applied before, 0 refused", \
            done.stderr
        query = ("SELECT l.purchase_item, l.valid_to, CASE WHEN l.revoked_at IS NULL THEN 'live'"
                 " ELSE 'revoked' END, c.external_id,"
                 " p.external_id FROM licenses l JOIN cabinets c ON c.id = l.cabinet_id"
                 " LEFT JOIN cabinets p ON p.id = c.parent_id"
                 " WHERE l.purchase_item IN ('A-1', 'A1-1') ORDER BY 1")
        if kind == "postgres":
            connection: Any = psycopg2.connect(env["PORTAL_STORAGE__DSN"])
        else:
            connection = sqlite3.connect(tmp_path / "portal.sqlite3")
        try:
            cursor = connection.cursor()
            cursor.execute(query)
            rows = [tuple(str(value) for value in row) for row in cursor.fetchall()]
        finally:
            connection.close()
    assert rows == [("A-1", "2028-01-31", "revoked", "CRM-A", "None"),
                    ("A1-1", "2029-01-31", "live", "CRM-A1", "CRM-A")]


def test_license_verify_checks_a_file_offline(tmp_path: Path) -> None:
    from adapters.jwcrypto import JwcryptoLicenseSigner, load_signing_key, new_signing_key

    assert run(tmp_path, "migrate").returncode == 0  # creates this portal's license key
    signer = JwcryptoLicenseSigner(load_signing_key(None, tmp_path / "keys" /
                                                    "license-signing.jwk"))
    good = tmp_path / "good.lic"
    good.write_text(signer.sign({"number": "LIC-2026-123456", "seats": 5}))
    shown = run(tmp_path, "license", "verify", str(good))
    assert shown.returncode == 0, shown.stderr
    assert json.loads(shown.stdout) == {"number": "LIC-2026-123456", "seats": 5}

    foreign = tmp_path / "foreign.lic"
    foreign.write_text(JwcryptoLicenseSigner(new_signing_key()).sign({"number": "x"}))
    refused = run(tmp_path, "license", "verify", str(foreign))
    assert refused.returncode == 1 and refused.stderr.startswith("invalid: ")

    keys = tmp_path / "keys.json"
    keys.write_text(json.dumps(signer.public_jwks()))
    tampered = tmp_path / "tampered.lic"
    head, payload, signature = good.read_text().split(".")
    tampered.write_text(f"{head}.{payload[:-2]}xx.{signature}")
    assert run(tmp_path, "license", "verify", str(tampered), "--keys", str(keys)).returncode == 1
    assert run(tmp_path, "license", "verify", str(good), "--keys", str(keys)).returncode == 0


def test_license_verify_without_a_key_says_so_and_creates_none(tmp_path: Path) -> None:
    token = tmp_path / "some.lic"
    token.write_text("a.b.c")
    answer = run(tmp_path, "license", "verify", str(token))
    assert answer.returncode == 2 and "--keys" in answer.stderr
    assert not (tmp_path / "keys" / "license-signing.jwk").exists()


def test_remind_sends_what_is_due_once(tmp_path: Path) -> None:
    assert run(tmp_path, "demo").returncode == 0  # one Acme license ends in 20 days
    first = run(tmp_path, "remind")
    assert first.returncode == 0, first.stderr
    assert first.stdout.strip() == "1 expiry reminder sent"
    assert run(tmp_path, "remind").stdout.strip() == "no expiry reminders due"
    # The e-mail waits in the outbox for a serving process's worker to send it.
    with sqlite3.connect(tmp_path / "portal.sqlite3") as db:
        reminders = [row[0] for row in db.execute(
            "SELECT subject FROM outbox WHERE subject LIKE '%expire%'")]
    assert reminders and all(s.endswith("expires in 20 days") for s in reminders)


def test_check_says_which_dependency_answers_and_which_does_not(tmp_path: Path) -> None:
    from aiosmtpd.controller import Controller

    from tests.contract.test_mail import Inbox
    from tests.live import free_port

    assert run(tmp_path, "demo").returncode == 0
    embedded = run(tmp_path, "check")
    assert embedded.returncode == 0, embedded.stdout + embedded.stderr
    lines = embedded.stdout.splitlines()
    assert [line.split()[0] for line in lines] == ["ok"] * 5, lines
    assert "in this process" in embedded.stdout and "writes .eml files" in embedded.stdout
    assert "bucket(s) of releases readable" in embedded.stdout

    smtp_port = free_port()
    controller = Controller(Inbox(), hostname="127.0.0.1", port=smtp_port)
    controller.start()
    try:
        real = {"PORTAL_EVENT_BUS__ADAPTER": "redis",
                "PORTAL_EVENT_BUS__URL": "redis://127.0.0.1:6379/0",
                "PORTAL_MAIL__ADAPTER": "smtp", "PORTAL_MAIL__SMTP__HOST": "127.0.0.1",
                "PORTAL_MAIL__SMTP__PORT": str(smtp_port), "PORTAL_MAIL__SMTP__SECURITY": "none"}
        answering = run(tmp_path, "check", **real)
    finally:
        controller.stop()
    assert answering.returncode == 0, answering.stdout + answering.stderr
    assert "Redis at 127.0.0.1:6379 answers" in answering.stdout
    assert f"SMTP server 127.0.0.1:{smtp_port} answers" in answering.stdout
    # Nobody listens there any more: both are named as failed, the rest still checked.
    down = run(tmp_path, "check", **{**real, "PORTAL_EVENT_BUS__URL":
                                     f"redis://127.0.0.1:{free_port()}/0"})
    assert down.returncode == 1
    states = {line[7:20].strip(): line.split()[0] for line in down.stdout.splitlines()}
    assert states == {"storage": "ok", "object store": "ok", "event bus": "FAILED",
                      "mail": "FAILED", "helpdesk": "ok"}, down.stdout
