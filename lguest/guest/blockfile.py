"""/dev/lgbX as a Python file: reads and writes that go through the queue and the driver.

Each read or write is cut into requests of at most 16 pages (the queue's limit), made of
one bio per page in a small page cache of the Guest's own memory. The caller sleeps until
the driver's interrupt ends the request, which here means letting the Host run.
"""
from __future__ import annotations

import errno
import io
from typing import Callable

from .. import abi
from .linux.blkdev import Bio, BioVec, Request

SECTOR = abi.SECTOR_SIZE
PAGES = abi.LGUEST_MAX_DMA_SECTIONS          # one request: at most 16 pages = 64 KiB


class BlockDevice(io.RawIOBase):
    def __init__(self, kernel, bd, writable: bool, wait: Callable[[Callable[[], bool]], None]):
        super().__init__()
        self.kernel, self.bd, self._writable, self._wait = kernel, bd, writable, wait
        self.size = bd.disk.capacity * SECTOR
        self.pos = 0
        self.cache = kernel.kmalloc.alloc(PAGES * abi.PAGE_SIZE, align=abi.PAGE_SIZE)   # 16 pages, side by side
        self.pages = [self.cache + i * abi.PAGE_SIZE for i in range(PAGES)]
        self.requests = 0

    def close(self) -> None:
        """Give the page cache back to the kernel (once)."""
        if not self.closed:
            self.kernel.kmalloc.free(self.cache)
            self.pages = []
        super().close()

    def readable(self) -> bool:
        return True

    def writable(self) -> bool:
        return self._writable

    def seekable(self) -> bool:
        return True

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self.pos, io.SEEK_END: self.size}[whence]
        if base + offset < 0:
            raise OSError(errno.EINVAL, f"cannot seek to {base + offset}: before the start of the disk")
        self.pos = base + offset
        return self.pos

    def tell(self) -> int:
        return self.pos

    def readinto(self, buffer) -> int:
        out = memoryview(buffer).cast("B")
        n = max(0, min(len(out), self.size - self.pos))
        first = self.pos - self.pos % SECTOR
        data = self._sectors(first, self.pos + n)
        out[:n] = data[self.pos - first:self.pos - first + n]
        self.pos += n
        return n

    def write(self, data) -> int:
        if not self._writable:
            raise io.UnsupportedOperation("opened for reading: use mode 'r+b' to write")
        data = bytes(data)
        if self.pos + len(data) > self.size:
            raise OSError(errno.ENOSPC, f"the disk is {self.size} bytes: cannot write {len(data)} at {self.pos}")
        first = self.pos - self.pos % SECTOR
        end = -(-(self.pos + len(data)) // SECTOR) * SECTOR
        merged = bytearray(self._sectors(first, end)) if (first != self.pos or end != self.pos + len(data)) \
            else bytearray(end - first)                  # partial sectors: read, modify, write
        merged[self.pos - first:self.pos - first + len(data)] = data
        for start in range(0, len(merged), PAGES * abi.PAGE_SIZE):
            chunk = merged[start:start + PAGES * abi.PAGE_SIZE]
            self._request(first + start, len(chunk), write=True, data=chunk)
        self.pos += len(data)
        return len(data)

    def _sectors(self, start: int, end: int) -> bytes:
        """Whole sectors covering [start, end), read in requests of at most 16 pages."""
        end = -(-end // SECTOR) * SECTOR
        parts = []
        for off in range(start, end, PAGES * abi.PAGE_SIZE):
            parts.append(self._request(off, min(PAGES * abi.PAGE_SIZE, end - off), write=False))
        return b"".join(parts)

    def _request(self, offset: int, nbytes: int, write: bool, data: bytes = b"") -> bytes:
        """One request of ``nbytes`` (whole sectors, at most 64 KiB): queue it, sleep, check it."""
        memory = self.kernel.memory
        if write:
            memory.write(self.cache, data)               # the pages are side by side: one copy
        bios = [Bio(offset // SECTOR + i // SECTOR, [BioVec(self.pages[i // abi.PAGE_SIZE], 0,
                                                            min(abi.PAGE_SIZE, nbytes - i))])
                for i in range(0, nbytes, abi.PAGE_SIZE)]
        req = Request(self.bd.disk, offset // SECTOR, write, bios)
        self.requests += 1
        self.bd.disk.queue.submit(req)
        self._wait(lambda: req.ended)
        if not req.uptodate:
            raise OSError(errno.EIO, f"{self.bd.disk.disk_name}: I/O error at sector {offset // SECTOR}")
        if write:
            return b""
        return memory.read(self.cache, nbytes)
