"""Channel negotiation: a message as the worker reads it. An end-to-end envelope is opened on the task's channel
(or opens a new one); plaintext is refused on an encrypted task, or by a contractor that takes encrypted
messages only."""

from __future__ import annotations

from contractor_agent.identity import Identity
from shared.a2a.models import A2AError, ErrorCode, Message
from shared.security.channel import Channel, ChannelError, envelope_of


def open_message(
    identity: Identity, follow_up: bool, task_channel: Channel | None, message: Message, task_id: str | None
) -> tuple[Channel | None, Message]:
    """(the task's channel, the plaintext message); A2AError E2E_REFUSED with the reason otherwise. `follow_up`:
    the message continues a task (on `task_channel`, None when that task runs in plaintext). A channel is bound to
    its task: a new one opens only where `task_id` is the channel's id: the id the client chose for the task
    (legacy), or the id of the message that opens it (v0.3 and v1.0, where the agent names the task)."""
    try:
        envelope = envelope_of(message.parts)
        if envelope is None:
            if task_channel is not None:
                raise ChannelError("plaintext", "this task's channel is encrypted; plaintext is refused")
            if identity.e2e_key is not None and not identity.plaintext_accepted:
                raise ChannelError("plaintext", "this agent accepts end-to-end encrypted messages only")
            return None, message
        if identity.agreements is None:
            raise ChannelError("wrong-key", "this agent offers no end-to-end channel")
        if not follow_up:
            channel, plain = Channel.accept(identity.agreements, envelope, identity.replay_guard, message)
            if channel.channel_id != task_id:
                raise ChannelError(
                    "wrong-channel", f"the envelope's channel {channel.channel_id!r} is not this task ({task_id!r})"
                )
            return channel, plain
        if task_channel is None:
            raise ChannelError("malformed", "this task was opened in plaintext; it cannot switch channels")
        return task_channel, task_channel.open_message(envelope, message)
    except ChannelError as error:
        raise A2AError(
            ErrorCode.E2E_REFUSED,
            f"end-to-end envelope refused ({error.reason}): {error}",
            {"reason": error.reason},
        ) from None
