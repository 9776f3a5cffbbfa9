"""The storage port's contract for releases and their artifacts, run against every adapter.

Fixtures and helpers come from test_storage: the same backends, the same shared PostgreSQL
database, so every test makes its own products and asserts only on their releases.
"""

from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone

from app.domain.paging import PageRequest
from app.domain.products import Product
from app.domain.releases import Artifact, ArtifactKind, Release, ReleaseKind
from ports.storage import UnitOfWork
from tests.contract.test_storage import (
    IDS,
    SECOND,
    T0,
    Adapter,
    catalogue,
    storage,
    unique,
    walk_pages,
)

__all__ = ["storage"]  # the fixture, shared with test_storage

# Other zones than T0's: instants must come back equal (and aware) whatever zone they had.
INDIA = timezone(timedelta(hours=5, minutes=30))
NEW_YORK = timezone(timedelta(hours=-5))
ADVISORIES: list[dict[str, object]] = [
    {"id": "CVE-2031-0001", "severity": "critical", "cvss": 9.8, "fixed": True,
     "summary": "Nëw “quoted” text", "refs": ["https://example.test/a", None]},
    {"id": "BDU-2031-00042", "severity": "low", "details": {"component": "agent",
                                                            "versions": []}},
]


def new_release(product: Product, version: str | None = None, *,
                published_at: datetime = T0, yanked_at: datetime | None = None,
                kind: ReleaseKind = ReleaseKind.RELEASE) -> Release:
    """A release with one artifact of each kind, its fields as unlike the defaults as can be:
    a size past 32 bits, a CRC-32 with the top bit set, a file with no digests."""
    release_id = IDS.new_id()
    version = version or unique("1.0")
    folder = f"{product.prefix}{version}/"

    def artifact(name: str, kind: ArtifactKind, size: int, sha256: str | None,
                 crc32: int | None) -> Artifact:
        return Artifact(id=IDS.new_id(), release_id=release_id, key=folder + name, name=name,
                        kind=kind, size=size, etag=f'"{unique("etag")}"', sha256=sha256,
                        crc32=crc32)

    return Release(
        id=release_id, product_id=product.id, version=version, kind=kind,
        title=unique("Release"), notes="Line one\n\n* “notes” with ünïcode", advisories=ADVISORIES,
        published_at=published_at, created_at=T0.astimezone(NEW_YORK) + SECOND,
        yanked_at=yanked_at,
        artifacts=[artifact("disk.qcow2", ArtifactKind.IMAGE, 5 * 2**30 + 7, "ab" * 32,
                            0xFFFF_FFFF),
                   artifact("guide.pdf", ArtifactKind.DOC, 0, None, None),
                   artifact("patch.tar.gz", ArtifactKind.UPDATE, 123_456, "0f" * 32, 0)])


def in_key_order(release: Release) -> Release:
    """The port does not promise an order of a release's artifacts: compare them by key."""
    return replace(release, artifacts=sorted(release.artifacts, key=lambda a: a.key))


def newest_first(releases: list[Release]) -> list[str]:
    return [r.id for r in sorted(releases, key=lambda r: (r.published_at, r.id), reverse=True)]


async def add_releases(storage: Adapter, *releases: Release) -> None:
    async with storage.unit_of_work() as uow:
        for release in releases:
            assert await uow.releases.add(release) is True
        await uow.commit()


async def stored_release(storage: Adapter, release_id: str) -> Release | None:
    async with storage.unit_of_work() as uow:
        return await uow.releases.get(release_id)


# --- add and read back -----------------------------------------------------------------------


async def release_of_version(uow: UnitOfWork, product_id: str, version: str) -> Release | None:
    """The product's release of this version, found the way the portal lists them."""
    after: str | None = None
    while True:
        rows = await uow.releases.list_for_product(product_id, PageRequest(100, after))
        found = [release for release in rows[:100] if release.version == version]
        if found or len(rows) <= 100:
            return found[0] if found else None
        after = rows[99].id


async def test_release_round_trips_with_every_field_of_its_artifacts(storage: Adapter) -> None:
    product, other = await catalogue(storage), await catalogue(storage)
    release = new_release(product, kind=ReleaseKind.SECURITY)
    second = new_release(product, published_at=T0.astimezone(INDIA) + SECOND,
                         yanked_at=T0.astimezone(NEW_YORK) + 2 * SECOND)
    # The same version under another product is another release.
    namesake = new_release(other, release.version)
    async with storage.unit_of_work() as uow:
        assert await uow.releases.add(release) is True
        assert await uow.releases.add(second) is True
        assert await uow.releases.add(namesake) is True
        await uow.commit()

    async with storage.unit_of_work() as uow:
        got = await uow.releases.get(release.id)
        by_version = await release_of_version(uow, product.id, release.version)
        got_second = await release_of_version(uow, product.id, second.version)
        got_namesake = await release_of_version(uow, other.id, release.version)
        versions = await uow.releases.versions(product.id)
        other_versions = await uow.releases.versions(other.id)
        no_versions = await uow.releases.versions(IDS.new_id())
        missing = await uow.releases.get(IDS.new_id())
        missing_version = await release_of_version(uow, product.id, unique("9.9"))
        not_of_other = await release_of_version(uow, other.id, second.version)

    assert got is not None and by_version is not None and got_second is not None
    assert in_key_order(got) == in_key_order(release)
    assert in_key_order(by_version) == in_key_order(release)
    assert in_key_order(got_second) == in_key_order(second)
    assert got_namesake is not None and in_key_order(got_namesake) == in_key_order(namesake)
    assert got_namesake.id != release.id
    # Field by field, with the types the domain uses.
    assert got.kind is ReleaseKind.SECURITY
    assert (got.id, got.product_id, got.version, got.title, got.notes) == (
        release.id, product.id, release.version, release.title, release.notes)
    assert got.advisories == ADVISORIES
    assert all(isinstance(advisory, dict) for advisory in got.advisories)
    assert (got.published_at, got.created_at, got.yanked_at) == (T0, T0 + SECOND, None)
    assert got_second.yanked_at == T0 + 2 * SECOND
    for moment in (got.published_at, got.created_at, got_second.published_at,
                   got_second.yanked_at):
        assert moment is not None and moment.utcoffset() is not None
    assert sorted((a.id, a.release_id, a.key, a.name, a.kind, a.size, a.etag, a.sha256, a.crc32)
                  for a in got.artifacts) == sorted(
        (a.id, release.id, a.key, a.name, a.kind, a.size, a.etag, a.sha256, a.crc32)
        for a in release.artifacts)
    kinds = {a.name: a.kind for a in got.artifacts}
    assert kinds == {"disk.qcow2": ArtifactKind.IMAGE, "guide.pdf": ArtifactKind.DOC,
                     "patch.tar.gz": ArtifactKind.UPDATE}
    assert all(type(a.kind) is ArtifactKind for a in got.artifacts)
    image = next(a for a in got.artifacts if a.kind is ArtifactKind.IMAGE)
    assert (image.size, image.crc32) == (5 * 2**30 + 7, 0xFFFF_FFFF)
    assert versions == {release.version, second.version}
    assert other_versions == {release.version}
    assert no_versions == set()
    assert missing is None and missing_version is None and not_of_other is None


async def test_a_release_without_artifacts_or_advisories(storage: Adapter) -> None:
    product = await catalogue(storage)
    bare = replace(new_release(product), advisories=[], artifacts=[])
    await add_releases(storage, bare)

    got = await stored_release(storage, bare.id)

    assert got == bare
    assert got is not None and got.artifacts == [] and got.advisories == []


async def test_an_uncommitted_add_is_undone(storage: Adapter) -> None:
    product = await catalogue(storage)
    release = new_release(product)
    async with storage.unit_of_work() as uow:
        assert await uow.releases.add(release) is True
        assert await uow.releases.get(release.id) is not None

    async with storage.unit_of_work() as uow:
        assert await uow.releases.get(release.id) is None
        assert await uow.releases.get_artifact(release.artifacts[0].id) is None
        assert await uow.releases.versions(product.id) == set()
        # The version is free again.
        assert await uow.releases.add(new_release(product, release.version)) is True


# --- one release per version -----------------------------------------------------------------

async def test_adding_a_taken_version_returns_false_and_writes_nothing(storage: Adapter) -> None:
    product = await catalogue(storage)
    first = new_release(product)
    await add_releases(storage, first)
    again = new_release(product, first.version, kind=ReleaseKind.FIX,
                        published_at=T0 + timedelta(days=1))

    async with storage.unit_of_work() as uow:
        assert await uow.releases.add(again) is False
        await uow.commit()  # even committed, the refused attempt left nothing behind

    async with storage.unit_of_work() as uow:
        assert await uow.releases.get(again.id) is None
        for artifact in again.artifacts:
            assert await uow.releases.get_artifact(artifact.id) is None
        stored = await release_of_version(uow, product.id, first.version)
        listed = await uow.releases.list_for_product(product.id, PageRequest())
        assert await uow.releases.versions(product.id) == {first.version}
    assert stored is not None and in_key_order(stored) == in_key_order(first)
    assert [r.id for r in listed] == [first.id]
    assert len(listed[0].artifacts) == len(first.artifacts)


async def test_a_version_added_earlier_in_the_same_unit_of_work_is_taken(
        storage: Adapter) -> None:
    product = await catalogue(storage)
    first = new_release(product)
    again = new_release(product, first.version)
    async with storage.unit_of_work() as uow:
        assert await uow.releases.add(first) is True
        assert await uow.releases.add(again) is False
        await uow.commit()

    assert await stored_release(storage, again.id) is None
    stored = await stored_release(storage, first.id)
    assert stored is not None and in_key_order(stored) == in_key_order(first)


async def test_concurrent_adds_of_one_version_have_one_winner(storage: Adapter) -> None:
    product = await catalogue(storage)

    async def add(release: Release, also: Release) -> bool:
        async with storage.unit_of_work() as uow:
            added = await uow.releases.add(release)
            await asyncio.sleep(0.05)  # hold the row while the other caller arrives
            # The refused add left the unit of work usable: its other work still commits.
            assert await uow.releases.add(also) is True
            await uow.commit()
            return added

    for _ in range(3):
        version = unique("2.0")
        one, two = new_release(product, version), new_release(product, version)
        beside_one, beside_two = new_release(product), new_release(product)
        async with asyncio.timeout(10):  # a deadlock fails the test instead of hanging it
            results = await asyncio.gather(add(one, beside_one), add(two, beside_two))

        assert sorted(results) == [False, True]
        winner, loser = (one, two) if results[0] else (two, one)
        async with storage.unit_of_work() as uow:
            stored = await release_of_version(uow, product.id, version)
            assert await uow.releases.get(loser.id) is None
            for artifact in loser.artifacts:
                assert await uow.releases.get_artifact(artifact.id) is None
            for artifact in winner.artifacts:
                found = await uow.releases.get_artifact(artifact.id)
                assert found is not None and found[1] == artifact
            versions = await uow.releases.versions(product.id)
        assert stored is not None and in_key_order(stored) == in_key_order(winner)
        assert {version, beside_one.version, beside_two.version} <= versions


async def test_a_concurrent_add_that_rolls_back_frees_the_version(storage: Adapter) -> None:
    product = await catalogue(storage)
    version = unique("3.0")
    first, second = new_release(product, version), new_release(product, version)
    first_holds, let_go = asyncio.Event(), asyncio.Event()

    async def add_then_roll_back() -> None:
        async with storage.unit_of_work() as uow:
            assert await uow.releases.add(first) is True
            first_holds.set()
            await let_go.wait()

    async def add_and_commit() -> bool:
        await first_holds.wait()
        async with storage.unit_of_work() as uow:
            added = await uow.releases.add(second)
            await uow.commit()
            return added

    async with asyncio.timeout(10):
        holder = asyncio.create_task(add_then_roll_back())
        waiter = asyncio.create_task(add_and_commit())
        await first_holds.wait()
        await asyncio.sleep(0.1)
        let_go.set()
        await holder
        assert await waiter is True

    assert await stored_release(storage, first.id) is None
    stored = await stored_release(storage, second.id)
    assert stored is not None and in_key_order(stored) == in_key_order(second)


# --- listing ---------------------------------------------------------------------------------

async def test_list_for_product_pages_newest_first_without_gaps(storage: Adapter) -> None:
    product, other = await catalogue(storage), await catalogue(storage)
    day = timedelta(days=1)
    # Created (and so id-ordered) unlike their publication order; three share one instant,
    # given in three zones; two are yanked.
    made = [
        new_release(product, published_at=T0 - 2 * day),
        new_release(product, published_at=T0),
        new_release(product, published_at=T0 + 3 * day, yanked_at=T0 + 4 * day),
        new_release(product, published_at=T0.astimezone(UTC)),
        new_release(product, published_at=T0 - day + SECOND / 1_000_000),
        new_release(product, published_at=T0.astimezone(NEW_YORK), yanked_at=T0),
        new_release(product, published_at=T0 - day),
        new_release(product, published_at=T0 + 5 * day),
    ]
    others = [new_release(other, published_at=T0 + n * day / 2) for n in range(-3, 4)]
    await add_releases(storage, *made, *others)
    expected = newest_first(made)
    expected_unyanked = newest_first([r for r in made if r.yanked_at is None])
    assert expected[:2] == [made[7].id, made[2].id]  # the order really is not the ids' order

    async with asyncio.timeout(10):  # a cursor that does not advance fails, not hangs
        async with storage.unit_of_work() as uow:
            first_page = await uow.releases.list_for_product(product.id, PageRequest(limit=3))
            everything = await uow.releases.list_for_product(product.id, PageRequest(limit=50))
            walks = {limit: await walk_pages(
                lambda page: uow.releases.list_for_product(product.id, page), limit)
                for limit in (1, 2, 3, 7, 8)}
            unyanked = {limit: await walk_pages(
                lambda page: uow.releases.list_for_product(product.id, page, include_yanked=False),
                limit) for limit in (1, 2, 3)}
            of_other = await walk_pages(
                lambda page: uow.releases.list_for_product(other.id, page), 2)
            after_last = await uow.releases.list_for_product(
                product.id, PageRequest(limit=3, after=expected[-1]))
            # A cursor at a release yanked since the page was served still pages on from there.
            after_yanked = await uow.releases.list_for_product(
                product.id, PageRequest(limit=50, after=made[5].id), include_yanked=False)
            of_nothing = await uow.releases.list_for_product(IDS.new_id(), PageRequest())

    assert [r.id for r in first_page] == expected[:4]
    assert [r.id for r in everything] == expected
    for limit, walked in walks.items():
        assert [r.id for r in walked] == expected, limit
    for limit, walked in unyanked.items():
        assert [r.id for r in walked] == expected_unyanked, limit
        assert all(r.yanked_at is None for r in walked)
    assert [r.id for r in of_other] == newest_first(others)
    assert after_last == []
    position = expected.index(made[5].id)
    assert [r.id for r in after_yanked] == [
        release_id for release_id in expected[position + 1:] if release_id in expected_unyanked]
    assert of_nothing == []
    # Listed releases carry their artifacts, like get does.
    by_id = {r.id: r for r in made}
    assert [in_key_order(r) for r in everything] == [in_key_order(by_id[i]) for i in expected]


# --- artifacts -------------------------------------------------------------------------------

async def test_get_artifact_finds_the_file_and_its_release(storage: Adapter) -> None:
    product = await catalogue(storage)
    release = new_release(product)
    neighbour = new_release(product, yanked_at=T0)
    await add_releases(storage, release, neighbour)

    async with storage.unit_of_work() as uow:
        found = [await uow.releases.get_artifact(a.id) for a in release.artifacts]
        of_yanked = await uow.releases.get_artifact(neighbour.artifacts[1].id)
        unknown = await uow.releases.get_artifact(IDS.new_id())
        a_release_id = await uow.releases.get_artifact(release.id)

    for artifact, hit in zip(release.artifacts, found, strict=True):
        assert hit is not None
        got_release, got_artifact = hit
        assert got_artifact == artifact
        assert in_key_order(got_release) == in_key_order(release)
    assert of_yanked is not None
    assert of_yanked[0].id == neighbour.id and of_yanked[0].yanked_at == T0
    assert of_yanked[1] == neighbour.artifacts[1]
    assert unknown is None
    assert a_release_id is None


# --- yanking ---------------------------------------------------------------------------------

async def test_set_yanked_sets_and_clears_the_moment(storage: Adapter) -> None:
    product = await catalogue(storage)
    release, bystander = new_release(product), new_release(product)
    await add_releases(storage, release, bystander)
    moment = datetime(2031, 6, 7, 8, 9, 10, 654321, tzinfo=INDIA)

    async with storage.unit_of_work() as uow:
        await uow.releases.set_yanked(release.id, moment)
        await uow.commit()
    yanked = await stored_release(storage, release.id)
    async with storage.unit_of_work() as uow:
        visible = await uow.releases.list_for_product(product.id, PageRequest(),
                                                      include_yanked=False)
        by_version = await release_of_version(uow, product.id, release.version)

    assert yanked is not None and yanked.yanked_at == moment
    assert yanked.yanked_at.utcoffset() is not None
    assert yanked.yanked_at == datetime(2031, 6, 7, 2, 39, 10, 654321, tzinfo=UTC)
    assert in_key_order(yanked) == in_key_order(replace(release, yanked_at=moment))
    assert by_version is not None and by_version.yanked_at == moment
    assert [r.id for r in visible] == [bystander.id]
    assert await stored_release(storage, bystander.id) == bystander

    async with storage.unit_of_work() as uow:
        await uow.releases.set_yanked(release.id, None)
        await uow.commit()
    restored = await stored_release(storage, release.id)
    assert restored is not None and restored.yanked_at is None
    assert in_key_order(restored) == in_key_order(release)


async def test_an_uncommitted_yank_is_undone(storage: Adapter) -> None:
    product = await catalogue(storage)
    release = new_release(product)
    await add_releases(storage, release)

    async with storage.unit_of_work() as uow:
        await uow.releases.set_yanked(release.id, T0)
        got = await uow.releases.get(release.id)
        assert got is not None and got.yanked_at == T0

    stored = await stored_release(storage, release.id)
    assert stored is not None and stored.yanked_at is None
