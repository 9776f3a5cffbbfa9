"""The `portal` command."""

from __future__ import annotations

import argparse
import asyncio
import gc
import getpass
import json
import logging
import os
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TextIO

from app.checks import check_dependencies
from app.config import ConfigError, Settings, ignored_environment, load_settings
from app.container import (
    LicenseFileRefused,
    StartupError,
    check_license_file,
    license_public_keys,
    open_services,
    write_new_signing_key,
)
from app.domain.cabinets import Cabinet, CabinetKind
from app.domain.errors import DomainError
from app.domain.purchases import PurchaseEvent
from app.domain.roles import Role
from app.domain.users import SYSTEM
from app.logs import configure_logging
from app.services import Services
from app.services.demo import seed_demo
from app.tracing import start_tracing, stop_tracing
from app.web.openapi import RequestInvalid, parse_json
from app.web.schemas.cabinets import CabinetOut
from app.web.schemas.feeds import PurchaseEventIn
from app.web.schemas.users import UserOut
from ports.storage import StorageUnavailable

log = logging.getLogger("portal")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="portal", description="The customer license portal.")
    parser.add_argument("--config", metavar="PATH",
                        help="a YAML file read over config.yaml (default: $PORTAL_CONFIG)")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    serve = commands.add_parser("serve", help="run the web portal and the API")
    serve.add_argument("--host", help="address to listen on (default: server.host)")
    serve.add_argument("--port", type=int, help="port to listen on (default: server.port)")

    commands.add_parser("migrate", help="apply pending database migrations")
    commands.add_parser("check", help="say whether each dependency answers (storage, object "
                        "store, event bus, mail, helpdesk); exit 1 if one does not")
    commands.add_parser("scan", help="register new releases found in the object store")
    commands.add_parser("remind", help="send the expiry reminders due today (serve does this "
                                       "every notifications.reminder_interval seconds)")
    demo = commands.add_parser(
        "demo", help="load demo data and print the demo accounts (idempotent)")
    demo.add_argument("--force", action="store_true",
                      help="also on PostgreSQL, where the portal usually runs for real")

    cabinets = commands.add_parser("cabinets", help="manage cabinets").add_subparsers(
        dest="action", required=True, metavar="ACTION")
    create_cabinet = cabinets.add_parser("create", help="create a cabinet, print it as JSON")
    create_cabinet.add_argument("--name", required=True)
    create_cabinet.add_argument("--kind", required=True, choices=[k.value for k in CabinetKind])
    create_cabinet.add_argument("--parent", help="id or billing id of the parent cabinet")
    create_cabinet.add_argument("--external-id", help="billing id")

    users = commands.add_parser("users", help="manage users").add_subparsers(
        dest="action", required=True, metavar="ACTION")
    create_user = users.add_parser(
        "create", help="create a user, print it as JSON; the password comes from "
                       "$PORTAL_USER_PASSWORD or a prompt")
    create_user.add_argument("--email", required=True)
    create_user.add_argument("--role", required=True, choices=[r.value for r in Role])
    create_user.add_argument("--cabinet", required=True, help="id or billing id of the cabinet")
    create_user.add_argument("--name", default="")

    feed = commands.add_parser("feed", help="the purchases feed").add_subparsers(
        dest="action", required=True, metavar="ACTION")
    feed_import = feed.add_parser(
        "import", help="apply purchase events from a JSON-lines file, as the webhook would")
    feed_import.add_argument("file", type=Path, help="one event (the webhook's body) per line")

    license_ = commands.add_parser("license", help="license files").add_subparsers(
        dest="action", required=True, metavar="ACTION")
    verify = license_.add_parser(
        "verify", help="check a license file offline; print its claims or why it is invalid")
    verify.add_argument("file", type=Path, help="a license file (format=lic)")
    verify.add_argument("--keys", type=Path,
                        help="public keys as a JWK set (the portal's "
                             "/.well-known/license-keys.json); default: this portal's own")

    keys = commands.add_parser("keys", help="signing keys").add_subparsers(
        dest="action", required=True, metavar="ACTION")
    generate = keys.add_parser("generate", help="write a new Ed25519 token signing key (JWK)")
    generate.add_argument("--out", required=True, type=Path, help="file to create")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        settings = load_settings(args.config)
    except ConfigError as exc:
        print(f"portal: {exc}", file=sys.stderr)
        return 2
    configure_logging(settings.logging)
    for name in ignored_environment():
        log.warning("%s names no setting; ignored", name)
    if args.command == "demo" and settings.storage.adapter == "postgres" and not args.force:
        print("portal: refusing to add demo accounts with published passwords to PostgreSQL; "
              "add --force if this database is for trying the portal out", file=sys.stderr)
        return 2
    if args.command == "serve":
        return _serve(settings, args.host, args.port)
    if args.command == "keys":
        return _generate_key(args.out)
    if args.command == "license":
        return _verify_license(settings, args.file, args.keys)
    commands: dict[str, Callable[[Services, argparse.Namespace], Awaitable[int]]] = {
        "migrate": _migrate, "demo": _demo, "cabinets": _create_cabinet,
        "users": _create_user, "feed": _feed_import, "scan": _scan,
        "remind": _remind, "check": _check}
    tune_garbage_collection()  # the server's settings: `feed import` makes many objects
    try:
        return asyncio.run(_with_services(settings, args, commands[args.command]))
    except (DomainError, StorageUnavailable, StartupError) as exc:
        print(f"portal: {getattr(exc, 'detail', exc)}", file=sys.stderr)
        return 1


async def _with_services(settings: Settings, args: argparse.Namespace,
                         command: Callable[[Services, argparse.Namespace], Awaitable[int]]) -> int:
    # Only `serve` waits for PDF workers; `migrate` alone runs against an old schema.
    quiet = settings.model_copy(update={
        "pdf": settings.pdf.model_copy(update={"warm_on_start": False})})
    prepare = args.command not in ("migrate", "check")  # these two change no schema
    async with open_services(quiet, prepare_schema=prepare) as services:
        return await command(services, args)


async def _check(services: Services, args: argparse.Namespace) -> int:
    return await check_dependencies(services)


async def _migrate(services: Services, args: argparse.Namespace) -> int:
    applied = await services.storage.migrate()
    print("applied: " + ", ".join(applied) if applied else "the schema is up to date")
    return 0


async def _scan(services: Services, args: argparse.Namespace) -> int:
    added = await services.releases.scan_all(SYSTEM)
    for release in added:
        print(f"registered {release.version} ({release.kind.value}, "
              f"{len(release.artifacts)} files) of product {release.product_id}")
    print(f"{len(added)} new releases")
    return 0


async def _remind(services: Services, args: argparse.Namespace) -> int:
    sent = await services.reminders.run_once()
    print(f"{sent} expiry reminder{'' if sent == 1 else 's'} sent" if sent
          else "no expiry reminders due")
    return 0


async def _demo(services: Services, args: argparse.Namespace) -> int:
    accounts = await seed_demo(services)
    print("Demo data is in place. Sign in with any of these accounts:\n")
    width = max(len(a.email) for a in accounts)
    for account in accounts:
        print(f"  {account.email:<{width}}  password: {account.password:<18}  "
              f"{account.role.value:<15} {account.cabinet}")
    return 0


async def _find_cabinet(services: Services, key: str) -> Cabinet:
    try:
        return await services.cabinets.get(SYSTEM, key)
    except DomainError:
        found = await services.cabinets.get_by_external_id(SYSTEM, key)
        if found is None:
            raise
        return found


async def _create_cabinet(services: Services, args: argparse.Namespace) -> int:
    parent = await _find_cabinet(services, args.parent) if args.parent else None
    cabinet = await services.cabinets.create(SYSTEM, args.name, CabinetKind(args.kind),
                                             parent.id if parent else None, args.external_id)
    print(CabinetOut.of(cabinet).model_dump_json(indent=2))
    return 0


async def _create_user(services: Services, args: argparse.Namespace) -> int:
    cabinet = await _find_cabinet(services, args.cabinet)
    password = os.environ.get("PORTAL_USER_PASSWORD") or _prompt_password()
    user = await services.users.create_with_password(
        SYSTEM, cabinet.id, args.email, args.name, Role(args.role), password)
    print(UserOut.of(user).model_dump_json(indent=2))
    return 0


class ProgressBar:
    """A bar on a terminal; nothing when the output goes to a file or a pipe."""

    def __init__(self, total: int, stream: TextIO = sys.stderr, width: int = 30) -> None:
        self._total, self._stream, self._width = max(total, 1), stream, width
        self._done = 0
        self._live = stream.isatty()

    def step(self) -> None:
        self._done += 1
        if self._live:
            filled = self._width * self._done // self._total
            self._stream.write(f"\r[{'#' * filled}{'.' * (self._width - filled)}] "
                               f"{self._done}/{self._total}")
            self._stream.flush()

    def close(self) -> None:
        if self._live:
            self._stream.write("\n")


# Events `portal feed import` applies at once: while one waits for the database, the next
# is worked on. An event waits for the earlier ones it depends on (PurchaseEvent.depends_on),
# so a customer's events still apply in the order of the file.
IMPORT_AT_ONCE = 4


async def _feed_import(services: Services, args: argparse.Namespace) -> int:
    path: Path = args.file
    try:
        lines = (await asyncio.to_thread(path.read_text, encoding="utf-8")).splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        print(f"portal: cannot read {path}: {exc}", file=sys.stderr)
        return 1
    events = [(number, line) for number, line in enumerate(lines, 1) if line.strip()]
    applied = replayed = 0
    failures: list[tuple[int, str]] = []
    bar = ProgressBar(len(events))
    slots = asyncio.Semaphore(IMPORT_AT_ONCE)
    latest: dict[str, asyncio.Task[None]] = {}  # the last event so far that depends on a key
    pending: set[asyncio.Task[None]] = set()
    broken: list[BaseException] = []  # what stops the import: not an event's fault

    async def apply(number: int, event: PurchaseEvent, keys: set[str],
                    after: set[asyncio.Task[None]]) -> None:
        nonlocal applied, replayed
        try:
            if after:
                await asyncio.wait(after)
            if broken:
                return
            _, repeat = await services.purchases.apply(event)
        except DomainError as exc:
            failures.append((number, f"{exc.field}: {exc.detail}" if exc.field
                             else exc.detail))
        except Exception as exc:
            broken.append(exc)
        else:
            replayed += repeat
            applied += not repeat
        finally:
            slots.release()
            bar.step()
            for key in keys:
                if latest.get(key) is asyncio.current_task():
                    del latest[key]

    for number, line in events:
        try:
            event = parse_json(PurchaseEventIn, line.encode()).to_domain()
        except RequestInvalid as exc:
            failures.append((number, _unreadable(exc)))
            bar.step()
            continue
        await slots.acquire()
        if broken:
            break
        keys = event.depends_on()
        task = asyncio.create_task(apply(number, event, keys,
                                         {latest[key] for key in keys if key in latest}))
        pending.add(task)
        task.add_done_callback(pending.discard)
        latest.update(dict.fromkeys(keys, task))
    while pending:
        await asyncio.wait(pending)
    bar.close()
    for number, reason in sorted(failures):
        print(f"{path}:{number}: {reason}", file=sys.stderr)
    print(f"{len(events)} events: {applied} applied, {replayed} applied before, "
          f"{len(failures)} refused" + (", the rest not tried" if broken else ""))
    if broken:
        raise broken[0]  # the storage failed: said as for any command
    return 1 if failures else 0


def _unreadable(exc: RequestInvalid) -> str:
    if exc.status == 400:  # not JSON at all
        return "not valid JSON: " + exc.errors[0]["message"].removeprefix("Invalid JSON: ")
    return "; ".join(f"{e['field']}: {e['message']}" for e in exc.errors)


def _prompt_password() -> str:
    if not sys.stdin.isatty():
        raise SystemExit("portal: set PORTAL_USER_PASSWORD or run in a terminal to be asked")
    first = getpass.getpass("Password for the new user: ")
    if first != getpass.getpass("Once more: "):
        raise SystemExit("portal: the passwords differ")
    return first


def _verify_license(settings: Settings, file: Path, keys_file: Path | None) -> int:
    """Needs no database and no network: the file and a public key are enough."""
    try:
        token = file.read_text(encoding="utf-8")
        keys = json.loads(keys_file.read_text(encoding="utf-8")) if keys_file else None
    except (OSError, ValueError) as exc:
        print(f"portal: cannot read {exc.filename if isinstance(exc, OSError) else 'the keys'}"
              f": {exc}", file=sys.stderr)
        return 2
    try:
        if keys is None:
            keys = license_public_keys(settings)
    except LicenseFileRefused as exc:
        print(f"portal: {exc}", file=sys.stderr)
        return 2
    try:
        claims = check_license_file(token, keys)
    except LicenseFileRefused as exc:
        print(f"invalid: {exc}", file=sys.stderr)
        return 1
    print(json.dumps(claims, indent=2, sort_keys=True))
    return 0


def _generate_key(out: Path) -> int:
    try:
        write_new_signing_key(out)
    except FileExistsError:
        print(f"portal: {out} exists; refusing to overwrite a key", file=sys.stderr)
        return 1
    print(f"wrote a new Ed25519 signing key to {out}; set auth.signing_key_file to it")
    return 0


def tune_garbage_collection() -> None:
    """For a server that holds thousands of live streams: what start-up made (modules,
    templates, the app) is never scanned again, and the young generation is collected
    less often. With the defaults, a fan-out to 5,000 streams spent a third of its time
    in collections of objects that were all still alive."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(50_000, 20, 100)


def _serve(settings: Settings, host: str | None, port: int | None) -> int:
    from app.web.app import AccessLogger, create_app, install_log_filters
    from app.web.serve import serve

    install_log_filters()
    host, port = host or settings.server.host, port or settings.server.port
    tracing = start_tracing(settings.tracing)
    app = create_app(settings)

    def announce() -> None:
        log.info("portal %s on http://%s:%s (storage: %s, data in %s)", "listening",
                 host, port, settings.storage.adapter, settings.data_dir)
        tune_garbage_collection()

    try:
        # The keep-alive timer runs from the connection's start: a client that has not sent
        # its whole request head by then is cut off (slowloris), as is an idle one.
        asyncio.run(serve(app, settings, host, port, announce, handler_cancellation=True,
                          keepalive_timeout=settings.server.header_timeout_seconds,
                          access_log_class=AccessLogger,
                          access_log=logging.getLogger("portal.access")
                          if settings.logging.access_log else None))
    except (StorageUnavailable, StartupError) as exc:
        print(f"portal: cannot start: {exc}", file=sys.stderr)
        return 1
    except OSError as exc:
        print(f"portal: cannot listen on {host}:{port}: {exc.strerror}", file=sys.stderr)
        return 1
    finally:
        stop_tracing(tracing)  # what is still batched goes out
    return 0


if __name__ == "__main__":
    sys.exit(main())
