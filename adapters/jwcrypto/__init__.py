"""EdDSA (Ed25519) JWTs with jwcrypto, and the signing key's file."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from jwcrypto import jwk, jwt
from jwcrypto.common import JWException

from ports.security import InvalidToken

ALGORITHM = "EdDSA"
LEEWAY_SECONDS = 30


class KeyFileError(Exception):
    """The configured key file is missing, unreadable, or not an Ed25519 private key."""


class JwcryptoTokenCodec:
    def __init__(self, key: jwk.JWK, issuer: str, audience: str) -> None:
        if key.get("kty") != "OKP" or key.get("crv") != "Ed25519" or not key.has_private:
            raise KeyFileError("the token signing key must be an Ed25519 private key")
        self._key = key
        self._kid = key["kid"]
        self._public = jwk.JWKSet()
        self._public.add(jwk.JWK(**key.export_public(as_dict=True)))
        self._issuer = issuer
        self._audience = audience

    def encode(self, claims: dict[str, Any]) -> str:
        token = jwt.JWT(header={"alg": ALGORITHM, "kid": self._kid, "typ": "JWT"},
                        claims={**claims, "iss": self._issuer, "aud": self._audience})
        token.make_signed_token(self._key)
        return str(token.serialize())

    def decode(self, token: str) -> dict[str, Any]:
        try:
            verified = jwt.JWT(
                jwt=token, key=self._public, algs=[ALGORITHM], expected_type="JWS",
                check_claims={"exp": None, "iat": None, "sub": None, "jti": None,
                              "iss": self._issuer, "aud": self._audience},
            )
            verified.leeway = LEEWAY_SECONDS
            claims = json.loads(verified.claims)
        except (JWException, ValueError, TypeError, KeyError) as exc:
            raise InvalidToken(type(exc).__name__) from None
        if not isinstance(claims, dict):
            raise InvalidToken("claims are not an object")
        return claims

    def public_jwks(self) -> dict[str, Any]:
        keys: dict[str, Any] = json.loads(self._public.export(private_keys=False))
        for key in keys["keys"]:
            key.update(use="sig", alg=ALGORITHM)
        return keys


def new_signing_key() -> jwk.JWK:
    key = jwk.JWK.generate(kty="OKP", crv="Ed25519")
    return jwk.JWK(**{**key.export(as_dict=True), "kid": key.thumbprint()})


def write_key_file(path: Path, key: jwk.JWK) -> None:
    """Write a private JWK readable by its owner only; never overwrite an existing file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(key.export(private_key=True))


def read_key_file(path: Path) -> jwk.JWK:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise KeyFileError(f"cannot read the key file {path}: {exc.strerror}") from None
    try:
        if data.lstrip().startswith(b"-----BEGIN"):
            key = jwk.JWK.from_pem(data)
        else:
            key = jwk.JWK.from_json(data)
    except (JWException, ValueError, TypeError) as exc:
        raise KeyFileError(f"{path} holds no readable key: {exc}") from None
    if "kid" not in key:
        key = jwk.JWK(**{**key.export(as_dict=True), "kid": key.thumbprint()})
    return key


def load_signing_key(configured: Path | None, generated: Path) -> jwk.JWK:
    """The configured key file, or a key generated once into `generated` and reused."""
    if configured is not None:
        return read_key_file(configured)
    if not generated.exists():
        try:
            write_key_file(generated, new_signing_key())
        except FileExistsError:
            pass  # another process created it first; read theirs
    return read_key_file(generated)
