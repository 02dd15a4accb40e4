"""A Guest as a reader holds it: one handle on the Launcher, the Host's record and the kernel.

``host.launch()`` returns a ``Guest``. Its methods say which room they act in: memory and
``alloc`` are the Guest's own; ``hypercall`` is the Guest trapping into the Host;
``console`` is the Launcher's end of the console.
"""
from __future__ import annotations

from . import abi
from .errors import GuestDead, NotYetAvailable
from .guest.kernel import GuestKernel
from .launcher.launcher import Launcher

MAX_MEM_MB = 1024        # the 2007 Launcher was linked high, which left well over a GiB


def boot_guest(host, mem_mb=16, block=(), sharenet=(), tunnet=None) -> "Guest":
    """What ``lguest [--sharenet=NAME]... [--block=FILE]... MEM_MB`` did, then the kernel's boot."""
    if isinstance(mem_mb, bool) or not isinstance(mem_mb, int) or not 1 <= mem_mb <= MAX_MEM_MB:
        raise ValueError(f"mem_mb must be a whole number of MiB, 1..{MAX_MEM_MB}, got {mem_mb!r}")
    for option, value in (("block", block), ("sharenet", sharenet)):
        if isinstance(value, (str, bytes)) or not hasattr(value, "__iter__"):
            raise TypeError(f"{option} takes a list, e.g. {option}=[{value!r}], got {value!r}")
    launcher = Launcher(host, mem_mb, sharenet=list(sharenet), block=list(block), tunnet=tunnet)
    lg = launcher.lg
    kernel = GuestKernel(lg.id, launcher.memory, lambda *args: host.hypercall(lg, *args))
    lg.guest = kernel
    guest = Guest(host, launcher, kernel)
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

    def shell(self, command: str) -> str:
        raise NotYetAvailable("the Guest shell arrives with the console driver chapter (D:300-D:370)")

    def open(self, path: str, mode: str = "rb"):
        raise NotYetAvailable("block devices arrive with the block driver chapter (D:400-D:495)")

    def __repr__(self):
        kinds = [abi.DEVICE_TYPE_NAMES[int(t)] for t in self.devices["type"] if t]
        state = f"dead: {self.dead}" if self.dead else "running"
        return f"Guest({self.id}, {self.memory.ram_size >> 20} MiB, devices={kinds}, {state})"


def write_dma(memory, addr: int, sections=(), used_len: int = 0) -> None:
    """Fill the ``lguest_dma`` at addr: the sections, then a 0 length if fewer than 16."""
    sections = list(sections)
    if len(sections) > abi.LGUEST_MAX_DMA_SECTIONS:
        raise ValueError(f"an lguest_dma holds at most {abi.LGUEST_MAX_DMA_SECTIONS} sections, got {len(sections)}")
    dma = memory.struct_at(addr, abi.lguest_dma)
    dma["used_len"] = used_len
    dma["addr"][:] = 0
    dma["len"][:] = 0
    for i, (section, length) in enumerate(sections):
        if not 0 <= length <= 0xFFFF:
            raise ValueError(f"a section length is a u16 (0..65535), got {length}")
        dma["addr"][i], dma["len"][i] = section, length
