"""Domain errors. Each maps to one HTTP problem type in entrypoints/http.py (via shared/problems.py)."""


class DomainError(Exception):
    retriable = False


class NotFound(DomainError):
    """Unknown id, or an id of another tenant: both look the same from outside."""


class InvalidIdentity(DomainError):
    """An identifier that cannot be normalized (e.g. a phone number that is not a number)."""


class InvalidCommand(DomainError):
    """A well-formed request the current state does not allow."""
