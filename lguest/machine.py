"""A Guest as a reader holds it: one handle on the Launcher, the Host's record and the kernel.

``host.launch()`` returns a ``Guest``. Its methods say which room they act in: memory and
``alloc`` are the Guest's own; ``hypercall`` is the Guest trapping into the Host;
``console`` is the Launcher's end of the console.
"""
from __future__ import annotations

import errno

from . import abi
from .errors import GuestDead
from .guest.kernel import DRIVERS, GuestKernel
from .launcher.launcher import Launcher
from .structs import write_dma

MAX_MEM_MB = 1024        # the 2007 Launcher was linked high, which left well over a GiB


def boot_guest(host, mem_mb=16, block=(), sharenet=(), tunnet=None, drivers=DRIVERS, boot=True,
               o_direct=False) -> "Guest":
    """What ``lguest [--sharenet=NAME]... [--block=FILE]... MEM_MB`` did, then the kernel's boot."""
    if isinstance(mem_mb, bool) or not isinstance(mem_mb, int) or not 1 <= mem_mb <= MAX_MEM_MB:
        raise ValueError(f"mem_mb must be a whole number of MiB, 1..{MAX_MEM_MB}, got {mem_mb!r}")
    for option, value in (("block", block), ("sharenet", sharenet)):
        if isinstance(value, (str, bytes)) or not hasattr(value, "__iter__"):
            raise TypeError(f"{option} takes a list, e.g. {option}=[{value!r}], got {value!r}")
    launcher = Launcher(host, mem_mb, sharenet=list(sharenet), block=list(block), tunnet=tunnet, o_direct=o_direct)
    lg = launcher.lg
    kernel = GuestKernel(lg.id, launcher.memory, lambda *args: host.hypercall(lg, *args), drivers=drivers)
    kernel.trace_sink = lambda kind, **fields: host.emit(lg, kind, by="guest", **fields)   # wmb, used_len = 0
    lg.guest = kernel
    guest = Guest(host, launcher, kernel)
    kernel.sleep_until = guest._sleep_until
    if boot:
        kernel.boot()
        if launcher.tunnet is not None and kernel.net is not None:
            # The init script of a tunnet Guest: its address on the Host's /24.
            tun = launcher.tunnet
            kernel.shell.run(f"ifconfig eth{len(sharenet)} {tun.guest_ip}/{tun.prefixlen}")
    host.guests.append(guest)
    return guest


class Guest:
    """One running Guest: its memory, its kernel, its Launcher and its fate."""

    def __init__(self, host, launcher, kernel):
        self.host = host
        self.launcher = launcher
        self.kernel = kernel
        self.id = kernel.id
        self.memory = launcher.memory

    @property
    def _lg(self):
        return self.launcher.lg

    @property
    def console(self):
        """The Launcher's end of the console: ``.output`` and ``.type()``."""
        return self.launcher.console

    @property
    def dead(self) -> str | None:
        """None while the Guest lives, else the message it was killed with."""
        return self._lg.dead

    @property
    def devices(self):
        """The descriptor array above the top of RAM, as a numpy view of its bytes."""
        return self.launcher.devices.descriptors

    def alloc(self, size: int, align: int = 16) -> int:
        """Guest memory from the kernel's allocator; returns its physical address."""
        return self.kernel.kmalloc.alloc(size, align)

    def free(self, addr: int) -> None:
        self.kernel.kmalloc.free(addr)

    def hypercall(self, nr: int, arg1: int = 0, arg2: int = 0, arg3: int = 0) -> int:
        """A raw hypercall, as the Guest's ``int $0x1F`` with eax=nr, edx, ebx, ecx."""
        if self.dead is not None:
            raise GuestDead(f"Guest {self.id} is dead ({self.dead}): it cannot make hypercalls")
        return self.host.hypercall(self._lg, nr, arg1, arg2, arg3)

    def dma(self, sections=(), used_len: int = 0) -> int:
        """Allocate one ``lguest_dma`` describing ``[(addr, len), ...]``; returns its address."""
        addr = self.alloc(abi.lguest_dma.itemsize, align=4)
        write_dma(self.memory, addr, sections, used_len)
        return addr

    def dma_array(self, entries) -> int:
        """Allocate a receive ring: one ``lguest_dma`` per list of sections, back to back."""
        entries = list(entries)
        if not entries:
            raise ValueError("a DMA array needs at least one entry (a list of (addr, len) sections)")
        addr = self.alloc(abi.lguest_dma.itemsize * len(entries), align=4)
        for i, sections in enumerate(entries):
            write_dma(self.memory, addr + i * abi.lguest_dma.itemsize, sections)
        return addr

    @property
    def pending_irqs(self) -> list[int]:
        """The interrupt lines the Host has raised and the Guest has not yet taken."""
        bits = self._lg.irqs_pending
        return [irq for irq in range(abi.LGUEST_IRQS) if bits >> irq & 1]

    def shell(self, command: str) -> str:
        """Run a command in the Guest's tiny userspace and return what it printed."""
        if self.dead is not None:
            raise GuestDead(f"Guest {self.id} is dead ({self.dead}): nothing runs in it")
        return self.kernel.shell.run(command)

    def open(self, path: str, mode: str = "rb", buffering: int = -1):
        """A real file object on a Guest disk: every read and write goes through the driver.

        ``buffering=0`` gives the unbuffered device, as Python's open() does."""
        if self.dead is not None:
            raise GuestDead(f"Guest {self.id} is dead ({self.dead}): nothing runs in it")
        return self.kernel.open(path, mode, buffering)

    def _sleep_until(self, done) -> None:
        """The Guest process sleeps while the Host runs (interrupts, Launcher I/O)."""
        self.host.run()
        if not done():
            why = f": {self.dead}" if self.dead else ""
            raise OSError(errno.EIO, f"the request never finished{why}")

    def __repr__(self):
        kinds = [abi.DEVICE_TYPE_NAMES[int(t)] for t in self.devices["type"] if t]
        state = f"dead: {self.dead}" if self.dead else "running"
        return f"Guest({self.id}, {self.memory.ram_size >> 20} MiB, devices={kinds}, {state})"
