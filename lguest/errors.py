"""Every exception the model raises of its own, in one family under ``LguestError``.

Guest misbehaviour never raises: the Host kills the Guest and says why. These are for a
reader who asks the model for something it does not allow; each message says what is.
(Arguments of the wrong type or value raise Python's own TypeError and ValueError.)
"""


class LguestError(Exception):
    """Base class for misuse of the lguest model from Python."""


class NotYetAvailable(LguestError, NotImplementedError):
    """A part of the machine that a later chapter of the book builds."""


class GuestDead(LguestError, RuntimeError):
    """The Guest was killed, so none of its code can run any more."""


class GuestMemoryError(LguestError, ValueError):
    """An access outside the Guest's mapped memory, or across two mappings."""


class UnknownLanError(LguestError, LookupError):
    """A capture of a LAN this Host has never heard of."""


class LauncherBlockError(LguestError, ValueError):
    """A disk image the Launcher cannot use; says what is wrong and what is allowed."""


class LauncherStuck(LguestError):
    """The Launcher's write() to /dev/lguest waits for ever for lguest_lock (after a Host oops):
    nothing of it runs again. The Launcher catches it itself."""


class LauncherExit(LguestError):
    """The Launcher gave up (errx()); the Guest dies with it. The Launcher catches it itself."""
