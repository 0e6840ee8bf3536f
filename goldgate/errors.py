"""The exceptions goldgate raises to its callers: one type per failure an operator can act on."""

from __future__ import annotations


class GoldgateError(Exception):
    """Base of every error goldgate reports to a user; the message says what to do."""


def describe(exc: BaseException) -> str:
    """An error as one says it to an operator: goldgate's own in its words, any other with its type named."""
    return str(exc) if isinstance(exc, GoldgateError) else f"{type(exc).__name__}: {exc}"


class SpecError(GoldgateError):
    """A stack description is invalid or missing a field; the message names the field."""


class StateError(GoldgateError):
    """Local state (a stack, an image, a lock) is not what the command needs."""


class OutputError(GoldgateError):
    """stdout cannot be written: a full disk or a failing device where the output is redirected."""
