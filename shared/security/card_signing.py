"""Signed Agent Cards in the A2A standard form, and the client's trust in them (pin on first use, signed rotation).

A signature is a JWS (EdDSA over Ed25519) with a detached payload: the RFC 8785 canonical JSON of the card as the
A2A v1.0 data model sees it, which is what the official `a2a-sdk` signs and verifies. That view keeps the v1.0
fields only (a legacy `url` is not in it, so a verified card's `url` must be one of its signed
`supportedInterfaces`), without `signatures`, with empty strings, lists and objects removed. The protected header
carries the signing key as `jwk` and its RFC 7638 thumbprint as `kid`.
"""

from __future__ import annotations

import json
from typing import Any

import jwt
import rfc8785
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from jwt import api_jws

from shared.security.keys import b64url, ed25519_from_jwk, public_jwk, thumbprint, unb64url

ALGORITHM = "EdDSA"
CARD_FIELDS = (
    "name",
    "description",
    "supportedInterfaces",
    "provider",
    "version",
    "documentationUrl",
    "capabilities",
    "securitySchemes",
    "securityRequirements",
    "defaultInputModes",
    "defaultOutputModes",
    "skills",
    "iconUrl",
)
SKILL_FIELDS = ("id", "name", "description", "tags", "examples", "inputModes", "outputModes", "securityRequirements")
INTERFACE_FIELDS = ("url", "protocolBinding", "tenant", "protocolVersion")
LEGACY_SCHEME_TYPES = {
    "apiKey": "apiKeySecurityScheme",
    "http": "httpAuthSecurityScheme",
    "oauth2": "oauth2SecurityScheme",
    "openIdConnect": "openIdConnectSecurityScheme",
    "mutualTLS": "mtlsSecurityScheme",
}


class CardTrustError(Exception):
    """A card that cannot be trusted: a bad signature, or a key that changed without the pinned key's consent."""


def _pick(source: Any, names: tuple[str, ...]) -> dict[str, Any]:
    return {name: source[name] for name in names if isinstance(source, dict) and name in source}


def _clean_empty(value: Any) -> Any:
    if isinstance(value, dict):
        cleaned = {k: c for k, v in value.items() if (c := _clean_empty(v)) is not None}
        return cleaned or None
    if isinstance(value, list):
        items = [c for v in value if (c := _clean_empty(v)) is not None]
        return items or None
    return None if value == "" else value


def _security_requirements(legacy: list[dict[str, list[str]]]) -> list[dict[str, Any]]:
    return [{"schemes": {name: {"list": scopes} for name, scopes in item.items()}} for item in legacy]


def _security_schemes(schemes: dict[str, Any]) -> dict[str, Any]:
    modern = {}
    for name, scheme in schemes.items():
        scheme = dict(scheme)
        kind = scheme.pop("type", None)
        if kind == "apiKey" and "in" in scheme:
            scheme["location"] = scheme.pop("in")
        modern[name] = {LEGACY_SCHEME_TYPES[kind]: scheme} if kind in LEGACY_SCHEME_TYPES else scheme
    return modern


def signed_view(card: dict[str, Any]) -> dict[str, Any]:
    """The card as the A2A v1.0 data model holds it: what a signature covers."""
    view = _pick(card, CARD_FIELDS)
    if "supportedInterfaces" not in view and card.get("url"):  # a legacy card: its url is its one interface
        view["supportedInterfaces"] = [
            {
                "url": card["url"],
                "protocolBinding": card.get("preferredTransport", "JSONRPC"),
                "protocolVersion": card.get("protocolVersion", "0.3.0"),
            }
        ]
    view["supportedInterfaces"] = [_pick(i, INTERFACE_FIELDS) for i in view.get("supportedInterfaces") or []]
    capabilities = card.get("capabilities") or {}
    view["capabilities"] = {
        **_pick(capabilities, ("streaming", "pushNotifications", "extendedAgentCard")),
        "extensions": [
            {**_pick(e, ("uri", "description", "params")), **({"required": True} if e.get("required") else {})}
            for e in capabilities.get("extensions") or []
        ],
    }
    skills = []
    for skill in card.get("skills") or []:
        picked = _pick(skill, SKILL_FIELDS)
        if "security" in skill and "securityRequirements" not in picked:
            picked["securityRequirements"] = _security_requirements(skill["security"])
        skills.append(picked)
    view["skills"] = skills
    if card.get("security") is not None and "securityRequirements" not in view:
        view["securityRequirements"] = _security_requirements(card["security"])
    if isinstance(card.get("securitySchemes"), dict):
        view["securitySchemes"] = _security_schemes(card["securitySchemes"])
    if isinstance(card.get("provider"), dict):
        view["provider"] = _pick(card["provider"], ("url", "organization"))
    return _clean_empty(view) or {}


def signing_payload(card: dict[str, Any]) -> bytes:
    return rfc8785.dumps(signed_view(card))


def sign_card(card: dict[str, Any], keys: list[Ed25519PrivateKey]) -> dict[str, Any]:
    """The card with one signature per key, the current key first (a rotation adds the previous key after it)."""
    payload = signing_payload(card)
    signatures = []
    for key in keys:
        jwk = public_jwk(key.public_key())
        headers = {"kid": thumbprint(jwk), "typ": "JOSE", "jwk": jwk}
        compact = api_jws.encode(payload, key, algorithm=ALGORITHM, headers=headers)
        protected, _, signature = compact.split(".")
        signatures.append({"protected": protected, "signature": signature})
    return {**card, "signatures": signatures}


def _verified_kid(signature: Any, encoded_payload: str) -> str:
    if not isinstance(signature, dict) or not all(
        isinstance(signature.get(k), str) for k in ("protected", "signature")
    ):
        raise CardTrustError("a card signature needs 'protected' and 'signature' strings")
    try:
        header = json.loads(unb64url(signature["protected"]))
        jwk = header["jwk"]
        key = ed25519_from_jwk(jwk)
    except (ValueError, KeyError, TypeError) as error:
        raise CardTrustError(f"a card signature's protected header is unusable: {error}") from None
    if header.get("alg") != ALGORITHM:
        raise CardTrustError(f"card signature algorithm {header.get('alg')!r} refused; only {ALGORITHM} is accepted")
    kid = thumbprint(jwk)
    if header.get("kid") != kid:
        raise CardTrustError("a card signature's kid is not the thumbprint of its jwk")
    token = f"{signature['protected']}.{encoded_payload}.{signature['signature']}"
    try:
        api_jws.decode_complete(token, key, algorithms=[ALGORITHM])
    except jwt.PyJWTError:
        raise CardTrustError(
            f"the card's signature by key {kid} does not match its content (forged or altered)"
        ) from None
    return kid


def verify_card(card: dict[str, Any]) -> list[str]:
    """The kids that signed the card, current key first; [] for an unsigned card. Every signature present must
    verify, and a signed card's `url` must be one of its signed interfaces."""
    signatures = card.get("signatures") or []
    if not isinstance(signatures, list):
        raise CardTrustError("'signatures' must be a list")
    if not signatures:
        return []
    encoded = b64url(signing_payload(card))
    kids = [_verified_kid(signature, encoded) for signature in signatures]
    interfaces = {i.get("url") for i in card.get("supportedInterfaces") or [] if isinstance(i, dict)}
    if card.get("url") and interfaces and card["url"] not in interfaces:
        raise CardTrustError(f"the card's url {card['url']!r} is not one of its signed interfaces")
    return kids


def signing_keys(card: dict[str, Any]) -> dict[str, Ed25519PublicKey]:
    """kid -> public key of every signature that verifies on the card (CardTrustError if one does not)."""
    verify_card(card)
    return keys_of_signatures(card.get("signatures") or [])


def keys_of_signatures(signatures: list[Any]) -> dict[str, Ed25519PublicKey]:
    """kid -> public key named by each signature's protected header (of a card verified before)."""
    keys = {}
    for signature in signatures:
        protected = signature["protected"] if isinstance(signature, dict) else signature.protected
        jwk = json.loads(unb64url(protected))["jwk"]
        keys[thumbprint(jwk)] = ed25519_from_jwk(jwk)
    return keys


def key_to_pin(card: dict[str, Any], pinned: str | None) -> str | None:
    """Trust on first use: the key to pin after accepting this card (None: unsigned, nothing pinned). A card
    whose current key is not the pinned one is accepted only when the pinned key signed it too (a rotation)."""
    return pin_of(verify_card(card), pinned)


def pin_of(kids: list[str], pinned: str | None) -> str | None:
    """`key_to_pin` for a card whose signatures `verify_card` already checked: `kids`, current key first."""
    if not kids:
        if pinned:
            raise CardTrustError(f"the card is unsigned, but this contractor's key {pinned} is pinned")
        return None
    if pinned and pinned not in kids:
        raise CardTrustError(
            f"the card is signed by {kids[0]}, not by the pinned key {pinned}: a key rotation must be signed by the "
            "previous key"
        )
    return kids[0]
