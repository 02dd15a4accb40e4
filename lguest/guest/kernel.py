"""The Guest kernel's side of lguest: hypercall wrappers, lguest_map and the irq table.

The drivers call these, never the Host: a Guest reaches the Host only through
``hcall()``, the model of ``int $0x1F``. Addresses here are physical, as ``__pa()``
would give them; the model has no virtual memory, so a pointer *is* its physical address.
"""
from __future__ import annotations

import errno
from dataclasses import dataclass
from typing import Callable

from .. import abi
from .kmalloc import Allocator, heap_start

IRQ_NONE, IRQ_HANDLED = 0, 1
IRQF_SHARED = 0x80
IRQF_SAMPLE_RANDOM = 0x40
X86_EFLAGS_IF = 0x200


@dataclass
class IrqAction:
    """One handler on an irq line (``struct irqaction``)."""
    handler: Callable[[int, object], int]
    flags: int
    name: str
    dev_id: object


class GuestKernel:
    """The parts of a Linux Guest that every lguest driver leans on."""

    def __init__(self, guest_id: int, memory, hypercall: Callable[..., int]):
        self.id = guest_id
        self.memory = memory
        self.hcall = hypercall                            # int $0x1F: the only door to the Host
        self.kmalloc = Allocator(heap_start(memory.ram_size), memory.ram_size)
        self.irq_actions: dict[int, list[IrqAction]] = {}
        self.irq_counts = [0] * abi.LGUEST_IRQS           # /proc/interrupts
        self.irqs_unhandled = [0] * abi.LGUEST_IRQS        # every handler said IRQ_NONE
        self.dmesg: list[str] = []
        self.lguest_data = self._setup_lguest_data()

    def _setup_lguest_data(self) -> int:
        """Share irq_enabled and blocked_interrupts with the Host (LHCALL_LGUEST_INIT)."""
        addr = self.kmalloc.alloc(abi.lguest_data.itemsize, align=4)
        data = self.memory.struct_at(addr, abi.lguest_data)
        data["irq_enabled"] = X86_EFLAGS_IF
        data["blocked_interrupts"] = 0
        self.hcall(abi.LHCALL_LGUEST_INIT, addr)
        return addr

    def printk(self, line: str) -> None:
        self.dmesg.append(line)

    # --- hypercall wrappers (GUEST, lguest.c) ---------------------------------------------
    def lguest_send_dma(self, key: int, dma: int) -> None:
        """D:200: zero used_len, then SEND_DMA; afterwards used_len says how much got through."""
        self.memory.set_u32(dma + abi.USED_LEN_OFFSET, 0)
        self.hcall(abi.LHCALL_SEND_DMA, key, dma)

    def lguest_bind_dma(self, key: int, dmas: int, num: int, irq: int) -> int:
        """D:200: bind ``num`` receive buffers to a key, to raise ``irq``; -ENOMEM on failure."""
        if not self.hcall(abi.LHCALL_BIND_DMA, key, dmas, (num << 8) | irq):
            return -errno.ENOMEM
        return 0

    def lguest_unbind_dma(self, key: int, dmas: int) -> None:
        """D:200: irq 0 means unbind; the key and the array must both match."""
        self.hcall(abi.LHCALL_BIND_DMA, key, dmas, 0)

    def lguest_map(self, phys_addr: int, pages: int) -> memoryview:
        """Map device pages (the real one is ioremap): a view of ``pages`` pages at phys_addr."""
        return self.memory.view(phys_addr, pages * abi.PAGE_SIZE)

    # --- interrupts -----------------------------------------------------------------------
    def request_irq(self, irq: int, handler, flags: int, name: str, dev_id) -> int:
        """Add a handler; a line is shared only if every handler on it says IRQF_SHARED."""
        if not 0 < irq < abi.LGUEST_IRQS:
            return -errno.EINVAL
        chain = self.irq_actions.setdefault(irq, [])
        if chain and not (flags & IRQF_SHARED and all(a.flags & IRQF_SHARED for a in chain)):
            return -errno.EBUSY
        chain.append(IrqAction(handler, flags, name, dev_id))
        return 0

    def free_irq(self, irq: int, dev_id) -> None:
        chain = self.irq_actions.get(irq, [])
        chain[:] = [a for a in chain if a.dev_id is not dev_id]

    def do_IRQ(self, irq: int) -> int:
        """Entered by the Host when it delivers ``irq``: run every handler on the line."""
        self.irq_counts[irq] += 1
        result = IRQ_NONE
        for action in list(self.irq_actions.get(irq, ())):
            result |= action.handler(irq, action.dev_id)
        if result == IRQ_NONE:
            self.irqs_unhandled[irq] += 1
        return result

    def _lguest_data(self):
        return self.memory.struct_at(self.lguest_data, abi.lguest_data)

    def local_irq_disable(self) -> None:
        self._lguest_data()["irq_enabled"] = 0

    def local_irq_enable(self) -> None:
        self._lguest_data()["irq_enabled"] = X86_EFLAGS_IF

    def disable_irq(self, irq: int) -> None:
        """Mask one line: the Host leaves it pending until it is unmasked."""
        self._lguest_data()["blocked_interrupts"] |= 1 << irq

    def enable_irq(self, irq: int) -> None:
        self._lguest_data()["blocked_interrupts"] &= ~(1 << irq) & 0xFFFFFFFF

    def __repr__(self):
        return f"GuestKernel(g{self.id}, irq lines in use={sorted(self.irq_actions)})"
