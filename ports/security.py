"""Ports for password hashing and signed tokens."""

from __future__ import annotations

from typing import Any, Protocol


class InvalidToken(Exception):
    """Bad signature, wrong algorithm, expired, wrong issuer or audience, or malformed."""


class LicenseSigner(Protocol):
    def sign(self, claims: dict[str, Any]) -> str:
        """A compact JWS of the claims, signed with the license key (not the token key)."""

    def public_jwks(self) -> dict[str, Any]:
        """The public keys that verify license files, as a JWK set."""


class PasswordHasher(Protocol):
    async def hash(self, password: str) -> str:
        """A salted hash; computed off the event loop."""

    async def verify(self, password_hash: str | None, password: str) -> bool:
        """False for a wrong password or an unreadable hash; computed off the event loop.
        With no hash (no such account) it takes as long as a real check and answers False,
        so that timing does not tell which accounts exist."""

    def needs_rehash(self, password_hash: str) -> bool: ...


class TokenCodec(Protocol):
    def encode(self, claims: dict[str, Any]) -> str:
        """Sign claims (the codec adds iss and aud) into a compact token."""

    def decode(self, token: str) -> dict[str, Any]:
        """Verify signature, algorithm, exp, iss and aud; the claims, or InvalidToken."""

    def public_jwks(self) -> dict[str, Any]:
        """The public keys, as a JWK set, for /.well-known/jwks.json."""
