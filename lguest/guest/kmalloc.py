"""The Guest kernel's allocator: real physical addresses for buffers and DMA arrays.

A first-fit free list over the Guest's RAM above the first megabyte (where a real kernel
image and its boot data would sit), or above the first half of a smaller RAM.
Deterministic: the same calls give the same addresses. One rule is Linux's own: a block
of at most a page never crosses a page boundary, as no object of a kmalloc cache does.
That is why a network receive buffer is always one DMA section (reference §3.5).
"""
from __future__ import annotations

import bisect

from ..abi import PAGE_SIZE
from ..errors import LguestError

LOW_MEMORY = 1 << 20


def heap_start(ram_size: int) -> int:
    """Where the kernel's heap begins in a RAM of ``ram_size`` bytes."""
    return min(LOW_MEMORY, ram_size // 2)


class Allocator:
    def __init__(self, start: int, end: int):
        self._free: list[list[int]] = [[start, end - start]]     # sorted [addr, size] holes
        self._sizes: dict[int, tuple[int, int]] = {}            # addr -> (block start, block size)

    def alloc(self, size: int, align: int = 16) -> int:
        """``size`` bytes aligned to ``align`` (a power of two); returns the physical address."""
        # 2007-DIFF(kmalloc): Linux's slab allocator rounds a request up to a cache's size
        # (32, 64, ... 4096 bytes); this first-fit list does not, so addresses differ.
        if not isinstance(size, int) or size <= 0:
            raise ValueError(f"size must be a positive number of bytes, got {size!r}")
        if not isinstance(align, int) or align <= 0 or align & (align - 1):
            raise ValueError(f"align must be a power of two, got {align!r}")
        for hole in self._free:
            start, hole_size = hole
            addr = -(-start // align) * align
            if size <= PAGE_SIZE and addr % PAGE_SIZE + size > PAGE_SIZE:
                addr = -(-addr // PAGE_SIZE) * PAGE_SIZE          # start on the next page instead
            need = addr - start + size
            if need <= hole_size:
                hole[0], hole[1] = start + need, hole_size - need
                if hole[1] == 0:
                    self._free.remove(hole)
                self._sizes[addr] = (start, need)
                return addr
        raise LguestError(f"out of Guest memory: no free run of {size} bytes aligned to {align}")

    def free(self, addr: int) -> None:
        """Give back a block from alloc(); neighbouring holes merge."""
        try:
            start, size = self._sizes.pop(addr)
        except KeyError:
            raise ValueError(f"{addr:#x} is not the start of an allocated block") from None
        i = bisect.bisect_left(self._free, [start, 0])
        self._free.insert(i, [start, size])
        if i + 1 < len(self._free) and start + size == self._free[i + 1][0]:
            self._free[i][1] += self._free.pop(i + 1)[1]
        if i > 0 and self._free[i - 1][0] + self._free[i - 1][1] == start:
            self._free[i - 1][1] += self._free.pop(i)[1]
