"""The client's domain errors. The service raises them; the HTTP edge (`client_agent.api`) maps each class to
one status code, once:

    ClientError
    ├── NotFound        an unknown task, subtask, contractor or file          (404)
    ├── Conflict        the request does not fit the task's state             (409)
    ├── Invalid         a request the client cannot act on as given           (422)
    └── Overloaded      too much in progress, too many readers                (429)
"""

from __future__ import annotations


class ClientError(Exception):
    """A request the client refuses; `message` says why, fit to show the caller."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class NotFound(ClientError):
    pass


class Conflict(ClientError):
    pass


class Invalid(ClientError):
    pass


class Overloaded(ClientError):
    pass
