"""/dev/lgbX as a Python file: reads and writes that go through the queue and the driver.

Each read or write is cut into requests of at most 16 pages (the queue's limit), made of
one bio per page in a small page cache of the Guest's own memory. The file submits as many
requests as the driver may have in flight (one, unless the D:440 exercise allows more), then
sleeps until the driver's interrupt ends them, which here means letting the Host run.
"""
from __future__ import annotations

import errno
import io
import operator

from .. import abi
from .linux.blkdev import Bio, BioVec, Request

SECTOR = abi.SECTOR_SIZE
PAGES = abi.LGUEST_MAX_DMA_SECTIONS          # one request: at most 16 pages = 64 KiB
REQUEST = PAGES * abi.PAGE_SIZE


class BlockDevice(io.RawIOBase):
    def __init__(self, kernel, bd, writable: bool):
        super().__init__()
        self.kernel, self.bd, self._writable = kernel, bd, writable
        self.size = bd.disk.capacity * SECTOR
        self.pos = 0
        self.batch = kernel.block.max_in_flight          # requests submitted before sleeping
        self.cache = kernel.kmalloc.alloc(self.batch * REQUEST, align=abi.PAGE_SIZE)   # pages side by side
        self.requests = 0

    def close(self) -> None:
        """Give the page cache back to the kernel (once)."""
        if not self.closed:
            self.kernel.kmalloc.free(self.cache)
        super().close()

    def readable(self) -> bool:
        return True

    def writable(self) -> bool:
        return self._writable

    def seekable(self) -> bool:
        return True

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        if whence not in (io.SEEK_SET, io.SEEK_CUR, io.SEEK_END):
            raise ValueError(f"whence is io.SEEK_SET, io.SEEK_CUR or io.SEEK_END (0, 1 or 2), got {whence!r}")
        try:
            offset = operator.index(offset)
        except TypeError:
            raise TypeError(f"a seek offset is a whole number of bytes, got {offset!r}") from None
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

    def readall(self) -> bytes:
        """The rest of the disk, in requests of the queue's largest size (io's default would
        ask for 8 KiB at a time)."""
        return self.read(max(0, self.size - self.pos))

    def write(self, data) -> int:
        if not self._writable:
            raise io.UnsupportedOperation("opened for reading: use mode 'r+b' to write")
        try:
            data = bytes(memoryview(data))
        except TypeError:
            raise TypeError(f"write() takes bytes (or another bytes-like object), got {type(data).__name__}") from None
        if self.pos + len(data) > self.size:
            raise OSError(errno.ENOSPC, f"the disk is {self.size} bytes: cannot write {len(data)} at {self.pos}")
        first = self.pos - self.pos % SECTOR
        end = -(-(self.pos + len(data)) // SECTOR) * SECTOR
        merged = bytearray(self._sectors(first, end)) if (first != self.pos or end != self.pos + len(data)) \
            else bytearray(end - first)                  # partial sectors: read, modify, write
        merged[self.pos - first:self.pos - first + len(data)] = data
        self._transfer(first, len(merged), write=True, data=merged)
        self.pos += len(data)
        return len(data)

    def _sectors(self, start: int, end: int) -> bytes:
        """Whole sectors covering [start, end)."""
        end = -(-end // SECTOR) * SECTOR
        return self._transfer(start, end - start, write=False)

    def _transfer(self, offset: int, nbytes: int, write: bool, data=b"") -> bytes:
        """Move whole sectors in requests of at most 64 KiB, ``batch`` requests per sleep."""
        memory, parts = self.kernel.memory, []
        for group in range(0, nbytes, self.batch * REQUEST):
            size = min(self.batch * REQUEST, nbytes - group)
            if write:
                memory.write(self.cache, memoryview(data)[group:group + size])   # pages side by side: one copy
            starts = range(0, size, REQUEST)
            reqs = [self._submit(offset + group + done, min(REQUEST, size - done), write, self.cache + done)
                    for done in starts]
            self.kernel.sleep_until(lambda: all(req.ended for req in reqs))
            for done, req in zip(starts, reqs):
                if not req.uptodate:
                    raise OSError(errno.EIO, f"{self.bd.disk.disk_name}: I/O error at sector "
                                             f"{(offset + group + done) // SECTOR}")
            if not write:
                parts.append(memory.read(self.cache, size))
        return b"".join(parts)

    def _submit(self, offset: int, nbytes: int, write: bool, cache: int) -> Request:
        """Queue one request of ``nbytes`` (whole sectors) at ``cache``: one bio per page."""
        sector = offset // SECTOR
        bios = [Bio(sector + i // SECTOR, [BioVec(cache + i, 0, min(abi.PAGE_SIZE, nbytes - i))])
                for i in range(0, nbytes, abi.PAGE_SIZE)]
        req = Request(self.bd.disk, sector, write, bios)
        self.requests += 1
        self.bd.disk.queue.submit(req)
        return req
