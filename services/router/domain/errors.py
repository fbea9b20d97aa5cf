"""Domain errors, each with how it is reported: the HTTP problem (status, type slug, title) the API answers and
the status a routing command's stored outcome carries. ``PROBLEMS`` is the one table both read."""

from __future__ import annotations


class DomainError(Exception):
    retriable = False
    status = 409
    slug = "invalid-command"
    title = "Not allowed in the current state"


class NotFound(DomainError):
    """Unknown id, or an id of another tenant: both look the same from outside."""

    status, slug, title = 404, "not-found", "Not found"


class InvalidIdentity(DomainError):
    """An identifier that cannot be normalized (e.g. a phone number that is not a number)."""

    status, slug, title = 422, "invalid-identity", "Invalid identity"


class InvalidCommand(DomainError):
    """A well-formed request the current state does not allow."""


class InvalidRequest(DomainError):
    """A request whose schema is met but whose values the operation cannot use (a WhatsApp template for a
    reply on another channel): a validation problem. Fix the request: sent again unchanged it gets the same
    answer."""

    status, slug, title = 422, "validation", "Validation failed"


class CommandTimeout(DomainError):
    """The tenant's routing owner did not apply a command in time (a failover in progress). It stays in the log
    and will be applied; a retry with the same Idempotency-Key returns its outcome instead of applying it twice."""

    retriable = True
    status, slug, title = 503, "routing-busy", "The tenant's routing owner did not answer in time, retry"


ERRORS: tuple[type[DomainError], ...] = (NotFound, InvalidIdentity, InvalidCommand, InvalidRequest, CommandTimeout)
PROBLEMS: dict[type[Exception], tuple[int, str, str]] = {cls: (cls.status, cls.slug, cls.title) for cls in ERRORS}
BY_NAME: dict[str, type[DomainError]] = {cls.__name__: cls for cls in ERRORS}
