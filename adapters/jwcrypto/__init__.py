"""EdDSA (Ed25519) JWTs with jwcrypto, and the signing key's file."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

from jwcrypto import jwk, jws, jwt
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
            # Given the token, jwcrypto's constructor would validate it at once, with its
            # own 60 s leeway: the leeway is set first, and the token read after.
            verified = jwt.JWT(
                algs=[ALGORITHM], expected_type="JWS",
                check_claims={"exp": None, "iat": None, "sub": None, "jti": None,
                              "iss": self._issuer, "aud": self._audience})
            verified.leeway = LEEWAY_SECONDS
            verified.deserialize(token, self._public)
            claims = json.loads(verified.claims)
        except (JWException, ValueError, TypeError, KeyError) as exc:
            raise InvalidToken(type(exc).__name__) from None
        if not isinstance(claims, dict):
            raise InvalidToken("claims are not an object")
        # A check_claims list checks `nbf` only when it is required; ours may leave it out.
        not_before = claims.get("nbf")
        if not_before is not None and (not isinstance(not_before, int) or isinstance(
                not_before, bool) or not_before > time.time() + LEEWAY_SECONDS):
            raise InvalidToken("not valid yet")
        return claims

    def public_jwks(self) -> dict[str, Any]:
        keys: dict[str, Any] = json.loads(self._public.export(private_keys=False))
        for key in keys["keys"]:
            key.update(use="sig", alg=ALGORITHM)
        return keys


LICENSE_TYPE = "license+jws"


class InvalidLicenseFile(Exception):
    """The file is not a license file, or its signature does not verify."""


class JwcryptoLicenseSigner:
    """Signs license files for the boxed software to check offline."""

    def __init__(self, key: jwk.JWK) -> None:
        if key.get("kty") != "OKP" or key.get("crv") != "Ed25519" or not key.has_private:
            raise KeyFileError("the license signing key must be an Ed25519 private key")
        self._key = key

    def sign(self, claims: dict[str, Any]) -> str:
        token = jws.JWS(json.dumps(claims, sort_keys=True, separators=(",", ":")).encode())
        token.add_signature(self._key, alg=ALGORITHM, protected={
            "alg": ALGORITHM, "kid": self._key["kid"], "typ": LICENSE_TYPE})
        return str(token.serialize(compact=True))

    def public_jwks(self) -> dict[str, Any]:
        public = jwk.JWKSet()
        public.add(jwk.JWK(**self._key.export_public(as_dict=True)))
        keys: dict[str, Any] = json.loads(public.export(private_keys=False))
        for key in keys["keys"]:
            key.update(use="sig", alg=ALGORITHM)
        return keys


def verify_license_file(token: str, jwks: dict[str, Any]) -> dict[str, Any]:
    """The claims of a license file whose signature a key of `jwks` verifies."""
    try:
        keys = jwk.JWKSet.from_json(json.dumps(jwks))
        parsed = jws.JWS()
        parsed.deserialize(token.strip())
        header = parsed.jose_header
        if header.get("typ") != LICENSE_TYPE:
            raise InvalidLicenseFile("this is not a license file")
        key = keys.get_key(header.get("kid", ""))
        if key is None:
            raise InvalidLicenseFile("no key in the key set has this file's key id")
        parsed.allowed_algs = [ALGORITHM]
        parsed.verify(key, alg=ALGORITHM)
        claims = json.loads(parsed.payload)
    except InvalidLicenseFile:
        raise
    except (JWException, ValueError, TypeError, KeyError) as exc:
        raise InvalidLicenseFile(f"the signature does not verify ({type(exc).__name__})") \
            from None
    if not isinstance(claims, dict):
        raise InvalidLicenseFile("the signed content is not a set of claims")
    return claims


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
