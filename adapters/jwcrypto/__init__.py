"""EdDSA (Ed25519) JWTs with jwcrypto, and the signing key's file."""

from __future__ import annotations

import base64
import json
import os
import time
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from jwcrypto import jwk, jws, jwt
from jwcrypto.common import JWException

from ports.security import InvalidToken

ALGORITHM = "EdDSA"
LEEWAY_SECONDS = 30
# Tokens whose signature verified, kept so that a client's next requests skip the
# verification (70 µs of a request's few hundred); their claims are checked on every use.
VERIFIED_TOKENS_KEPT = 4096


def _base64url(text: str) -> bytes:
    """Strictly: a character outside base64url is an error, not skipped."""
    return base64.b64decode(text + "=" * (-len(text) % 4), altchars=b"-_", validate=True)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


class KeyFileError(Exception):
    """The configured key file is missing, unreadable, or not an Ed25519 private key."""


class JwcryptoTokenCodec:
    def __init__(self, key: jwk.JWK, issuer: str, audience: str) -> None:
        if key.get("kty") != "OKP" or key.get("crv") != "Ed25519" or not key.has_private:
            raise KeyFileError("the token signing key must be an Ed25519 private key")
        self._key = key
        self._kid = key["kid"]
        public = jwk.JWK(**key.export_public(as_dict=True))
        self._public = jwk.JWKSet()
        self._public.add(public)
        self._verifier: Ed25519PublicKey = public.get_op_key("verify")
        self._issuer = issuer
        self._audience = audience
        self._verified: dict[str, dict[str, Any]] = {}

    def encode(self, claims: dict[str, Any]) -> str:
        token = jwt.JWT(header={"alg": ALGORITHM, "kid": self._kid, "typ": "JWT"},
                        claims={**claims, "iss": self._issuer, "aud": self._audience})
        token.make_signed_token(self._key)
        return str(token.serialize())

    def decode(self, token: str) -> dict[str, Any]:
        """Checked as jwcrypto checks it, without its costs per call (a deep copy of its
        header registry and a key thumbprint: 200 µs of a request's 1.3 ms): the compact
        form, the algorithm (EdDSA and nothing else), the signature with the preloaded
        Ed25519 key, then every claim. A token verified before skips to the claims: the
        very same text carries the very same signature."""
        known = self._verified.get(token)
        if known is not None:
            claims = dict(known)
            self._check_claims(claims)
            return claims
        try:
            head, body, signature = token.split(".")
            header = json.loads(_base64url(head))
            if not isinstance(header, dict) or header.get("alg") != ALGORITHM or \
                    header.get("kid", self._kid) != self._kid or "crit" in header:
                raise InvalidToken("not one of this portal's tokens")
            self._verifier.verify(_base64url(signature), f"{head}.{body}".encode("ascii"))
            claims = json.loads(_base64url(body))
        except (ValueError, TypeError, UnicodeError, InvalidSignature) as exc:
            raise InvalidToken(type(exc).__name__) from None
        if not isinstance(claims, dict):
            raise InvalidToken("claims are not an object")
        self._check_claims(claims)
        if len(self._verified) >= VERIFIED_TOKENS_KEPT:
            del self._verified[next(iter(self._verified))]  # the oldest
        self._verified[token] = dict(claims)
        return claims

    def _check_claims(self, claims: dict[str, Any]) -> None:
        now = time.time()
        for name in ("exp", "iat"):
            if not _is_int(claims.get(name)):
                raise InvalidToken(f"{name} missing or not a number")
        for name in ("sub", "jti"):
            if not isinstance(claims.get(name), str):
                raise InvalidToken(f"{name} missing")
        if claims.get("iss") != self._issuer:
            raise InvalidToken("another issuer")
        audience = claims.get("aud")
        if audience != self._audience and not (
                isinstance(audience, list) and self._audience in audience):
            raise InvalidToken("another audience")
        if claims["exp"] < now - LEEWAY_SECONDS:
            raise InvalidToken("expired")
        not_before = claims.get("nbf")
        if not_before is not None and (not _is_int(not_before)
                                       or not_before > now + LEEWAY_SECONDS):
            raise InvalidToken("not valid yet")

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
