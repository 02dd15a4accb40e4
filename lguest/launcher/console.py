"""The Launcher's console: Guest output to a sink, keystrokes into the Guest's buffer.

The console has no pages and watches key 0 (LGUEST_CONSOLE_DMA_KEY). Input goes where the
Host's get_dma_buffer() points, raising the irq it names, even when the Guest has not
read the last buffer yet (the quirk of reference §3.6).
"""
from __future__ import annotations

import errno
from collections import deque

from .. import abi

DISCARD_SIZE = 1024
CTRL_C = b"\x03"


class Console:
    def __init__(self, launcher):
        self.launcher = launcher
        self.device = launcher.devices.new_dev_desc(abi.LGUEST_DEVICE_T_CONSOLE, 0, 0, "console")
        self.device.watch_key = abi.LGUEST_CONSOLE_DMA_KEY
        self.device.handle_output = self.handle_output
        self.device.handle_input = self.handle_input
        self.raw = bytearray()                       # everything the Guest wrote
        self._input: deque[bytes] = deque()
        self.watching = True                         # False once a read returned 0 (EOF)
        self.abort_count = 0                         # struct console_abort: ^C reads in a row,
        self.abort_start = 0                         # and the second the first of them came

    @property
    def waiting(self) -> bytes:
        """Keystrokes typed that the Guest has not been given yet."""
        return b"".join(self._input)

    @property
    def output(self) -> str:
        """What the Guest printed on its console so far."""
        return self.raw.decode("utf-8", "replace")

    def type(self, text: str | bytes) -> None:
        """Keystrokes: they reach the Guest when the Host next runs."""
        try:
            data = text.encode() if isinstance(text, str) else bytes(memoryview(text))
        except TypeError:
            raise TypeError(f"console.type() takes text (a str) or bytes, got {text!r}") from None
        if data:
            self._input.append(data)

    def handle_output(self, key: int, iov) -> int:
        memory = self.launcher.memory
        for addr, length in iov:
            self.raw += memory.read(addr, length)      # may span RAM and a device page
        return sum(length for _, length in iov)

    def handle_input(self) -> bool:
        """handle_console_input(): one read() of waiting keystrokes into the Guest's buffer.

        No buffer bound: warn, and read into a 1 KiB discard buffer. A read of nothing
        (the buffer has no room, or input ended): warn, still hand back used_len 0 with the
        irq, then stop watching the console, as 2007 did. The third read in a row that is one
        ^C alone, soon enough after the first, ends the Launcher (exit status 2)."""
        if not self._input or not self.watching:
            return False
        launcher = self.launcher
        chunk = self._input.popleft()
        found = launcher.get_dma_buffer(abi.LGUEST_CONSOLE_DMA_KEY)
        if found is None:
            launcher.warn("console: no dma buffer!", errno.ENOENT)    # the GETDMA write's errno
            iov = [(None, DISCARD_SIZE)]
        else:
            addr, irq, iov = found
        used = self._readv(iov, chunk)
        if used == 0:
            launcher.warnx("Failed to get console input, ignoring console.")
        if found is not None:
            launcher.deliver(addr, used, irq)
        if self._three_ctrl_c(chunk[:used]):
            launcher.exit_quietly(2, "three ^C")
            return True
        if used == 0:
            self.watching = False                    # the fd leaves the Waker's set for good
        return True

    def _three_ctrl_c(self, read: bytes) -> bool:
        """2007's "console abort" hack: each ^C must come as a read of its own, and the third
        counts only if gettimeofday()'s seconds are at most one past the first's (so between
        one and two seconds of wall time). Any other read starts the count again."""
        if read != CTRL_C:
            self.abort_count = 0
            return False
        self.abort_count += 1
        seconds = self.launcher.lguest.gettimeofday()[0]
        if self.abort_count == 1:
            self.abort_start = seconds
        elif self.abort_count == 3:
            self.abort_count = 0
            return seconds <= self.abort_start + 1
        return False

    def _readv(self, iov, chunk: bytes) -> int:
        """Fill the sections in order; what does not fit waits for the next read.
        A section whose address is None is the discard buffer: its bytes are lost."""
        done = 0
        for section, length in iov:
            n = min(length, len(chunk) - done)
            if section is not None:
                self.launcher.memory.write(section, chunk[done:done + n])
            done += n
        if done < len(chunk):
            self._input.appendleft(chunk[done:])
        return done

    def __repr__(self):
        return f"Console(output={len(self.raw)} bytes, input waiting={sum(map(len, self._input))} bytes)"


def setup_console(launcher) -> Console:
    """The console is set up after every command-line device, so it always comes last."""
    return Console(launcher)
