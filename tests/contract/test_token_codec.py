"""The TokenCodec port against its adapter (jwcrypto).

The API tests (tests/api/test_auth.py) refuse forged and broken tokens through the whole
stack; these hold the codec itself to its port, above all once a token has been verified
before and the adapter skips its signature check."""

from __future__ import annotations

import time
from typing import Any

import pytest
from jwcrypto import jwk

from adapters.jwcrypto import LEEWAY_SECONDS, VERIFIED_TOKENS_KEPT, JwcryptoTokenCodec
from ports.security import InvalidToken, TokenCodec

ISSUER, AUDIENCE = "https://portal.example", "portal"


def jwcrypto_codec() -> JwcryptoTokenCodec:
    return JwcryptoTokenCodec(jwk.JWK.generate(kty="OKP", crv="Ed25519", kid="k1"),
                              ISSUER, AUDIENCE)


ADAPTERS = {"jwcrypto": jwcrypto_codec}


@pytest.fixture(params=sorted(ADAPTERS))
def codec(request: pytest.FixtureRequest) -> TokenCodec:
    return ADAPTERS[request.param]()


def claims(**changes: Any) -> dict[str, Any]:
    now = int(time.time())
    return {"sub": "user-1", "jti": "token-1", "iat": now, "exp": now + 900, **changes}


def test_a_token_round_trips_its_claims_and_names_its_issuer(codec: TokenCodec) -> None:
    token = codec.encode(claims(sid="session-1"))
    decoded = codec.decode(token)
    assert decoded["sub"] == "user-1" and decoded["sid"] == "session-1"
    assert decoded["iss"] == ISSUER and decoded["aud"] == AUDIENCE


def test_a_token_verified_before_is_still_checked_for_expiry(
        codec: TokenCodec, monkeypatch: pytest.MonkeyPatch) -> None:
    now = time.time()
    token = codec.encode(claims(exp=int(now) + 60))
    assert codec.decode(token)["sub"] == "user-1"
    assert codec.decode(token)["sub"] == "user-1"  # the second time from what was verified

    monkeypatch.setattr(time, "time", lambda: now + 61 + LEEWAY_SECONDS)
    with pytest.raises(InvalidToken):
        codec.decode(token)


def test_the_caller_cannot_change_what_a_later_decode_returns(codec: TokenCodec) -> None:
    token = codec.encode(claims())
    codec.decode(token)["sub"] = "someone-else"
    assert codec.decode(token)["sub"] == "user-1"


def test_another_signature_on_a_verified_token_is_refused() -> None:
    codec = jwcrypto_codec()
    token = codec.encode(claims())
    codec.decode(token)
    head, body, signature = token.split(".")
    forged = f"{head}.{body}.{signature[:-4]}{'AAAA' if signature[-4:] != 'AAAA' else 'BBBB'}"
    with pytest.raises(InvalidToken):
        codec.decode(forged)
    other = jwcrypto_codec().encode(claims())  # the same claims signed with another key
    with pytest.raises(InvalidToken):
        codec.decode(other)


def test_what_is_kept_of_verified_tokens_is_bounded() -> None:
    codec = jwcrypto_codec()
    tokens = [codec.encode(claims(jti=f"token-{n}")) for n in range(VERIFIED_TOKENS_KEPT + 10)]
    for token in tokens:
        codec.decode(token)
    assert len(codec._verified) == VERIFIED_TOKENS_KEPT
    assert codec.decode(tokens[0])["jti"] == "token-0"  # verified again, not refused
