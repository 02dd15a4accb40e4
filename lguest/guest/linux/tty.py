"""A tiny tty line discipline: echo, backspace, ^C, and whole lines handed to a reader."""
from __future__ import annotations

from typing import Callable

BACKSPACES = (b"\x7f", b"\x08")
CTRL_C = b"\x03"


class Tty:
    def __init__(self, write: Callable[[bytes], int]):
        self.write = write                          # output, e.g. hvc_write for hvc0
        self.line = bytearray()
        self.on_line: Callable[[str], None] | None = None
        self.received = 0

    def receive(self, data: bytes) -> None:
        """Characters from the console driver: echo them, and pass on each finished line.

        2007-DIFF(tty-echo): Linux's n_tty gathers its echo; here each character is echoed
        with a write of its own, so each is one put_chars() and one SEND_DMA."""
        self.received += len(data)
        for byte in (data[i:i + 1] for i in range(len(data))):
            if byte in (b"\r", b"\n"):
                self.write(b"\r\n")
                line, self.line = self.line.decode("utf-8", "replace"), bytearray()
                if self.on_line is not None:
                    self.on_line(line)
            elif byte in BACKSPACES:
                if self.line:
                    self.line = self.line[:-1]
                    self.write(b"\b \b")
            elif byte == CTRL_C:
                self.line = bytearray()
                self.write(b"^C\r\n")
                if self.on_line is not None:
                    self.on_line(None)
            else:
                self.line += byte
                self.write(byte)
