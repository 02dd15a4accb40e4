"""--block on the Launcher side: a real disk image behind one device page (reference §4.2, §4.5).

The Guest writes the request into the ``lguest_block_page`` (type, sector, bytes) and sends
to the page's key: the data itself for a write, an empty "ping" for a read. The Launcher
moves the bytes with ``os.preadv``/``os.pwritev`` straight into views of Guest memory, as
the real one used readv/writev, sets ``result`` (1 done, 2 short) and raises the irq of
the Guest's bound reply buffer. A request that starts past the end of the disk stops the
Launcher before anything moves ("Bad offset"); a write that runs past the end is written
first, then cut back, and stops it ("Write past end"): the sectors in range have changed.
"""
from __future__ import annotations

import errno
import os

from .. import abi
from ..errors import LauncherBlockError


def merge_adjacent(iov):
    """Sections that follow one another in memory, as one: readv fills them just the same."""
    merged: list[list[int]] = []
    for addr, length in iov:
        if merged and merged[-1][0] + merged[-1][1] == addr:
            merged[-1][1] += length
        else:
            merged.append([addr, length])
    return merged


def open_image(path, o_direct: bool = False) -> tuple[int, int]:
    """Open a disk image read-write; return (fd, size). Its size must be whole sectors.

    ``o_direct`` opens it as the 2007 Launcher always did, bypassing the page cache (else,
    its comment says, the benchmarks would be too fast). Then the kernel moves only whole
    sectors, so a request for part of one fails (EINVAL): a read gets result 2 and a
    used_len of -1; a write's -1 is a huge unsigned length, so it is "Write past end"."""
    # 2007-DIFF(o-direct): 2007 always opened with O_DIRECT; the model asks for it (not every
    # file system offers it, and the page cache keeps the tests fast).
    path = os.fspath(path)
    flags = os.O_RDWR | getattr(os, "O_LARGEFILE", 0) | (os.O_DIRECT if o_direct else 0)
    try:
        fd = os.open(path, flags)
    except FileNotFoundError:
        raise LauncherBlockError(f"--block: no such disk image {path!r}") from None
    except PermissionError:
        raise LauncherBlockError(f"--block: {path!r} must be readable and writable") from None
    except IsADirectoryError:
        raise LauncherBlockError(f"--block: {path!r} is a directory, not a disk image") from None
    except OSError as e:
        if o_direct and e.errno == errno.EINVAL:
            raise LauncherBlockError(f"--block: the file system holding {path!r} does not support O_DIRECT; "
                                     "launch without o_direct, or keep the image elsewhere") from None
        raise
    size = os.lseek(fd, 0, os.SEEK_END)
    if size == 0 or size % abi.SECTOR_SIZE:
        os.close(fd)
        raise LauncherBlockError(f"--block: {path!r} is {size} bytes; a disk image must be a "
                                 f"non-empty whole number of {abi.SECTOR_SIZE}-byte sectors")
    return fd, size


class BlockFile:
    """One --block device: its page, its image, and the service of the Guest's requests."""

    def __init__(self, launcher, path, o_direct: bool = False):
        self.launcher = launcher
        self.path = os.fspath(path)
        self.fd, self.size = open_image(path, o_direct)
        try:
            self.device = launcher.devices.new_dev_desc(abi.LGUEST_DEVICE_T_BLOCK, abi.LGUEST_DEVICE_F_RANDOMNESS,
                                                        1, f"block {os.path.basename(self.path)}")
        except Exception:
            self.close()                                       # no device, so no open image either
            raise
        self.device.watch_key = self.device.mem                # the page's own address
        self.device.handle_output = self.handle_output
        self.device.release = self.close
        self.page = launcher.memory.struct_at(self.device.mem, abi.lguest_block_page)   # a view: read live
        self.page["num_sectors"] = self.size // abi.SECTOR_SIZE
        self.requests = 0

    def handle_output(self, key: int, iov) -> int:
        """handle_block_output(): serve the request in the block page. The sent DMA's used_len
        means nothing for a disk, so this returns 0; the answer is ``result`` and the reply.

        As in 2007: a write is written first and checked after. One that ran past the end of
        the disk (a failed writev() counts, its -1 being a huge unsigned length) has the file
        cut back to size and stops the Launcher, so the sectors in range *are* changed. A
        failed readv() leaves -1, 0xffffffff, in the reply's used_len, with result 2.
        """
        launcher, page = self.launcher, self.page
        # The page's fields are read when 2007 read them: the sector first, the type after GETDMA
        # (which writes an irq into a reply buffer, and the Guest may have bound one over the
        # page), the byte count after the I/O (which may have landed on it).
        off = int(page["sector"]) * abi.SECTOR_SIZE
        if off >= self.size:
            # err(1, ...): 2007 also printed a stale errno after this message (left out here).
            launcher.exit(f"Bad offset {off} vs {self.size}")
            return 0
        reply = launcher.get_dma_buffer(key)
        if reply is None:
            launcher.exit(f"Block request didn't give us a dma buffer: {os.strerror(errno.ENOENT)}")
            return 0
        reply_addr, irq, reply_iov = reply
        self.requests += 1
        write = bool(page["type"])
        if write:
            length = self._io(os.pwritev, iov, off) & 0xFFFFFFFF      # unsigned int len
            launcher.lguest.trace("block_io", write=True, offset=off, bytes=length)
            if off + length > self.size:
                try:
                    os.ftruncate(self.fd, self.size)         # trim it back; 2007 ignored a failure
                except OSError:
                    pass
                launcher.exit(f"Write past end {off}+{length}")
                return 0
            reply_len = 0
        else:
            length = reply_len = self._io(os.preadv, reply_iov, off) & 0xFFFFFFFF
            launcher.lguest.trace("block_io", write=False, offset=off, bytes=length)
        launcher.set_used_len(reply_addr, reply_len)      # after the bytes: the Guest may look now
        result = 1 + (int(page["bytes"]) != length)
        page["result"] = result
        launcher.lguest.trace("block_result", result=result)
        launcher.trigger_irq(irq)
        return 0

    def _io(self, call, iov, off: int) -> int:
        """preadv or pwritev of the sections; -1 when the call fails, as readv()/writev() did."""
        if not iov:
            return 0                                  # readv() of no sections reads nothing
        try:
            return call(self.fd, self._views(iov), off)
        except OSError:
            return -1

    def _views(self, iov) -> list:
        """Views of the Guest's sections, so the kernel copies straight to and from them.

        The Launcher checked each section against ``top`` only, so one may straddle RAM
        and the descriptor page: it becomes two views, as it was one run of the
        Launcher's own address space."""
        return [view for addr, length in merge_adjacent(iov) for view in self.launcher.memory.views(addr, length)]

    def close(self) -> None:
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None
