"""Exceptions a reader of the book can meet. Guest misbehaviour never raises: it kills."""


class LguestError(Exception):
    """Base class for misuse of the lguest model from Python."""


class NotYetAvailable(LguestError, NotImplementedError):
    """A part of the machine that a later chapter of the book builds."""


class GuestDead(LguestError, RuntimeError):
    """The Guest was killed, so none of its code can run any more."""
