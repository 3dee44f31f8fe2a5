"""What the domain answers when it refuses: one exception per reason, with its message.

The rules of stories, entries and accounts raise these; each surface says them its own way
(the API as problem+json with the status below, the newsroom as a page, the CLI as a line
and a non-zero exit), so no rule is written twice.
"""

from __future__ import annotations


class Refused(Exception):
    """A request the domain will not carry out; `str()` says why, to the person asking."""

    status = 422


class NotAllowed(Refused):
    """The role asking may not do this."""

    status = 403


class NotFound(Refused):
    """There is no such thing, for this audience."""

    status = 404


class Conflict(Refused):
    """It clashes with the state things are in (an ended story, a taken name)."""

    status = 409


class Invalid(Refused, ValueError):
    """The values themselves are wrong (a ValueError, so pydantic validators may raise it)."""

    status = 422
