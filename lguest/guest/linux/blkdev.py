"""A stand-in for the Linux 2.6.23 block layer: request queues of requests, bios and bio_vecs.

Just enough for lguest_blk.c: a queue with ``elv_next_request``, ``blk_stop_queue`` and
``blk_start_queue``; requests made of bios, bios made of (page, offset, len) segments,
within the queue's limits (at most ``max_hw_segments`` segments, none across a page);
and completion with ``end_that_request_first``/``end_that_request_last``, plus the old
``end_request`` that only finishes the first bio (the story of D:495).
"""
from __future__ import annotations

# 2007-DIFF(block-layer): no elevator, no merging, no page cache: requests come straight from
# the model's BlockDevice (guest.open), in the order asked, each its own run of bios.

from collections import deque
from dataclasses import dataclass, field
from typing import Callable

from ... import abi

SECTOR_SIZE = abi.SECTOR_SIZE


class BioVec:
    """One segment: ``bv_len`` bytes at ``bv_offset`` in the page at physical ``bv_page``."""
    __slots__ = ("bv_page", "bv_offset", "bv_len")

    def __init__(self, bv_page: int, bv_offset: int, bv_len: int):
        self.bv_page, self.bv_offset, self.bv_len = bv_page, bv_offset, bv_len

    def __repr__(self):
        return f"BioVec(page {self.bv_page:#x}, offset {self.bv_offset}, len {self.bv_len})"


class Bio:
    """A run of segments that are contiguous on the disk. As in Linux, ``bi_size`` is a
    field, worked out once when the bio is built, not summed again at every look."""
    __slots__ = ("bi_sector", "bi_io_vec", "bi_size")

    def __init__(self, bi_sector: int, bi_io_vec: list[BioVec]):
        self.bi_sector = bi_sector
        self.bi_io_vec = bi_io_vec
        self.bi_size = sum([v.bv_len for v in bi_io_vec])

    def __repr__(self):
        return f"Bio(sector {self.bi_sector}, {len(self.bi_io_vec)} segment(s), {self.bi_size} bytes)"


@dataclass(eq=False)
class Request:
    """One disk request: bios in disk order, and what the driver reports back.

    ``hard_nr_sectors`` is what is left to do, as in Linux: it shrinks as bios end."""
    rq_disk: object
    sector: int
    write: bool
    bios: list[Bio]
    fs: bool = True                       # blk_fs_request(): an ordinary read or write
    errors: int = 0
    uptodate: bool | None = None          # set when the request ends
    bios_completed: int = 0               # completion work: bios ended one by one
    sends: int = 0                        # how many times a driver put it on the wire
    on_end: list[Callable] = field(default_factory=list)
    hard_nr_sectors: int = field(init=False)

    def __post_init__(self):
        self.hard_nr_sectors = sum(b.bi_size for b in self.bios) // SECTOR_SIZE

    @property
    def ended(self) -> bool:
        return self.uptodate is not None

    def __repr__(self):
        kind = "write" if self.write else "read"
        return f"Request({kind}, sector {self.sector}, {len(self.bios)} bio(s), {self.hard_nr_sectors} sectors)"


def blk_fs_request(req: Request) -> bool:
    return req.fs


class RequestQueue:
    """A device's queue. ``request_fn`` is the driver's; it is called whenever the queue runs."""

    def __init__(self, request_fn: Callable[["RequestQueue"], None], name: str = ""):
        self.request_fn = request_fn
        self.name = name
        self.queue: deque[Request] = deque()
        self.stopped = False
        self.max_hw_segments = 128
        self.seg_boundary_mask = 0xFFFFFFFF
        self.stops = self.starts = 0

    # --- limits (set by the driver's probe) ---------------------------------------------
    def blk_queue_max_hw_segments(self, n: int) -> None:
        self.max_hw_segments = n

    def blk_queue_segment_boundary(self, mask: int) -> None:
        self.seg_boundary_mask = mask

    def check_limits(self, req: Request) -> None:
        """What the block layer guarantees a driver: few enough segments, none across a boundary."""
        segments = [v for bio in req.bios for v in bio.bi_io_vec]
        if len(segments) > self.max_hw_segments:
            raise ValueError(f"a request may have at most {self.max_hw_segments} segments, got {len(segments)}")
        for v in segments:
            start = v.bv_page + v.bv_offset
            if start & ~self.seg_boundary_mask != (start + v.bv_len - 1) & ~self.seg_boundary_mask:
                raise ValueError(f"a segment may not cross a {self.seg_boundary_mask + 1}-byte boundary: "
                                 f"{v.bv_len} bytes at {start:#x}")

    # --- the queue ----------------------------------------------------------------------
    def submit(self, req: Request) -> None:
        """Queue a request and run the queue (unless it is stopped)."""
        self.check_limits(req)
        self.queue.append(req)
        self.run()

    def run(self) -> None:
        if not self.stopped and self.queue:
            self.request_fn(self)

    def elv_next_request(self) -> Request | None:
        """The request at the head; it stays queued until dequeued."""
        return self.queue[0] if self.queue else None

    def request_behind(self, n: int) -> Request | None:
        """The request after the first ``n``, or None: a driver walking its queue."""
        return self.queue[n] if n < len(self.queue) else None

    def blkdev_dequeue_request(self, req: Request) -> None:
        self.queue.remove(req)

    def blk_stop_queue(self) -> None:
        self.stopped = True
        self.stops += 1

    def blk_start_queue(self) -> None:
        """Restart, and run the queue at once: a driver's irq handler calls this."""
        self.stopped = False
        self.starts += 1
        self.run()


def end_that_request_first(req: Request, uptodate: bool, nr_sectors: int) -> bool:
    """End bios from the front covering ``nr_sectors``; True if some of the request is left."""
    budget = left = nr_sectors * SECTOR_SIZE
    done = 0
    for bio in req.bios:
        if left < bio.bi_size:
            break
        left -= bio.bi_size
        done += 1
    del req.bios[:done]
    sectors = (budget - left) // SECTOR_SIZE
    req.sector += sectors
    req.hard_nr_sectors -= sectors
    req.bios_completed += done
    if not uptodate:
        req.errors += done
    return bool(req.bios)


def end_that_request_last(req: Request, uptodate: bool) -> None:
    req.uptodate = bool(uptodate)
    for callback in req.on_end:
        callback(req)


def end_request(req: Request, uptodate: bool) -> None:
    """The old, deprecated helper: it ends only the first bio (the "current" chunk)."""
    first = req.bios[0].bi_size // SECTOR_SIZE if req.bios else 0
    if not end_that_request_first(req, uptodate, first):
        req.rq_disk.queue.blkdev_dequeue_request(req)
        end_that_request_last(req, uptodate)
