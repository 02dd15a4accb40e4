"""What a running Guest kernel has of the Host: its hypercall gate.

In 2007 the Guest reached the Host only by ``int $0x1F``, and the Host reached the Guest
only by entering it at an interrupt handler the Guest had named (LHCALL_LOAD_IDT_ENTRY).
The gate is both doors for one Guest, and the model's two needs beside them: the Guest
kernel's own trace events go to the Host's trace, and a Guest process that waits lets
the Host run. The Guest kernel is built with its gate; it holds nothing else of the Host.
"""
from __future__ import annotations

from typing import Callable


class HypercallGate:
    """One Guest's ``int $0x1F``: call it as ``gate(nr, arg1, arg2, arg3)``; it returns eax."""

    def __init__(self, host, lg):
        self._host = host
        self._lg = lg

    def __call__(self, nr: int, arg1: int = 0, arg2: int = 0, arg3: int = 0) -> int:
        return self._host.hypercall(self._lg, nr, arg1, arg2, arg3)

    def load_idt_entry(self, handler: Callable[[int], object]) -> None:
        """Name the Guest's interrupt entry: the Host calls ``handler(irq)`` to deliver one.

        2007-DIFF(idt-entry): LHCALL_LOAD_IDT_ENTRY passed the handler's address, one vector
        at a time; the model's Guest code has no addresses, so it passes the function."""
        self._lg.interrupt_entry = handler

    def trace(self, kind: str, **fields) -> None:
        """The trace sink: a Guest-side step no hypercall shows (a barrier, a used_len it wrote)."""
        self._host.emit(self._lg, kind, by="guest", **fields)

    def wait(self) -> str | None:
        """A Guest process sleeps: the Host runs every Guest and Launcher until all is quiet.

        Returns None, or the message the Guest was killed with meanwhile."""
        self._host.run()
        return self._lg.dead

    def __repr__(self):
        return f"HypercallGate(g{self._lg.id})"
