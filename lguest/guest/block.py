"""D:400–D:495: the Guest block driver (drivers/block/lguest_blk.c), in the tour's order.

/dev/lgba, lgbb, ...: the request goes into the device page (type, sector, bytes), then a
SEND_DMA to the page's key carries the data for a write, or an empty "ping" for a read.
One request is in flight at a time; the interrupt ends it and restarts the queue.
One instance per Guest kernel holds what the C file keeps in static variables.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from .. import abi
from ..structs import write_dma
from .bus import LguestDriver, lgdev_irq
from .linux.blkdev import (Request, RequestQueue, blk_fs_request, end_request, end_that_request_first,
                           end_that_request_last)
from .linux.interrupt import IRQ_HANDLED, IRQ_NONE, IRQF_SAMPLE_RANDOM, IRQF_SHARED



@dataclass(eq=False)
class Gendisk:
    """``struct gendisk``: what the rest of Linux sees of a disk."""
    disk_name: str
    major: int
    queue: RequestQueue = None
    private_data: object = None
    capacity: int = 0                       # in sectors

    def __repr__(self):
        return f"Gendisk({self.disk_name}, {self.capacity} sectors)"


# D:420 ------------------------------------------------------------------------------------
@dataclass(eq=False)
class Blockdev:
    """``struct blockdev``: everything the driver keeps about one disk."""
    disk: Gendisk                           # the disk as the kernel knows it
    major: int                              # kept, as in C, only for completeness
    irq: int
    phys_addr: int                          # the device page: also the DMA key
    lb_page: object                         # the mapped lguest_block_page
    dma: int                                # the one bound reply lguest_dma
    inflight: list[Request] = field(default_factory=list)   # C has one: bd->req

    @property
    def req(self) -> Request | None:
        """``bd->req``: the request in flight (the oldest, if the exercise allows more)."""
        return self.inflight[0] if self.inflight else None


class LguestBlk:
    def __init__(self, kernel):
        self.kernel = kernel
        self.next_block_index = "a"           # the 27th disk becomes "lgb{"
        self.next_major = 254
        self.disks: list[Blockdev] = []
        # 2007-DIFF(end-request): an exercise switch; False ends requests the old way (D:495).
        self.end_entire = True
        # 2007-DIFF(in-flight): an exercise switch (D:440); 2007 had one request in flight.
        self._max_in_flight = 1
        self.stack_dma = None                 # do_write's / do_read's local lguest_dma (first probe)
        self.lguestblk_drv = LguestDriver("lguestblk", abi.LGUEST_DEVICE_T_BLOCK, self.lguestblk_probe)

    @property
    def max_in_flight(self) -> int:
        """How many requests a disk may have in flight: 1, as in 2007, unless the exercise says more."""
        return self._max_in_flight

    @max_in_flight.setter
    def max_in_flight(self, n: int) -> None:
        if not isinstance(n, int) or isinstance(n, bool) or n < 1:
            raise ValueError(f"max_in_flight is a whole number of requests, at least 1; got {n!r}")
        self._max_in_flight = n

    # --- D:495 ----------------------------------------------------------------------------
    def end_entire_request(self, req: Request, uptodate: bool) -> None:
        """D:495: end every bio of the request in one go, then the request itself."""
        if end_that_request_first(req, uptodate, req.hard_nr_sectors):
            raise AssertionError("BUG: end_that_request_first left part of the request")
        req.rq_disk.queue.blkdev_dequeue_request(req)
        end_that_request_last(req, uptodate)

    # --- D:490 ----------------------------------------------------------------------------
    def lgb_irq(self, irq: int, bd: Blockdev) -> int:
        """D:490: a read or write finished: end the request, free the reply, restart the queue.

        With the exercise's N in flight, one interrupt ends them all, and all share the one
        ``result`` the page has room for: the last request's (see the D:440 exercise)."""
        if not bd.inflight:
            self.kernel.pr_debug("No work!")
            return IRQ_NONE
        result = int(bd.lb_page["result"])
        if not result:
            self.kernel.pr_debug("No result!")
            return IRQ_NONE
        ok = result == 1
        inflight, bd.inflight = bd.inflight, []
        for req in inflight:
            if self.end_entire:
                self.end_entire_request(req, ok)
            else:
                end_request(req, ok)          # the 2007 original: only the first bio
        self.kernel.memory.set_u32(bd.dma, 0)             # the reply buffer is free again
        bd.disk.queue.blk_start_queue()
        return IRQ_HANDLED

    # --- D:480 ----------------------------------------------------------------------------
    def req_to_dma(self, req: Request, dma: int) -> int:
        """D:480: every segment of every bio becomes one section; returns the total length."""
        sections = []
        for bio in req.bios:
            for bvec in bio.bi_io_vec:
                if len(sections) == abi.LGUEST_MAX_DMA_SECTIONS:
                    raise AssertionError("BUG: more segments than the queue limit allows")
                if not bvec.bv_len:
                    raise AssertionError("BUG: a zero-length segment would end the list early")
                sections.append((bvec.bv_page + bvec.bv_offset, bvec.bv_len))
        write_dma(self.kernel.memory, dma, sections)      # a 0 length ends a list of fewer than 16
        return sum(n for _, n in sections)

    # --- D:470 ----------------------------------------------------------------------------
    def setup_req(self, bd: Blockdev, type_: int, req: Request, dma: int) -> None:
        """D:470: type, sector, result 0, the request, then bytes (from req_to_dma)."""
        bd.lb_page["type"] = type_
        bd.lb_page["sector"] = req.sector
        bd.lb_page["result"] = 0
        bd.inflight.append(req)
        bd.lb_page["bytes"] = self.req_to_dma(req, dma)

    # --- D:450 ----------------------------------------------------------------------------
    def do_write(self, bd: Blockdev, req: Request) -> None:
        """D:450: the data itself goes in the SEND_DMA."""
        self.setup_req(bd, 1, req, self.stack_dma)
        req.sends += 1
        self.kernel.lguest_send_dma(bd.phys_addr, self.stack_dma)

    def do_read(self, bd: Blockdev, req: Request) -> None:
        """D:450: the request goes into our bound reply DMA; the SEND_DMA is an empty ping."""
        self.setup_req(bd, 0, req, bd.dma)
        write_dma(self.kernel.memory, self.stack_dma, [])   # len[0] = 0
        req.sends += 1
        self.kernel.lguest_send_dma(bd.phys_addr, self.stack_dma)

    # --- D:440 ----------------------------------------------------------------------------
    def do_lgb_request(self, q: RequestQueue) -> None:
        """D:440: take requests until one is in flight, then stop the queue.

        ``max_in_flight`` > 1 is the chapter's exercise, not 2007 code. Requests in flight
        stay at the head of the queue, as the one does in C; the next to send is the first
        behind them, and the queue stops only when N are in flight. It works here only
        because this Launcher serves a request inside its SEND_DMA, so the one block page
        and reply DMA are free again by the time the next request is written into them."""
        while True:
            head = q.elv_next_request()
            if head is None:
                return
            bd = head.rq_disk.private_data
            if len(bd.inflight) >= self.max_in_flight:   # C: if (bd->req) return;
                return
            req = q.request_behind(len(bd.inflight))     # with one in flight at most: the head
            if req is None:
                return
            if not blk_fs_request(req):
                self.kernel.pr_debug("Got non-command")
                req.errors += 1
                self.end_entire_request(req, False)
                continue
            if req.write:
                self.do_write(bd, req)
            else:
                self.do_read(bd, req)
            if len(bd.inflight) == self.max_in_flight:
                q.blk_stop_queue()
                return

    # --- D:425 ----------------------------------------------------------------------------
    def lguestblk_probe(self, lgdev) -> int:
        """D:425: set up the disk, its queue and limits, its name, irq and reply binding."""
        kernel = self.kernel
        if self.stack_dma is None:
            self.stack_dma = kernel.kmalloc.alloc(abi.DMA_SIZE, align=4)
        desc = kernel.bus.desc(lgdev.index)
        phys_addr = int(desc["pfn"]) << abi.PAGE_SHIFT
        lb_page = kernel.memory.struct_at(phys_addr, abi.lguest_block_page)
        kernel.lguest_map(phys_addr, 1)
        major, self.next_major = self.next_major, self.next_major - 1     # register_blkdev(0, ...)
        disk = Gendisk(f"lgb{self.next_block_index}", major)               # alloc_disk(1)
        self.next_block_index = chr(ord(self.next_block_index) + 1)
        disk.queue = RequestQueue(self.do_lgb_request, disk.disk_name)
        disk.queue.blk_queue_max_hw_segments(abi.LGUEST_MAX_DMA_SECTIONS)
        disk.queue.blk_queue_segment_boundary(abi.PAGE_SIZE - 1)
        dma = kernel.kmalloc.alloc(abi.DMA_SIZE, align=4)
        write_dma(kernel.memory, dma, [])                                  # used_len 0, len[0] 0
        bd = Blockdev(disk, major, lgdev_irq(lgdev), phys_addr, lb_page, dma)
        flags = IRQF_SHARED | (IRQF_SAMPLE_RANDOM if int(desc["features"]) & abi.LGUEST_DEVICE_F_RANDOMNESS else 0)
        err = kernel.request_irq(bd.irq, self.lgb_irq, flags, disk.disk_name, bd)
        if not err:
            err = kernel.lguest_bind_dma(phys_addr, dma, 1, bd.irq)
            if err:
                kernel.free_irq(bd.irq, bd)
        if err:                                         # the unwind, out_free_irq to out_free_bd:
            self.next_major = major                     # unregister_blkdev(): free for the next disk
            kernel.kmalloc.free(dma)                    # kfree(bd), which held the reply DMA
            return err                                  # (the letter of its name stays used)
        disk.private_data = bd
        disk.capacity = int(lb_page["num_sectors"])                       # set by the Launcher
        kernel.register_dev(disk.disk_name)
        kernel.printk(f"{disk.disk_name}: device {lgdev.index} at major {major}")
        lgdev.private = bd
        self.disks.append(bd)
        return 0

    # --- D:410 ----------------------------------------------------------------------------
    def lguestblk_init(self) -> int:
        """D:410: the same boilerplate as the console's."""
        return self.kernel.bus.register_lguest_driver(self.lguestblk_drv)

    def disk(self, name: str) -> Blockdev:
        for bd in self.disks:
            if bd.disk.disk_name == name:
                return bd
        raise FileNotFoundError(f"no block device {name!r}; this Guest has {[b.disk.disk_name for b in self.disks]}")
