"""Who may download a release: the entitlement rule on a table of cases."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from app.domain.licensing import Certificate, License
from app.domain.releases import Release, ReleaseKind, entitlement

TODAY = date(2026, 11, 26)
NOW = datetime(2026, 11, 26, tzinfo=UTC)


def release(kind: str, published: str, yanked: bool = False) -> Release:
    return Release(id="r", product_id="p", version="1.0", kind=ReleaseKind(kind), title="",
                   notes="", published_at=datetime.fromisoformat(published + "T12:00:00+00:00"),
                   created_at=NOW, yanked_at=NOW if yanked else None)


def license_(start: str, end: str | None, revoked: bool = False) -> License:
    return License(id="l", number="LIC-2026-000001", product_id="p", cabinet_id="c",
                   valid_from=date.fromisoformat(start),
                   valid_to=date.fromisoformat(end) if end else None,
                   revoked_at=NOW if revoked else None, purchase_item=None, created_at=NOW,
                   updated_at=NOW, edition="Enterprise", seats=1)


def support(start: str, end: str, revoked: bool = False) -> Certificate:
    return Certificate(id="c", number="CRT-2026-000001", product_id="p", cabinet_id="c",
                       valid_from=date.fromisoformat(start), valid_to=date.fromisoformat(end),
                       revoked_at=NOW if revoked else None, purchase_item=None,
                       created_at=NOW, updated_at=NOW, level="standard")


CURRENT = license_("2026-01-01", "2026-12-31")
LAPSED = license_("2024-01-01", "2024-12-31")
PERPETUAL = license_("2020-01-01", None)
SUPPORT_2026 = support("2026-01-01", "2026-06-30")

CASES = [
    # (case, release, licenses, certificates, available, reason contains)
    ("no license", release("release", "2026-05-01"), [], [], False, "No license"),
    ("current license", release("release", "2026-05-01"), [CURRENT], [], True, None),
    ("license valid when published, lapsed now", release("release", "2024-06-01"), [LAPSED],
     [], True, None),
    ("license lapsed before publication", release("release", "2025-06-01"), [LAPSED], [], False,
     "No license"),
    ("revoked license", release("release", "2026-05-01"),
     [license_("2026-01-01", "2026-12-31", revoked=True)], [], False, "No license"),
    ("perpetual license, old release", release("release", "2021-01-01"), [PERPETUAL], [], True,
     None),
    ("update without support", release("update", "2026-05-01"), [CURRENT], [], False,
     "support certificate"),
    ("update within support", release("update", "2026-05-01"), [CURRENT], [SUPPORT_2026], True,
     None),
    ("fix after support ended", release("fix", "2026-08-01"), [CURRENT], [SUPPORT_2026], False,
     "after your support ended on 2026-06-30"),
    ("revoked support", release("update", "2026-05-01"), [CURRENT],
     [support("2026-01-01", "2026-06-30", revoked=True)], False, "support certificate"),
    ("security fix after support ended", release("security", "2026-08-01"), [CURRENT],
     [SUPPORT_2026], True, None),
    ("security fix without license", release("security", "2026-08-01"), [], [SUPPORT_2026],
     False, "No license"),
    ("the latest certificate counts", release("update", "2026-09-01"), [CURRENT],
     [SUPPORT_2026, support("2026-07-01", "2027-06-30")], True, None),
    ("withdrawn release", release("release", "2026-05-01", yanked=True), [CURRENT], [], False,
     "withdrawn"),
]


@pytest.mark.parametrize(("case", "subject", "licenses", "certificates", "available", "reason"),
                         CASES, ids=[case[0] for case in CASES])
def test_entitlement(case: str, subject: Release, licenses: list[License],
                     certificates: list[Certificate], available: bool,
                     reason: str | None) -> None:
    verdict = entitlement(subject, licenses, certificates, TODAY)
    assert verdict.available is available
    if reason is None:
        assert verdict.reason is None
    else:
        assert verdict.reason is not None and reason in verdict.reason
