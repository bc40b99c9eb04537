"""Skill certificates (the paper's Skill Verification Engine): an attestor measures a contractor's skills on items
whose answers it knows, puts each measured skill in a SHA-256 Merkle tree and signs the root; the contractor shows
one inclusion proof per skill in its card; the client checks the proof and the attestor's signature before it
believes the measured score.

The tree is RFC 6962's: leaf hash SHA-256(0x00 || leaf), node hash SHA-256(0x01 || left || right), an unbalanced
tree splits at the largest power of two below its size. A leaf is the RFC 8785 JSON of {skill, subject, score,
items, benchmark, attestedAt} (`score`: the mean grade on `items` items); `subject` is the thumbprint of the
contractor's card-signing key, so a certificate does not transfer to another contractor. The signed statement is
a compact JWS (EdDSA) over {root, subject, leaves, issuedAt, expiresAt}, with the attestor's key in its header
as `jwk`.
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass
from typing import Any, cast

import jwt
import rfc8785
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from jwt import api_jws

from shared.security.keys import ed25519_from_jwk, public_jwk, thumbprint, unb64url

ALGORITHM = "EdDSA"


class AttestationError(Exception):
    """A certificate or proof that does not hold; the message says which check failed."""


def leaf_hash(leaf: dict[str, Any]) -> bytes:
    return hashlib.sha256(b"\x00" + rfc8785.dumps(leaf)).digest()


def _node(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def _split(size: int) -> int:
    """The largest power of two smaller than `size` (size >= 2)."""
    return 1 << ((size - 1).bit_length() - 1)


def merkle_root(hashes: list[bytes]) -> bytes:
    if not hashes:
        return hashlib.sha256(b"").digest()
    if len(hashes) == 1:
        return hashes[0]
    k = _split(len(hashes))
    return _node(merkle_root(hashes[:k]), merkle_root(hashes[k:]))


def inclusion_path(hashes: list[bytes], index: int) -> list[str]:
    """The audit path of leaf `index` (RFC 6962 section 2.1.1), leaf level first, hex."""
    if len(hashes) <= 1:
        return []
    k = _split(len(hashes))
    if index < k:
        return [*inclusion_path(hashes[:k], index), merkle_root(hashes[k:]).hex()]
    return [*inclusion_path(hashes[k:], index - k), merkle_root(hashes[:k]).hex()]


def root_from_path(leaf: bytes, index: int, size: int, path: list[str]) -> bytes:
    """The root that leaf `index` of a tree of `size` leaves and its audit path imply (RFC 9162 2.1.3.2)."""
    if not 0 <= index < size:
        raise AttestationError(f"leaf index {index} outside a tree of {size} leaves")
    node, last = index, size - 1
    current = leaf
    for sibling_hex in path:
        sibling = bytes.fromhex(sibling_hex)
        if last == 0:
            raise AttestationError("the inclusion path is longer than the tree is deep")
        if node % 2 == 1 or node == last:
            current = _node(sibling, current)
            if node % 2 == 0:
                while node % 2 == 0 and node != 0:
                    node, last = node >> 1, last >> 1
        else:
            current = _node(current, sibling)
        node, last = node >> 1, last >> 1
    if last != 0:
        raise AttestationError("the inclusion path is shorter than the tree is deep")
    return current


@dataclass(frozen=True)
class AttestedSkill:
    """A skill as an attestor measured it: the mean grade of the answers on `items` known-answer items."""

    skill: str
    score: float
    benchmark: str
    items: int = 1


def issue_certificate(
    attestor: Ed25519PrivateKey, subject: str, skills: list[AttestedSkill], valid_s: float = 30 * 86400
) -> dict[str, Any]:
    """A certificate over `skills` for the contractor whose card-signing key has thumbprint `subject`."""
    now = int(time.time())
    leaves = [
        {
            "skill": s.skill,
            "subject": subject,
            "score": round(s.score, 6),
            "items": s.items,
            "benchmark": s.benchmark,
            "attestedAt": now,
        }
        for s in skills
    ]
    hashes = [leaf_hash(leaf) for leaf in leaves]
    statement = {
        "root": merkle_root(hashes).hex(),
        "subject": subject,
        "leaves": len(leaves),
        "issuedAt": now,
        "expiresAt": now + int(valid_s),
    }
    jwk = public_jwk(attestor.public_key())
    headers = {"kid": thumbprint(jwk), "typ": "JOSE", "jwk": jwk}
    signed = api_jws.encode(rfc8785.dumps(cast(Any, statement)), attestor, algorithm=ALGORITHM, headers=headers)
    proofs = {
        leaf["skill"]: {"leaf": leaf, "index": i, "path": inclusion_path(hashes, i)} for i, leaf in enumerate(leaves)
    }
    return {"statement": signed, "proofs": proofs}


def verify_statement(certificate: dict[str, Any], trusted_attestors: set[str], subject: str) -> dict[str, Any]:
    """The certificate's signed statement, after checking signature, attestor, subject and validity."""
    token = certificate.get("statement") if isinstance(certificate, dict) else None
    if not isinstance(token, str):
        raise AttestationError("the certificate has no signed statement")
    try:
        header = json.loads(unb64url(token.split(".")[0]))
        key = ed25519_from_jwk(header["jwk"])
        attestor = thumbprint(header["jwk"])
        statement = json.loads(api_jws.decode_complete(token, key, algorithms=[ALGORITHM])["payload"])
    except jwt.PyJWTError:
        raise AttestationError("the certificate's signature does not match its statement") from None
    except (ValueError, KeyError, TypeError, IndexError):
        raise AttestationError("the certificate's statement is malformed") from None
    if attestor not in trusted_attestors:
        raise AttestationError(f"attestor {attestor} is not trusted")
    if statement.get("subject") != subject:
        raise AttestationError("the certificate was issued to another contractor's key")
    if not statement.get("issuedAt", 0) <= time.time() <= statement.get("expiresAt", 0):
        raise AttestationError("the certificate is expired or not yet valid")
    return statement


def certified_skills(
    certificate: dict[str, Any] | None, trusted_attestors: set[str], subject: str | None
) -> dict[str, AttestedSkill]:
    """The skills whose inclusion proofs hold against the certificate's signed root, as measured (nothing when
    the certificate or any check fails: a forged proof proves nothing). Raises nothing."""
    if not certificate or not subject or not trusted_attestors:
        return {}
    try:
        statement = verify_statement(certificate, trusted_attestors, subject)
    except AttestationError:
        return {}
    certified = {}
    for skill, proof in (certificate.get("proofs") or {}).items():
        if _holds(skill, proof, statement):
            leaf = proof["leaf"]
            measured = _measured(skill, leaf)
            if measured is not None:
                certified[skill] = measured
    return certified


def _measured(skill: str, leaf: dict[str, Any]) -> AttestedSkill | None:
    score, items = leaf.get("score"), leaf.get("items", 1)
    if isinstance(score, bool) or not isinstance(score, int | float) or not 0.0 <= score <= 1.0:
        return None
    if isinstance(items, bool) or not isinstance(items, int) or items < 1:
        return None
    return AttestedSkill(skill, float(score), str(leaf.get("benchmark", "")), items)


def check_proof(skill: str, proof: Any, statement: dict[str, Any]) -> None:
    """Raises AttestationError unless `proof` includes `skill` in the tree whose root `statement` signs."""
    if not isinstance(proof, dict) or not isinstance(proof.get("leaf"), dict):
        raise AttestationError(f"no proof for skill {skill!r}")
    leaf = proof["leaf"]
    if leaf.get("skill") != skill or leaf.get("subject") != statement["subject"]:
        raise AttestationError(f"the proof's leaf is for another skill or contractor than {skill!r}")
    try:
        root = root_from_path(leaf_hash(leaf), int(proof["index"]), int(statement["leaves"]), list(proof["path"]))
    except (KeyError, TypeError, ValueError) as error:
        raise AttestationError(f"the proof for {skill!r} is malformed: {error}") from None
    if root.hex() != statement["root"]:
        raise AttestationError(f"the proof for {skill!r} does not lead to the signed root")


def _holds(skill: str, proof: Any, statement: dict[str, Any]) -> bool:
    try:
        check_proof(skill, proof, statement)
    except AttestationError:
        return False
    return True
