"""Long-term keys of an agent: Ed25519 for signatures (cards, attestations), X25519 for the end-to-end channel.

Keys live in PEM files (PKCS#8, mode 0600), created on first use. Public keys travel as JWKs (RFC 8037) and are
named by their RFC 7638 thumbprint, which is also the `kid` of everything they sign.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey

PrivateKey = Ed25519PrivateKey | X25519PrivateKey


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def unb64url(text: str) -> bytes:
    """Strict base64url without padding; raises ValueError on anything else."""
    if not isinstance(text, str) or "=" in text:
        raise ValueError("not base64url text")
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def raw_public(key: Ed25519PublicKey | X25519PublicKey) -> bytes:
    return key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def public_jwk(key: Ed25519PublicKey | X25519PublicKey) -> dict[str, str]:
    curve = "Ed25519" if isinstance(key, Ed25519PublicKey) else "X25519"
    return {"kty": "OKP", "crv": curve, "x": b64url(raw_public(key))}


def thumbprint(jwk: dict[str, Any]) -> str:
    """RFC 7638: SHA-256 over the JWK's required members in lexicographic order."""
    required = {name: jwk[name] for name in ("crv", "kty", "x")}
    return b64url(hashlib.sha256(json.dumps(required, separators=(",", ":"), sort_keys=True).encode()).digest())


def ed25519_from_jwk(jwk: dict[str, Any]) -> Ed25519PublicKey:
    if not isinstance(jwk, dict) or jwk.get("kty") != "OKP" or jwk.get("crv") != "Ed25519":
        raise ValueError("not an Ed25519 JWK")
    return Ed25519PublicKey.from_public_bytes(unb64url(jwk["x"]))


def x25519_from_text(text: str) -> X25519PublicKey:
    return X25519PublicKey.from_public_bytes(unb64url(text))


def load_or_create(path: Path, kind: type[PrivateKey]) -> PrivateKey:
    """The private key in `path`; a new one, written with mode 0600, when the file does not exist."""
    if path.exists():
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
        if not isinstance(key, kind):
            raise ValueError(f"{path} holds a {type(key).__name__}, not a {kind.__name__}")
        return key
    key = kind.generate()
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "wb") as handle:
        handle.write(pem)
    return key
