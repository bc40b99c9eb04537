"""The end-to-end channel between a client and a contractor, on top of A2A (the paper's Secure Communication
Protocol), built from `cryptography` primitives only.

The client makes an ephemeral X25519 key pair and runs ECDH with the contractor's long-term X25519 key (published in
its signed card, extension `urn:coalesce:e2e:v1`). HKDF-SHA256 turns the shared secret and the channel (the A2A
task) into two AES-256-GCM keys, one per direction. To a contractor whose card says `sessions`, one ephemeral key
serves a session of channels (`ChannelKeys`: at most five minutes or 10 000 channels) and the contractor remembers
the agreement (`KeyAgreements`), so a channel after the first costs an HKDF instead of two X25519 operations; each
channel still has its own keys and owner token. Otherwise the key pair is the channel's own.

Every envelope carries a sequence number per direction; the 96-bit nonce is the direction and that number, so a
nonce never repeats under one key (and no two channels share keys). The associated data binds everything in the
envelope but the ciphertext: version, recipient key, ephemeral key, channel (the task the client opened it for),
direction, sequence number, time and whether it is the last envelope of its direction.

An envelope travels as an A2A data part `{"coalesceE2e": {...}}`: plain A2A clients never see one unless they
opened the channel. What goes inside is the JSON of the parts of a message (client to contractor, or an agent's
input-required prompt) or of the artifacts of a finished task (contractor to client, sent once, as the last
envelope, so a dropped artifact cannot go unnoticed).

The same HKDF output gives both sides a third secret, the channel's owner token: a client without an API key
sends it as `X-Coalesce-Channel-Token` with every request about the task (get, cancel, resubscribe, push configs,
follow-ups), and the contractor keeps the task as the property of whoever holds it (`owner_of_token`), so a task
opened on a channel is no one else's to read, even on a contractor without API keys.
"""

from __future__ import annotations

import functools
import hashlib
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol, cast

import orjson
import pybase64
import rfc8785
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from shared.a2a.models import Artifact, Message, Part
from shared.runtime import jsonio
from shared.security.keys import b64url, raw_public, unb64url, x25519_from_text

E2E_EXTENSION_URI = "urn:coalesce:e2e:v1"
ENVELOPE_KEY = "coalesceE2e"
ALGORITHM = "X25519-HKDF-SHA256-A256GCM"
VERSION = 1
MAX_CLOCK_SKEW_S = 300.0  # a first envelope older (or newer) than this is refused: the replay window
MAX_SEEN_CHANNELS = 100_000
REPLAY_WINDOW_S = 2 * MAX_CLOCK_SKEW_S  # a first envelope outside it is refused as expired anyway
Direction = Literal["c2s", "s2c"]
NONCE_PREFIX = {"c2s": b"\x01\x00\x00\x00", "s2c": b"\x02\x00\x00\x00"}
CHANNEL_TOKEN_HEADER = "X-Coalesce-Channel-Token"
MAX_TOKEN_CHARS = 64
MAX_SAFE_INTEGER = 2**53 - 1  # the largest integer RFC 8785 (an IEEE 754 double) writes exactly
SESSION_LIFETIME_S = 300.0  # a client's ephemeral key serves one contractor's channels at most this long ...
SESSION_CHANNELS = 10_000  # ... and for at most this many channels
MAX_SESSIONS = 1024  # contractors a client keeps a session key for; key agreements a contractor remembers: 4x


class ChannelError(Exception):
    """An envelope refused. `reason` names the attack or fault: malformed, wrong-key, wrong-channel, tampered, replay,
    reordered, truncated, expired, plaintext; or busy (no new channel for now)."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


def key_id(public: X25519PublicKey) -> str:
    return b64url(hashlib.sha256(raw_public(public)).digest()[:16])


def e2e_extension(private: X25519PrivateKey, plaintext_accepted: bool) -> dict[str, Any]:
    """The card extension that offers the channel."""
    public = private.public_key()
    return {
        "uri": E2E_EXTENSION_URI,
        "description": "COALESCE end-to-end encryption of message parts and artifacts (" + ALGORITHM + ")",
        "required": not plaintext_accepted,
        "params": {
            "algorithm": ALGORITHM,
            "publicKey": b64url(raw_public(public)),
            "kid": key_id(public),
            "plaintextAccepted": plaintext_accepted,
            "sessions": True,  # one client key may open many channels, each claimed once (see `channel_claim`)
        },
    }


@dataclass(frozen=True)
class ChannelOffer:
    """What a card offers: the contractor's key, and whether it also takes plaintext."""

    public_key: X25519PublicKey
    kid: str
    plaintext_accepted: bool
    sessions: bool = False  # a client key may open many channels


def channel_offer(extensions: list[Any]) -> ChannelOffer | None:
    for extension in extensions:
        params = extension.params if extension.uri == E2E_EXTENSION_URI else None
        if params and params.get("algorithm") == ALGORITHM and isinstance(params.get("publicKey"), str):
            try:
                public = x25519_from_text(params["publicKey"])
            except ValueError:
                return None
            accepted, sessions = bool(params.get("plaintextAccepted", True)), params.get("sessions") is True
            return ChannelOffer(public, key_id(public), accepted, sessions)
    return None


def _keys(shared: bytes, ephemeral: bytes, recipient: bytes, channel: str) -> tuple[dict[Direction, AESGCM], str]:
    """The two directions' keys and the owner token (HKDF-Expand: a longer output keeps the first 64 bytes)."""
    okm = HKDF(
        algorithm=hashes.SHA256(),
        length=96,
        salt=ephemeral + recipient,
        info=b"coalesce-e2e-v1|" + channel.encode(),
    ).derive(shared)
    return {"c2s": AESGCM(okm[:32]), "s2c": AESGCM(okm[32:64])}, b64url(okm[64:])


def owner_of_token(token: str) -> str:
    """Who holds a channel's owner token, as a task's owner is recorded (a digest: the token is never kept)."""
    return "channel:" + hashlib.sha256(token.encode()).hexdigest()[:32]


def token_caller(headers: Mapping[str, str]) -> str | None:
    """The caller a request's channel token names (None: no token, or not one of ours by its shape)."""
    token = headers.get(CHANNEL_TOKEN_HEADER.lower()) or headers.get(CHANNEL_TOKEN_HEADER)
    if not token or len(token) > MAX_TOKEN_CHARS:
        return None
    return owner_of_token(token)


def envelope_of(parts: list[Part]) -> dict[str, Any] | None:
    """The envelope in a message's parts, if it carries one."""
    for part in parts:
        if part.kind == "data" and isinstance(part.data, dict) and ENVELOPE_KEY in part.data:
            envelope = part.data[ENVELOPE_KEY]
            if not isinstance(envelope, dict):
                raise ChannelError("malformed", "the end-to-end envelope must be an object")
            return envelope
    return None


@dataclass
class Channel:
    """One task's channel, on either side. `seal` and `open` keep the sequence numbers."""

    channel_id: str
    recipient_kid: str
    ephemeral_public: bytes
    _aead: dict[Direction, AESGCM]
    sends: Direction
    owner_token: str  # held by the two ends only: it names the task's owner to a contractor without API keys
    next_sent: int = 0
    next_received: int = 0
    closed: bool = False
    ephemeral_text: str = field(init=False)

    def __post_init__(self) -> None:
        self.ephemeral_text = b64url(self.ephemeral_public)

    @classmethod
    def open_to(cls, offer: ChannelOffer, channel_id: str) -> Channel:
        """The client's side, with a fresh ephemeral key for this channel alone (`ChannelKeys` reuses one)."""
        return Session.agreed(offer).open(channel_id)

    @classmethod
    def accept(
        cls, agreements: KeyAgreements, envelope: dict[str, Any], replay_guard: ClaimsChannels, message: Message
    ) -> tuple[Channel, Message]:
        """The contractor's side, from the client's first envelope (refused when stale or seen before): the
        channel and the first message, opened."""
        header = _header(envelope)
        own = agreements.kid
        if header["kid"] != own:
            raise ChannelError("wrong-key", f"the envelope is encrypted for key {header['kid']}, this agent's is {own}")
        if header["seq"] != 0:
            raise ChannelError("reordered", f"a new channel starts at sequence 0, not {header['seq']}")
        if abs(time.time() - header["ts"]) > MAX_CLOCK_SKEW_S:
            raise ChannelError("expired", f"the envelope's time is more than {MAX_CLOCK_SKEW_S:g} s from now")
        try:
            ephemeral = unb64url(header["epk"])
            shared = agreements.shared(ephemeral)
        except ValueError:  # not a key, or a low-order point (no secret to agree on)
            raise ChannelError("malformed", "the envelope's ephemeral key is not a usable X25519 key") from None
        aead, token = _keys(shared, ephemeral, agreements.public, header["channel"])
        channel = cls(header["channel"], own, ephemeral, aead, sends="s2c", owner_token=token)
        opened = channel.open_message(envelope, message)  # authenticated before the channel counts as seen
        replay_guard.claim(channel_claim(header["epk"], header["channel"]))
        return channel, opened

    def seal(self, payload: dict[str, Any], final: bool = False) -> dict[str, Any]:
        if self.closed:
            raise ChannelError("truncated", "the channel's last envelope has been sent")
        header = {
            "v": VERSION,
            "alg": ALGORITHM,
            "kid": self.recipient_kid,
            "epk": self.ephemeral_text,
            "channel": self.channel_id,
            "dir": self.sends,
            "seq": self.next_sent,
            "ts": int(time.time()),
            "final": final,
        }
        nonce = NONCE_PREFIX[self.sends] + self.next_sent.to_bytes(8, "big")
        plaintext = jsonio.dumps(payload)  # canonical form only where it is signed: the AAD
        ciphertext = self._aead[self.sends].encrypt(nonce, plaintext, associated_data(header))
        self.next_sent += 1
        self.closed = final
        return {**header, "ct": pybase64.b64encode_as_string(ciphertext)}

    def open(self, envelope: dict[str, Any]) -> dict[str, Any]:
        header = _header(envelope)
        receives: Direction = "s2c" if self.sends == "c2s" else "c2s"
        if header["dir"] != receives:
            raise ChannelError("reordered", f"an envelope for direction {header['dir']} arrived on {receives}")
        if header["channel"] != self.channel_id or header["epk"] != self.ephemeral_text:
            raise ChannelError("wrong-key", "the envelope belongs to another channel")
        if header["seq"] < self.next_received:
            raise ChannelError(
                "replay", f"sequence {header['seq']} was already received (expected {self.next_received})"
            )
        if header["seq"] > self.next_received:
            raise ChannelError("reordered", f"sequence {header['seq']} arrived before {self.next_received}")
        try:
            ciphertext = pybase64.b64decode(envelope.get("ct", ""), validate=True)
        except (ValueError, TypeError):
            raise ChannelError("malformed", "the ciphertext is not base64") from None
        if len(ciphertext) < 16:
            raise ChannelError("truncated", "the ciphertext is shorter than its authentication tag")
        nonce = NONCE_PREFIX[receives] + header["seq"].to_bytes(8, "big")
        try:
            plaintext = self._aead[receives].decrypt(nonce, ciphertext, associated_data(header))
        except InvalidTag:
            raise ChannelError(
                "tampered", "the envelope failed authentication (altered, or not for this key)"
            ) from None
        self.next_received += 1
        payload = jsonio.loads(plaintext)
        if not isinstance(payload, dict):
            raise ChannelError("malformed", "the sealed payload must be an object")
        return payload

    # ------------------------------------------------------------ what travels inside

    def seal_parts(self, parts: list[Part]) -> Part:
        return Part.of_data({ENVELOPE_KEY: self.seal({"parts": [p.wire() for p in parts]})})

    def seal_message(self, message: Message) -> Message:
        """The message with its parts and metadata sealed in one envelope."""
        payload = {"parts": [p.wire() for p in message.parts], "metadata": message.metadata}
        envelope = Part.of_data({ENVELOPE_KEY: self.seal(payload)})
        return Message(role=message.role, parts=[envelope], message_id=message.message_id)

    def open_message(self, envelope: dict[str, Any], message: Message) -> Message:
        """`message` as it was before `seal_message`."""
        payload = self.open(envelope)
        metadata = payload.get("metadata")
        if metadata is not None and not isinstance(metadata, dict):
            raise ChannelError("malformed", "the sealed metadata must be an object")
        return message.model_copy(update={"parts": _parts(payload), "metadata": metadata})

    def open_parts(self, envelope: dict[str, Any]) -> list[Part]:
        return _parts(self.open(envelope))

    def seal_artifacts(self, artifacts: list[Artifact]) -> Artifact:
        envelope = self.seal({"artifacts": [a.wire() for a in artifacts]}, final=True)
        return Artifact(name="coalesce-e2e", parts=[Part.of_data({ENVELOPE_KEY: envelope})])

    def open_artifacts(self, artifacts: list[Artifact]) -> list[Artifact]:
        """The task's artifacts from its one sealed artifact; plaintext ones on this channel are refused."""
        envelopes = [envelope_of(a.parts) for a in artifacts]
        if not artifacts or any(e is None for e in envelopes):
            raise ChannelError("plaintext", "the contractor answered outside the end-to-end channel")
        if len(envelopes) != 1:
            raise ChannelError("malformed", f"expected one sealed artifact, got {len(envelopes)}")
        envelope = envelopes[0]
        assert envelope is not None
        if envelope.get("final") is not True:
            raise ChannelError("truncated", "the sealed artifacts are not marked as the channel's last envelope")
        payload = self.open(envelope)
        try:
            return [Artifact.model_validate(a) for a in payload["artifacts"]]
        except (KeyError, TypeError, ValueError):
            raise ChannelError("malformed", "the sealed artifacts are not valid artifacts") from None


def _parts(payload: dict[str, Any]) -> list[Part]:
    try:
        return [Part.model_validate(p) for p in payload["parts"]]
    except (KeyError, TypeError, ValueError):
        raise ChannelError("malformed", "the sealed message has no valid parts") from None


HEADER_FIELDS = {"v": int, "alg": str, "kid": str, "epk": str, "channel": str, "dir": str, "seq": int, "ts": int}
INTEGER_FIELDS = [name for name, kind in HEADER_FIELDS.items() if kind is int]


def associated_data(header: dict[str, Any]) -> bytes:
    """The header's canonical JSON (RFC 8785), the envelope's associated data. For what a header holds (ASCII keys;
    strings, a boolean, and `INTEGER_FIELDS` within ±(2⁵³ − 1)) orjson with sorted keys writes the same bytes,
    many times faster than the rfc8785 package's pure-Python encoder; anything else goes to rfc8785 itself."""
    if all(abs(header[name]) <= MAX_SAFE_INTEGER for name in INTEGER_FIELDS):
        try:
            return orjson.dumps(header, option=orjson.OPT_SORT_KEYS)
        except TypeError:  # a lone surrogate: rfc8785 refuses it too, in its own words
            pass
    return rfc8785.dumps(cast(Any, header))


def _header(envelope: dict[str, Any]) -> dict[str, Any]:
    header: dict[str, Any] = {}
    for name, kind in HEADER_FIELDS.items():
        value = envelope.get(name)
        if not isinstance(value, kind) or isinstance(value, bool):
            raise ChannelError("malformed", f"the envelope's {name!r} is missing or not a {kind.__name__}")
        header[name] = value
    if header["v"] != VERSION or header["alg"] != ALGORITHM:
        raise ChannelError("malformed", f"unsupported envelope version {header['v']} / algorithm {header['alg']!r}")
    if not 0 <= header["seq"] < 2**32 or len(header["channel"]) > 256:
        raise ChannelError("malformed", "the envelope's sequence number or channel is out of range")
    if not isinstance(envelope.get("final"), bool):
        raise ChannelError("malformed", "the envelope's 'final' must be true or false")
    header["final"] = envelope["final"]
    return header


@dataclass
class Session:
    """A client's ephemeral key and its agreement with one contractor's key: what opens channels to it."""

    offer: ChannelOffer
    public: bytes
    shared: bytes
    opened_at: float = field(default_factory=time.monotonic)
    channels: int = 0
    recipient: bytes = field(init=False)  # the contractor's key, raw: part of every channel's HKDF salt

    def __post_init__(self) -> None:
        self.recipient = raw_public(self.offer.public_key)

    @classmethod
    def agreed(cls, offer: ChannelOffer) -> Session:
        ephemeral = X25519PrivateKey.generate()
        return cls(offer, raw_public(ephemeral.public_key()), ephemeral.exchange(offer.public_key))

    def open(self, channel_id: str) -> Channel:
        """A new channel on this session's key (its own keys and owner token: HKDF over its id)."""
        self.channels += 1
        aead, token = _keys(self.shared, self.public, self.recipient, channel_id)
        return Channel(channel_id, self.offer.kid, self.public, aead, sends="c2s", owner_token=token)


@dataclass
class ChannelKeys:
    """The client's ephemeral keys. To a contractor whose offer takes sessions, one key (one agreement) opens its
    channels for `lifetime_s` or `max_channels`, whichever ends first; to any other, each channel has a key of its
    own. What a session's key exposes, were the client's memory read, is that session's channels, as a key per
    channel exposes the channels open at the time; the contractor's long-term key opens every channel either way.
    At most `max_sessions` contractors' sessions are kept (the least recently used is dropped)."""

    lifetime_s: float = SESSION_LIFETIME_S
    max_channels: int = SESSION_CHANNELS
    max_sessions: int = MAX_SESSIONS
    _sessions: OrderedDict[str, Session] = field(default_factory=OrderedDict)

    def open_to(self, offer: ChannelOffer, channel_id: str) -> Channel:
        if not offer.sessions:
            return Channel.open_to(offer, channel_id)
        session = self._sessions.pop(offer.kid, None)
        if session is None or session.offer != offer or not self._fresh(session):
            session = Session.agreed(offer)
        self._sessions[offer.kid] = session
        while len(self._sessions) > self.max_sessions:
            self._sessions.popitem(last=False)
        return session.open(channel_id)

    def _fresh(self, session: Session) -> bool:
        return session.channels < self.max_channels and time.monotonic() - session.opened_at < self.lifetime_s


@dataclass
class KeyAgreements:
    """The contractor's long-term key and its agreements with clients' ephemeral keys, remembered (at most
    `max_entries`, the least recently used forgotten) so that a session's channels after the first skip the X25519
    exchange. In memory only: one forgotten is agreed again from the envelope's key."""

    private: X25519PrivateKey
    max_entries: int = 4 * MAX_SESSIONS
    public: bytes = field(init=False)
    kid: str = field(init=False)
    shared: Callable[[bytes], bytes] = field(init=False)  # `_agree`, remembered

    def __post_init__(self) -> None:
        self.public = raw_public(self.private.public_key())
        self.kid = key_id(self.private.public_key())
        self.shared = functools.lru_cache(maxsize=self.max_entries)(self._agree)

    def _agree(self, ephemeral: bytes) -> bytes:
        """The shared secret with the raw X25519 key `ephemeral`; ValueError for one that is not a usable key."""
        return self.private.exchange(X25519PublicKey.from_public_bytes(ephemeral))


def channel_claim(ephemeral_key: str, channel: str) -> str:
    """What the replay guard remembers of a channel opened: its key and id, as one short digest (one key may open
    many channels; each opens once)."""
    return b64url(hashlib.sha256(f"{ephemeral_key}|{channel}".encode()).digest()[:24])


def replayed() -> ChannelError:
    """The refusal of a first envelope whose channel was opened before (any `ClaimsChannels`)."""
    return ChannelError("replay", "this channel was already opened (a replayed first message)")


def too_many_channels(limit: int) -> ChannelError:
    """The refusal of a new channel when the guard remembers as many as it may: forgetting one still inside the
    window would let its first envelope be replayed, so a full guard takes no new channel until old ones expire."""
    return ChannelError("busy", f"{limit} channels were opened within the replay window; try again later")


class ClaimsChannels(Protocol):
    """Where the channels already opened are remembered (by `channel_claim`) for the replay window. `claim` returns
    when the channel was claimed (now); it raises ChannelError("replay") for a claim made before within the window,
    and ChannelError("busy") when it already remembers as many as it may."""

    def claim(self, claim: str) -> float: ...


@dataclass
class ReplayGuard:
    """The claims of channels already opened, kept in memory for the replay window (at most
    `max_entries`); lost on a restart (`contractor_agent.store.SqlReplayGuard` keeps them on disk)."""

    max_entries: int = MAX_SEEN_CHANNELS
    _seen: OrderedDict[str, float] = field(default_factory=OrderedDict)

    def remembering(self, claims: list[tuple[str, float]]) -> ReplayGuard:
        """This guard, told of `claims` (claim, when), the oldest first."""
        self._seen.update(claims)
        return self

    def claim(self, claim: str) -> float:
        now = time.time()
        while self._seen and next(iter(self._seen.values())) < now - REPLAY_WINDOW_S:
            self._seen.popitem(last=False)
        if claim in self._seen:
            raise replayed()
        if len(self._seen) >= self.max_entries:
            raise too_many_channels(self.max_entries)
        self._seen[claim] = now
        return now
