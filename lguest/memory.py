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
import operator
import struct
from dataclasses import dataclass, field

import numpy as np

from .abi import PAGE_SIZE
from .errors import GuestMemoryError

_U32 = struct.Struct("<I")
_U16 = struct.Struct("<H")
ADDRESS_SPACE = 1 << 32                 # a 32-bit Guest's physical addresses


def whole_numbers(**named) -> None:
    """Raise a TypeError naming the first argument that is not a whole number (else nothing).

    The accessors call it only once something has failed, so the fast paths pay nothing."""
    for name, value in named.items():
        try:
            operator.index(value)
        except TypeError:
            raise TypeError(f"Guest memory is addressed with whole numbers: {name} must be an int, "
                            f"got {value!r}") from None


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
        allowed = f"RAM must be a positive whole number of {PAGE_SIZE}-byte pages, below 4 GiB, got {ram_bytes!r}"
        if isinstance(ram_bytes, bool) or not isinstance(ram_bytes, int):
            raise TypeError(allowed)
        if ram_bytes <= 0 or ram_bytes % PAGE_SIZE or ram_bytes >= ADDRESS_SPACE:
            raise ValueError(allowed)
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
        allowed = f"num_pages must be a whole number of pages, at least 1; got {num_pages!r}"
        if isinstance(num_pages, bool) or not isinstance(num_pages, int):
            raise TypeError(allowed)
        if num_pages < 1:
            raise ValueError(allowed)
        if self.top + num_pages * PAGE_SIZE > ADDRESS_SPACE:
            raise ValueError(f"{num_pages} pages at {self.top:#x} would end past 4 GiB, "
                             "the most a 32-bit Guest can address")
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
        try:
            if addr < 0 or length < 0 or addr + length > self.top:
                raise GuestMemoryError(f"address {addr:#x} (+{length}) is outside Guest memory [0, {self.top:#x})")
            region = self.regions[bisect.bisect_right(self._starts, addr) - 1]
            if addr + length > region.end:
                raise GuestMemoryError(f"{length} bytes @ {addr:#x} run past the end of {region.name} "
                                       f"({region.end:#x})")
        except (TypeError, ValueError):
            whole_numbers(addr=addr, length=length)
            raise
        return region, addr - region.start

    def region_at(self, addr: int) -> Region:
        return self.locate(addr, 0 if addr == self.top else 1)[0]

    # --- bytes ----------------------------------------------------------------------------
    def view(self, addr: int, length: int) -> memoryview:
        """A writable view of Guest memory (within one mapping): no copy is made."""
        try:
            region, off = self.locate(addr, length)
            return region.mv[off:off + length]
        except (TypeError, ValueError):
            whole_numbers(addr=addr, length=length)
            raise

    def views(self, addr: int, length: int) -> list[memoryview]:
        """Writable views covering [addr, addr+length), one per mapping it touches."""
        try:
            if self._in_ram(addr, length):
                return [self.ram.mv[addr:addr + length]]      # the fast path: all in RAM
            return [self.view(a, n) for a, n in self._pieces(addr, length)]
        except (TypeError, ValueError):
            whole_numbers(addr=addr, length=length)
            raise

    def read(self, addr: int, length: int) -> bytes:
        """Copy ``length`` bytes out of Guest memory; the range may span mappings."""
        try:
            if self._in_ram(addr, length):
                return bytes(self.ram.mv[addr:addr + length])
            out = bytearray()
            for a, n in self._pieces(addr, length):
                out += self.view(a, n)
            return bytes(out)
        except (TypeError, ValueError):
            whole_numbers(addr=addr, length=length)
            raise

    def write(self, addr: int, data) -> None:
        """Copy bytes into Guest memory; the range may span mappings."""
        data = memoryview(data).cast("B")
        try:
            if self._in_ram(addr, len(data)):
                self.ram.mv[addr:addr + len(data)] = data     # the fast path: all in RAM
                return
            done = 0
            for a, n in self._pieces(addr, len(data)):
                self.view(a, n)[:] = data[done:done + n]
                done += n
        except (TypeError, ValueError):
            whole_numbers(addr=addr)
            raise

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
        try:
            if self._in_ram(addr, fmt.size):
                return fmt.unpack_from(self.ram.buf, addr)
        except TypeError:
            whole_numbers(addr=addr)
            raise
        return fmt.unpack(self.read(addr, fmt.size))

    def pack(self, fmt: struct.Struct, addr: int, *values) -> None:
        try:
            if self._in_ram(addr, fmt.size):
                fmt.pack_into(self.ram.buf, addr, *values)
                return
        except TypeError:
            whole_numbers(addr=addr)
            raise
        self.write(addr, fmt.pack(*values))

    def u32(self, addr: int) -> int:
        return self.unpack(_U32, addr)[0]

    def set_u32(self, addr: int, value: int) -> None:
        try:
            value &= 0xFFFFFFFF
        except TypeError:
            whole_numbers(value=value)
            raise
        self.pack(_U32, addr, value)

    def u16(self, addr: int) -> int:
        return self.unpack(_U16, addr)[0]

    # --- typed views ----------------------------------------------------------------------
    def array_at(self, addr: int, dtype: np.dtype, count: int = 1) -> np.ndarray:
        """``count`` structs of ``dtype`` at ``addr``, as a numpy view into Guest memory."""
        try:
            region, off = self.locate(addr, dtype.itemsize * count)
            return region.buf[off:off + dtype.itemsize * count].view(dtype)
        except (AttributeError, TypeError, ValueError):
            if not isinstance(dtype, np.dtype):
                raise TypeError(f"dtype must be a numpy dtype, such as lguest.abi.lguest_dma or np.dtype('<u4'); "
                                f"got {dtype!r}") from None
            whole_numbers(addr=addr, count=count)
            if count < 0:
                raise ValueError(f"count is a whole number of structs, 0 or more; got {count!r}") from None
            raise

    def struct_at(self, addr: int, dtype: np.dtype):
        """One struct at ``addr``: a numpy record whose fields read and write Guest memory."""
        return self.array_at(addr, dtype, 1)[0]

    def __repr__(self):
        return f"GuestMemory(ram={self.ram_size // (1 << 20)} MiB, top={self.top:#x}, regions={len(self.regions)})"
