"""Virtual interrupts (reference §1.9): 32 pending bits per Guest, delivered lowest first.

The Host only sets bits. Before the Guest runs, maybe_do_interrupt() takes the lowest
line that is pending and not blocked, and enters the Guest's handler for it, at most
one per trip round the run loop. The Guest blocks lines and disables interrupts through
``lguest_data``, which it shares with the Host.
"""
from __future__ import annotations

from .. import abi
from ..abi import LGUEST_IRQS, lguest_data

from .lg import Lg

IRQ_ENABLED_OFFSET = lguest_data.fields["irq_enabled"][1]
BLOCKED_OFFSET = lguest_data.fields["blocked_interrupts"][1]

ALL_LINES = (1 << LGUEST_IRQS) - 1


def set_irq_pending(lg: Lg, irq: int) -> bool:
    """Set a pending bit; return False if it was already set (raising twice is one irq)."""
    bit = 1 << irq
    was_clear = not lg.irqs_pending & bit
    lg.irqs_pending |= bit
    return was_clear


def deliverable(lg: Lg) -> int | None:
    """The irq maybe_do_interrupt() would deliver now, or None.

    irq_enabled and blocked_interrupts are read from the Guest's lguest_data, in its memory.
    """
    data = lg.lguest_data
    blocked = lg.memory.u32(data + BLOCKED_OFFSET)
    pending = lg.irqs_pending & ~blocked & ALL_LINES
    if not pending or (not lg.halted and not lg.memory.u32(data + IRQ_ENABLED_OFFSET)):
        return None
    return (pending & -pending).bit_length() - 1


def maybe_do_interrupt(host, lg: Lg) -> bool:
    """Deliver at most one interrupt to the Guest; return True if one was delivered.

    As in 2007, an irq stays pending until the Guest has named its interrupt entry."""
    if lg.dead or lg.lguest_data is None or lg.interrupt_entry is None:
        return False
    irq = deliverable(lg)
    if irq is None:
        return False
    if lg.halted:                              # a halted Guest wakes with interrupts on
        lg.halted = False
        lg.memory.set_u32(lg.lguest_data + IRQ_ENABLED_OFFSET, abi.X86_EFLAGS_IF)
    lg.irqs_pending &= ~(1 << irq)
    host.tick += 1
    host.emit(lg, "irq_deliver", irq=irq)
    lg.interrupt_entry(irq)
    return True
