"""/dev/lguest (lguest_user.c): the Launcher's only handle on the Host.

A Launcher opens /dev/lguest and from then on speaks only through this file: a write of
LHREQ_INITIALIZE makes the Guest, LHREQ_GETDMA asks for a receive buffer, LHREQ_IRQ
raises an interrupt, and read() runs the Guest until it has something for the Launcher:
a DMA sent to a key only the Launcher serves, or the news that the Guest has died.

The model cannot block in read(), so the Host calls the Launcher back through this handle
where read() would have returned: ``dma_for_launcher()`` and ``guest_died()``, and
``serve_input()`` where the Waker would have broken in. Beside the device, a Launcher in
2007 used ordinary system calls the model routes here too, each named for what it did:
mapping a --sharenet file, making a tap device, and (the model's own) tracing and
capturing. Nothing else of the Host is reachable from a Launcher.
"""
from __future__ import annotations

import errno

from .. import abi
from ..errors import LauncherStuck, LguestError
from . import dma
from .gate import HypercallGate
from .lgmem import lgwrite_u32
from .pcap import capture_frame, start_capture


class DevLguest:
    """One open /dev/lguest: ``host.open_dev_lguest()`` gives one to each Launcher."""

    def __init__(self, host):
        self._host = host
        self._reader = None                # the Launcher, whom read() returns to
        self.lg = None                     # the Host's record of the Guest, after INITIALIZE (for views)

    # --- the writes: LHREQ_* ---------------------------------------------------------------
    def initialize(self, memory, reader) -> int:
        """LHREQ_INITIALIZE: the Guest's memory, its page-frame limit from it; returns the Guest id.

        ``reader`` is the Launcher: it has ``dma_for_launcher(key, dma)``, ``guest_died(msg)``
        and ``serve_input()``, what read() would have returned to it."""
        if self.lg is not None:
            raise LguestError("this /dev/lguest already has a Guest (LHREQ_INITIALIZE works once: EBUSY)")
        self._reader = reader
        self.lg = self._host.new_guest(memory, self)
        return self.lg.id

    def getdma(self, key: int) -> int:
        """LHREQ_GETDMA: the address of a receive buffer bound to ``key``; its irq is in used_len.

        Raises OSError(ENOENT) when there is none, or the Guest is dead; LauncherStuck when the
        request waits for ever for lguest_lock."""
        lg = self._live_guest()
        found = dma.get_dma_buffer(self._host, lg, key)
        if found is None:
            if lg.blocked is not None:
                # The staged oops (Host.lock_blocks): the write() never returned; here it
                # raises, and the Launcher, which catches it, does nothing more.
                raise LauncherStuck(lg.blocked)
            raise OSError(errno.ENOENT, f"no DMA buffer bound to key {key:#x}")
        udma, irq = found
        lgwrite_u32(self._host, lg, udma, irq, trace=False)
        return udma

    def irq(self, irq: int) -> None:
        """LHREQ_IRQ: raise one of the Guest's interrupts (EINVAL past 31)."""
        lg = self._live_guest()
        if not 0 <= irq < abi.LGUEST_IRQS:
            raise OSError(errno.EINVAL, f"irq must be 0..{abi.LGUEST_IRQS - 1}, got {irq}")
        self._host.raise_irq(lg, irq)

    def close(self, why: str) -> None:
        """The Launcher exits and its file closes: the Host frees the Guest (recording ``why``)."""
        if self.lg is not None:
            self._host.kill_guest(self.lg, why)

    def _live_guest(self):
        if self.lg is None:
            raise OSError(errno.ENOENT, "no Guest yet: LHREQ_INITIALIZE comes first")
        if self.lg.dead is not None:
            raise OSError(errno.ENOENT, f"Guest {self.lg.id} is dead")
        return self.lg

    @property
    def guest_id(self) -> int | None:
        return None if self.lg is None else self.lg.id

    # --- where read() returned (the Host calls these) -------------------------------------
    def dma_for_launcher(self, key: int, udma: int) -> None:
        """read() returns [dma, key]: the Guest sent to a key only its Launcher serves."""
        self._reader.dma_for_launcher(key, udma)

    def guest_died(self, msg: str) -> None:
        """read() fails with ENOENT, and a read of the reason gives ``msg``."""
        self._reader.guest_died(msg)

    def serve_input(self) -> bool:
        """The Waker broke the Launcher out of read() (LHREQ_BREAK): serve waiting input."""
        return self._reader.serve_input()

    def hypercall_gate(self) -> HypercallGate:
        """The Guest's ``int $0x1F``, for the kernel this Launcher loads (the Launcher never calls it)."""
        if self.lg is None:
            raise LguestError("the hypercall gate comes with the Guest: LHREQ_INITIALIZE first")
        return HypercallGate(self._host, self.lg)

    # --- the rest of the Launcher's system calls, and the model's tracing -----------------
    def map_lan_file(self, name: str):
        """open() and mmap(MAP_SHARED) of the --sharenet file ``name``: its one page."""
        return self._host.shared_page(name)

    def make_tap(self, device) -> str:
        """open("/dev/net/tun"): the Host kernel names a new tap (tapN, lowest N free)."""
        return self._host.add_tap(device)

    def remove_tap(self, name: str) -> None:
        """The tap goes when its Launcher goes, if it never started a Guest."""
        self._host.tunnets.pop(name, None)

    def gettimeofday(self) -> tuple[int, int]:
        """(seconds, microseconds) from the Host's clock: tick N is N ms, as in the pcap files."""
        ms = self._host.tick
        return ms // 1000, ms % 1000 * 1000

    def trace(self, kind: str, **fields) -> None:
        """Record a Launcher event in the Host's trace, stamped with this Guest."""
        self._host.emit(self.lg, kind, **fields)

    def capturing(self, lan: str) -> bool:
        """Is anyone capturing ``lan``? (a test the delivery path makes before copying a frame)"""
        return lan in self._host.captures

    def capture_frame(self, lan: str, frame) -> None:
        """A frame crossed the tap: give it to every capture of ``lan``."""
        capture_frame(self._host, lan, frame)

    def start_capture(self, lan: str, path):
        """--tunnet=pcap:FILE: capture the tap's frames from the start."""
        return start_capture(self._host, lan, path)

    def ring_full(self, key: int) -> bool:
        """Bookkeeping the real Launcher could not do: is every buffer bound to ``key`` in use,
        so that GETDMA would hand back one the Guest has not read?"""
        return self.lg is not None and dma.all_buffers_in_use(self._host, self.lg, key)

    def __repr__(self):
        return f"DevLguest({'no Guest yet' if self.lg is None else f'g{self.lg.id}'})"
