"""The Host's record of one Guest: ``struct lguest`` cut down to what I/O needs."""
from __future__ import annotations

from dataclasses import dataclass, field

from ..abi import DMA_SIZE, LGUEST_MAX_DMA
from .keys import FutexKey


@dataclass(eq=False)
class Binding:
    """One entry of a Guest's DMA table (``struct lguest_dma_info``).

    An entry is free when ``interrupt`` is 0: irq 0 is the timer, so no binding uses it.
    A freed entry keeps everything else, as 2007's table did, until a bind reuses its slot.
    """
    guestid: int
    key: FutexKey
    ukey: int                 # the raw key the Guest passed, for people to read
    dmas: int                 # Guest-physical address of its lguest_dma array
    num_dmas: int
    interrupt: int
    next_dma: int = 0         # where the next search for a free entry starts (u16)
    linked: bool = True       # on its hash chain; unlink_dma() takes it off, and leaves it here

    def entry_addr(self, i: int) -> int:
        return self.dmas + DMA_SIZE * i

    def __repr__(self):
        return (f"Binding(g{self.guestid}, key={self.ukey:#x} {self.key!r}, dmas={self.dmas:#x}, "
                f"num={self.num_dmas}, irq={self.interrupt}, next_dma={self.next_dma})")


@dataclass(eq=False)
class Lg:
    """Per-Guest Host state: identity, memory limit, DMA table, pending irqs, death."""
    id: int
    memory: object                     # the Guest's GuestMemory (the Host reaches it like mm)
    pfn_limit: int
    fd: object                         # its Launcher's /dev/lguest (DevLguest): read() returns there
    dma: list = field(default_factory=lambda: [None] * LGUEST_MAX_DMA)
    irqs_pending: int = 0              # a 32-bit bitmap
    lguest_data: int | None = None     # address of the Guest's lguest_data (set by LGUEST_INIT)
    interrupt_entry: object = None     # the Guest's irq handler, named through its gate (its IDT)
    halted: bool = False
    dead: str | None = None
    blocked: str | None = None         # waiting forever for lguest_lock (after a Host oops)

    def bindings(self) -> list[Binding]:
        """The live entries of the table (a freed one has irq 0)."""
        return [b for b in self.dma if b is not None and b.interrupt]

    def __repr__(self):
        state = f"dead: {self.dead}" if self.dead else "running"
        return f"Lg(g{self.id}, bindings={len(self.bindings())}, pending={self.irqs_pending:#x}, {state})"
