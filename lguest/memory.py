"""Guest-physical memory: 4096-byte pages reached only through checked accessors.

A Guest's physical address space is a row of regions laid end to end from address 0:
its RAM, then the descriptor page, then each device's pages (see lguest.launcher.devices).
Every region is a numpy ``uint8`` buffer. A page several Guests share (a LAN's page,
"the Futex Trick") is one ``SharedPage`` buffer mapped into each of them, perhaps at
different physical addresses, as the Launchers' MAP_SHARED mappings of one file were.

Bad addresses raise ``GuestMemoryError``, which names the address. The Host turns such
an error into kill_guest(); a reader poking memory from a notebook sees the error itself.
"""
from __future__ import annotations

import bisect
import struct
from dataclasses import dataclass, field

import numpy as np

from .abi import PAGE_SIZE
from .errors import GuestMemoryError

_U32 = struct.Struct("<I")
_U16 = struct.Struct("<H")


def zeroed_pages(nbytes: int) -> np.ndarray:
    """Zeroed bytes that start on a page boundary, as the Launcher's mmap of Guest memory did.

    Alignment matters for speed: the kernel copies a preadv into a buffer that starts
    16 bytes past a page (where malloc puts a large numpy array) about 4 times slower.
    Over-allocating and slicing keeps malloc's reuse of freed memory, which a fresh mmap
    per Guest would lose to page faults."""
    buf = np.zeros(nbytes + PAGE_SIZE, np.uint8)
    skip = -buf.ctypes.data % PAGE_SIZE
    return buf[skip:skip + nbytes]


@dataclass(eq=False)
class SharedPage:
    """One page of a shared file (a LAN): every Guest that maps it sees the same bytes."""
    name: str
    buf: np.ndarray = field(default_factory=lambda: zeroed_pages(PAGE_SIZE), repr=False)
    locked_slots: dict = field(default_factory=dict, repr=False)   # the fcntl byte locks: slot -> owner

    def __repr__(self):
        return f"SharedPage({self.name!r})"


@dataclass(eq=False)
class Region:
    """A run of pages at ``start``: RAM, the descriptor page or one device's pages."""
    start: int
    size: int
    name: str
    buf: np.ndarray = field(repr=False)
    shared: SharedPage | None = None

    def __post_init__(self):
        self.mv = memoryview(self.buf).cast("B")     # slicing a memoryview is the cheap way to copy

    @property
    def end(self) -> int:
        return self.start + self.size

    def __repr__(self):
        where = f", shared={self.shared.name!r}" if self.shared else ""
        return f"Region({self.name!r}, {self.start:#x}..{self.end:#x}{where})"


class GuestMemory:
    """The physical address space of one Guest, from 0 up to ``top``."""

    def __init__(self, ram_bytes: int):
        if ram_bytes <= 0 or ram_bytes % PAGE_SIZE:
            raise ValueError(f"RAM must be a positive whole number of {PAGE_SIZE}-byte pages, got {ram_bytes}")
        self.ram = Region(0, ram_bytes, "RAM", zeroed_pages(ram_bytes))
        self.regions: list[Region] = [self.ram]
        self._starts = [0]
        self._set_top(ram_bytes)

    # --- layout ---------------------------------------------------------------------------
    @property
    def ram_size(self) -> int:
        return self.ram.size

    def _set_top(self, top: int) -> None:
        # Plain attributes, not properties: the Host's checks read them on every section.
        self.top = top                          # one past the last mapped byte (the Launcher's top)
        self.pfn_limit = top // PAGE_SIZE       # what the Launcher hands the Host

    def map_pages(self, num_pages: int, name: str, shared: SharedPage | None = None) -> int:
        """Map ``num_pages`` zeroed pages (or one shared page) at ``top``; return their address."""
        if shared is not None:
            if num_pages != 1:
                raise ValueError(f"a shared page maps as exactly 1 page, not {num_pages}")
            buf = shared.buf
        else:
            buf = zeroed_pages(num_pages * PAGE_SIZE)
        region = Region(self.top, num_pages * PAGE_SIZE, name, buf, shared)
        self.regions.append(region)
        self._starts.append(region.start)
        self._set_top(region.end)
        return region.start

    # --- the checks -----------------------------------------------------------------------
    def _in_ram(self, addr: int, length: int) -> bool:
        """The fast path's one test: [addr, addr+length) lies wholly in RAM, the first region."""
        return 0 <= addr and 0 <= length and addr + length <= self.ram.size

    def in_range(self, addr: int, length: int) -> bool:
        """lguest_address_ok(): the *end* address must lie below the pfn limit, with no wrap.

        The Host tests (addr + len) / PAGE_SIZE < pfn_limit, so a buffer ending exactly at
        the top of memory fails even though its last byte is mapped (a 2007 quirk we keep).
        """
        end = addr + length
        return 0 <= addr and end < 1 << 32 and end // PAGE_SIZE < self.pfn_limit

    def locate(self, addr: int, length: int) -> tuple[Region, int]:
        """The region holding [addr, addr+length) and the offset of addr in it."""
        if self._in_ram(addr, length):
            return self.ram, addr                     # the fast path: one test, then a slice
        if addr < 0 or length < 0 or addr + length > self.top:
            raise GuestMemoryError(f"address {addr:#x} (+{length}) is outside Guest memory [0, {self.top:#x})")
        region = self.regions[bisect.bisect_right(self._starts, addr) - 1]
        if addr + length > region.end:
            raise GuestMemoryError(f"{length} bytes @ {addr:#x} run past the end of {region.name} ({region.end:#x})")
        return region, addr - region.start

    def region_at(self, addr: int) -> Region:
        return self.locate(addr, 0 if addr == self.top else 1)[0]

    # --- bytes ----------------------------------------------------------------------------
    def view(self, addr: int, length: int) -> memoryview:
        """A writable view of Guest memory (within one mapping): no copy is made."""
        region, off = self.locate(addr, length)
        return region.mv[off:off + length]

    def views(self, addr: int, length: int) -> list[memoryview]:
        """Writable views covering [addr, addr+length), one per mapping it touches."""
        if self._in_ram(addr, length):
            return [self.ram.mv[addr:addr + length]]      # the fast path: all in RAM
        return [self.view(a, n) for a, n in self._pieces(addr, length)]

    def read(self, addr: int, length: int) -> bytes:
        """Copy ``length`` bytes out of Guest memory; the range may span mappings."""
        if self._in_ram(addr, length):
            return bytes(self.ram.mv[addr:addr + length])
        out = bytearray()
        for a, n in self._pieces(addr, length):
            out += self.view(a, n)
        return bytes(out)

    def write(self, addr: int, data) -> None:
        """Copy bytes into Guest memory; the range may span mappings."""
        data = memoryview(data).cast("B")
        if self._in_ram(addr, len(data)):
            self.ram.mv[addr:addr + len(data)] = data     # the fast path: all in RAM
            return
        done = 0
        for a, n in self._pieces(addr, len(data)):
            self.view(a, n)[:] = data[done:done + n]
            done += n

    def _pieces(self, addr: int, length: int):
        """Split [addr, addr+length) at mapping boundaries, checking the whole range first."""
        if addr < 0 or length < 0 or addr + length > self.top:
            raise GuestMemoryError(f"address {addr:#x} (+{length}) is outside Guest memory [0, {self.top:#x})")
        while length > 0:
            region = self.regions[bisect.bisect_right(self._starts, addr) - 1]
            n = min(length, region.end - addr)
            yield addr, n
            addr, length = addr + n, length - n

    def unpack(self, fmt: struct.Struct, addr: int) -> tuple:
        """Read a C struct at ``addr``; it may straddle two mappings (RAM and the next page)."""
        if self._in_ram(addr, fmt.size):
            return fmt.unpack_from(self.ram.buf, addr)
        return fmt.unpack(self.read(addr, fmt.size))

    def pack(self, fmt: struct.Struct, addr: int, *values) -> None:
        if self._in_ram(addr, fmt.size):
            fmt.pack_into(self.ram.buf, addr, *values)
        else:
            self.write(addr, fmt.pack(*values))

    def u32(self, addr: int) -> int:
        return self.unpack(_U32, addr)[0]

    def set_u32(self, addr: int, value: int) -> None:
        self.pack(_U32, addr, value & 0xFFFFFFFF)

    def u16(self, addr: int) -> int:
        return self.unpack(_U16, addr)[0]

    # --- typed views ----------------------------------------------------------------------
    def array_at(self, addr: int, dtype: np.dtype, count: int = 1) -> np.ndarray:
        """``count`` structs of ``dtype`` at ``addr``, as a numpy view into Guest memory."""
        region, off = self.locate(addr, dtype.itemsize * count)
        return region.buf[off:off + dtype.itemsize * count].view(dtype)

    def struct_at(self, addr: int, dtype: np.dtype):
        """One struct at ``addr``: a numpy record whose fields read and write Guest memory."""
        return self.array_at(addr, dtype, 1)[0]

    def __repr__(self):
        return f"GuestMemory(ram={self.ram_size // (1 << 20)} MiB, top={self.top:#x}, regions={len(self.regions)})"
