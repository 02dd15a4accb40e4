"""--block on the Launcher side: a real disk image behind one device page (reference §4.2, §4.5).

The Guest writes the request into the ``lguest_block_page`` (type, sector, bytes) and sends
to the page's key: the data itself for a write, an empty "ping" for a read. The Launcher
moves the bytes with ``os.preadv``/``os.pwritev`` straight into views of Guest memory, as
the real one used readv/writev, sets ``result`` (1 done, 2 short) and raises the irq of
the Guest's bound reply buffer. A request that points outside the disk stops the Launcher
("Bad offset", "Write past end"), and the image is not touched.
"""
from __future__ import annotations

import errno
import os

from .. import abi


def merge_adjacent(iov):
    """Sections that follow one another in memory, as one: readv fills them just the same."""
    merged: list[list[int]] = []
    for addr, length in iov:
        if merged and merged[-1][0] + merged[-1][1] == addr:
            merged[-1][1] += length
        else:
            merged.append([addr, length])
    return merged


class LauncherBlockError(ValueError):
    """A disk image the Launcher cannot use; says what is wrong and what is allowed."""


def open_image(path, o_direct: bool = False) -> tuple[int, int]:
    """Open a disk image read-write; return (fd, size). Its size must be whole sectors.

    ``o_direct`` opens it as the 2007 Launcher always did, bypassing the page cache (else,
    its comment says, the benchmarks would be too fast). Then the kernel moves only whole
    sectors, so a request for part of one fails (EINVAL) and gets result 2."""
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
        self.device = launcher.devices.new_dev_desc(abi.LGUEST_DEVICE_T_BLOCK, abi.LGUEST_DEVICE_F_RANDOMNESS, 1,
                                                    f"block {os.path.basename(self.path)}")
        self.device.watch_key = self.device.mem                # the page's own address
        self.device.handle_output = self.handle_output
        self.device.release = self.close
        self.page = launcher.memory.struct_at(self.device.mem, abi.lguest_block_page)   # a view: read live
        self.page["num_sectors"] = self.size // abi.SECTOR_SIZE
        self.requests = 0

    def handle_output(self, key: int, iov) -> int:
        """Serve the request described in the block page; the sent DMA's used_len means nothing."""
        launcher, page = self.launcher, self.page
        sector, write, nbytes = int(page["sector"]), bool(page["type"]), int(page["bytes"])
        off = sector * abi.SECTOR_SIZE
        if off >= self.size:
            launcher.exit(f"Bad offset {off} (sector {sector}): the disk is {self.size} bytes")
            return 0
        reply = launcher.get_dma_buffer(key)
        if reply is None:
            launcher.exit("block: no reply buffer bound to the block page's key")
            return 0
        reply_addr, irq = reply
        self.requests += 1
        if write:
            sent = sum(n for _, n in iov)
            if off + sent > self.size:
                launcher.exit(f"Write past end: {sent} bytes at {off}, disk is {self.size}")
                return 0
            moved = self._io(os.pwritev, iov, off) if iov else 0
            reply_len = 0
        else:
            moved = self._io(os.preadv, launcher.dma_to_iov(reply_addr), off)
            reply_len = max(moved, 0)
        launcher.memory.set_u32(reply_addr, reply_len)
        launcher.host.emit(launcher.lg, "used_len", addr=reply_addr, value=reply_len, by="launcher")
        result = 1 if moved == nbytes else 2
        page["result"] = result
        launcher.host.emit(launcher.lg, "block_io", write=write, offset=off, bytes=moved, result=result)
        launcher.trigger_irq(irq)
        return 0

    def _io(self, call, iov, off: int) -> int:
        """preadv or pwritev; -1 on an error, as the C's readv()/writev() returned (result 2)."""
        try:
            return call(self.fd, self._views(iov), off)
        except OSError as e:
            self.launcher.warn(f"block: {call.__name__} of {sum(n for _, n in iov)} bytes at {off}: {e.strerror}")
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
