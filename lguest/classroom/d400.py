"""D:400's checkable exercises: name the 27th disk, let two requests fly, count the old way, measure.

``names`` and ``inflight`` are implement exercises: the student's function runs against the
seed's cases (``inflight`` inside a booted Guest, as its disk's request function); ``old``
is a prediction; ``ticks`` is a measurement with the Host's clock.
"""
from __future__ import annotations

import os
import random
import tempfile

from .. import abi
from . import Exercise, Explore

KIB = 1024
REQUEST = abi.LGUEST_MAX_DMA_SECTIONS * abi.PAGE_SIZE     # the largest request: 64 KiB


# --- names ------------------------------------------------------------------------------------
def linux_name(n: int) -> str:
    """The name ``sd`` would give disk n (from 0): lgba .. lgbz, lgbaa .. lgbzz, lgbaaa, ...
    Bijective base 26: the letters a..z are the digits 1..26, and there is no zero."""
    letters = ""
    n += 1
    while n:
        n, r = divmod(n - 1, 26)
        letters = chr(ord("a") + r) + letters
    return "lgb" + letters


def name_2007(n: int) -> str:
    """What lguestblk_probe did: one character, incremented for every disk."""
    return "lgb" + chr(ord("a") + n)


def name_zero_digit(n: int) -> str:
    """Plain base 26 with 'a' as 0: lgbz is followed by lgbba (no name starts lgba.. twice)."""
    letters = ""
    while True:
        n, r = divmod(n, 26)
        letters = chr(ord("a") + r) + letters
        if not n:
            return "lgb" + letters


def name_reversed(n: int) -> str:
    """The right letters, least significant first."""
    return "lgb" + linux_name(n)[3:][::-1]


def name_one_based(n: int) -> str:
    """n taken as counting from 1: disk 1 is lgba."""
    return linux_name(n - 1) if n else "lgb"


class Names(Exercise):
    """disk_name(n): 2007's counter ran into punctuation after lgbz; write the sd-style names."""

    label = "d400-ex-names"
    kind = "implement"
    points = 2
    minutes = 20
    what = "your function itself (names_answer = disk_name)"

    WRONG = ((name_2007, "2007's one-character counter"),
             (name_zero_digit, "no zero digit"),
             (name_reversed, "the first letter"),
             (name_one_based, "n counts from 0"))

    def make(self, rng):
        cases = ([rng.randrange(0, 25), 25, 26] + sorted(rng.sample(range(27, 702), 3))
                 + [rng.choice([701, 702]), rng.randrange(703, 26 ** 3 + 26 ** 2 + 26)])
        text = (f"check() calls disk_name(n) for n in {cases}\n"
                "(n counts from 0: n = 26 is the 27th disk) and compares each name with the one sd's\n"
                "scheme gives. Answer with the function itself: names_answer = disk_name.")
        return dict(text=text, cases=cases)

    def answer(self, p):
        return linux_name

    def judge(self, fn, p):
        if not callable(fn):
            return "answer with the function itself, not its result: names_answer = disk_name"
        got = {}
        for n in p.cases:
            name = fn(n)
            if not isinstance(name, str):
                return f"disk_name({n}) returned a {type(name).__name__}; a disk's name is a str"
            got[n] = name
        bad = [n for n in p.cases if got[n] != linux_name(n)]
        if not bad:
            return None
        for wrong, fragment in self.WRONG:
            if all(got[n] == wrong(n) for n in p.cases):
                return {name_2007: f"{fragment} is what you wrote: after 'z' it runs on into "
                                   "punctuation; the 27th disk needs a second letter",
                        name_zero_digit: f"your names treat 'a' as a zero digit, so after lgbz no two-letter "
                                         f"name starts with 'a'; sd's scheme has {fragment}",
                        name_reversed: f"your letters come out in the wrong order: {fragment} should be the "
                                       "one that changes slowest, like the tens of a number",
                        name_one_based: f"{fragment}: disk_name(0) is the first disk, lgba"}[wrong]
        n = bad[0]
        if not got[n].startswith("lgb") or not got[n][3:].isalpha() or not got[n][3:].islower():
            return f"disk_name({n}) returned {got[n]!r}: a name is 'lgb' and lower-case letters only"
        if n < 26:
            return (f"disk_name({n}) returned {got[n]!r}: the first 26 disks have one letter each, "
                    "as in 2007")
        return (f"disk_name({n}) returned {got[n]!r}, which is not sd's name for that disk: count how "
                "many names have one letter, how many two, and work it out by hand")

    def mistakes(self, p):
        return list(self.WRONG)


# --- two in flight, run in the model ----------------------------------------------------------
def _sections(nbytes: int) -> list[int]:
    """One bio per page: the lengths of a request of ``nbytes``."""
    return [min(abi.PAGE_SIZE, nbytes - i) for i in range(0, nbytes, abi.PAGE_SIZE)]


def run_requests(p, request_fn=None) -> dict:
    """Boot a Guest on a fresh image, make ``request_fn(blk, q)`` its disk's request function
    (None: the model's own driver with two in flight), submit ``p.requests`` one after another
    without letting the Host run, then let it run. Returns what was seen at each step."""
    import lguest
    from ..guest.linux.blkdev import Bio, BioVec, Request

    content = random.Random(p.content).randbytes(p.sectors * abi.SECTOR_SIZE)
    with tempfile.TemporaryDirectory(prefix="lguest-d400-") as workdir:
        path = os.path.join(workdir, "disk.img")
        with open(path, "wb") as f:
            f.write(content)
        host = lguest.Host(trace=False)
        guest = host.launch(mem_mb=4, block=[path])
        blk = guest.kernel.block
        bd = blk.disks[0]
        q = bd.disk.queue
        if request_fn is None:
            blk.max_in_flight = 2
        else:
            blk.max_in_flight = 1                  # the 2007 driver's setting: your function must do better
            q.request_fn = lambda queue: request_fn(blk, queue)
        reqs, bufs, steps, error = [], [], [], None

        def where(r):
            return next((i for i, mine in enumerate(reqs) if mine is r), -1)

        def state(step):
            steps.append((step, len(q.queue), q.stopped, tuple(where(r) for r in bd.inflight)))

        try:
            for i, (write, sector, nbytes) in enumerate(p.requests):
                buf = guest.alloc(4 * abi.PAGE_SIZE, align=abi.PAGE_SIZE)
                if write:
                    guest.memory.write(buf, bytes([0x41 + i]) * nbytes)
                lengths = _sections(nbytes)
                bios = [Bio(sector + 8 * j, [BioVec(buf + j * abi.PAGE_SIZE, 0, n)]) for j, n in enumerate(lengths)]
                reqs.append(Request(bd.disk, sector, write, bios))
                bufs.append(buf)
                q.submit(reqs[-1])
                state(f"submit #{i + 1}")
            host.run()
            state("the Host runs")
        except Exception as e:                     # the student's driver broke something: report it
            error = f"{type(e).__name__}: {e}"
        reads = [guest.memory.read(buf, nbytes) for buf, (write, _, nbytes) in zip(bufs, p.requests) if not write]
        with open(path, "rb") as f:
            image = f.read()
    return dict(steps=steps, error=error, sends=[r.sends for r in reqs], uptodate=[r.uptodate for r in reqs],
                reads=reads, image=image, stops=q.stops, irqs=guest.kernel.irq_counts[bd.irq],
                dead=guest.dead)


def driver_2007(blk, q):
    """The driver as it was: one in flight (the check leaves max_in_flight at 1)."""
    blk.do_lgb_request(q)


def driver_resends_head(blk, q):
    """Sends the head of the queue, even when it is already in flight."""
    req = q.elv_next_request()
    if req is None:
        return
    bd = req.rq_disk.private_data
    if len(bd.inflight) >= 2:
        return
    (blk.do_write if req.write else blk.do_read)(bd, req)
    if len(bd.inflight) == 2:
        q.blk_stop_queue()


def driver_never_stops(blk, q):
    """Two in flight, but the queue keeps running."""
    while True:
        head = q.elv_next_request()
        if head is None:
            return
        bd = head.rq_disk.private_data
        if len(bd.inflight) >= 2:
            return
        req = q.request_behind(len(bd.inflight))
        if req is None:
            return
        (blk.do_write if req.write else blk.do_read)(bd, req)


def driver_no_limit(blk, q):
    """Sends everything queued: no limit at all."""
    head = q.elv_next_request()
    if head is None:
        return
    bd = head.rq_disk.private_data
    while True:
        req = q.request_behind(len(bd.inflight))
        if req is None:
            return
        (blk.do_write if req.write else blk.do_read)(bd, req)


def driver_two(blk, q):
    """The solution: D:440 with room for two."""
    while True:
        head = q.elv_next_request()
        if head is None:
            return
        bd = head.rq_disk.private_data
        if len(bd.inflight) >= 2:
            return
        req = q.request_behind(len(bd.inflight))
        if req is None:
            return
        (blk.do_write if req.write else blk.do_read)(bd, req)
        if len(bd.inflight) == 2:
            q.blk_stop_queue()
            return


class InFlight(Exercise):
    """do_lgb_request for two requests in flight, run as the disk's request function."""

    label = "d400-ex-inflight"
    kind = "implement"
    points = 3
    minutes = 30
    what = "your function itself (inflight_answer = do_lgb_request)"

    WRONG = ((driver_2007, "never had two requests in flight"),
             (driver_resends_head, "already in flight"),
             (driver_never_stops, "queue is still running"),
             (driver_no_limit, "more than two"))

    def make(self, rng):
        sectors = rng.randrange(64, 257)
        count = rng.randrange(4, 7)
        requests = []
        for i in range(count):
            nbytes = rng.randrange(1, 33) * abi.SECTOR_SIZE             # up to 4 pages
            sector = rng.randrange(0, sectors - nbytes // abi.SECTOR_SIZE + 1)
            requests.append((i > 0 and rng.random() < 0.3, sector, nbytes))
        listing = "\n".join(f"  #{i + 1}: {'write' if w else 'read '} {n:5} bytes at sector {s}"
                            for i, (w, s, n) in enumerate(requests))
        text = (f"check() boots a Guest on a {sectors}-sector disk, makes your function its request\n"
                "function (queue.request_fn calls do_lgb_request(blk, q); blk.max_in_flight stays 1),\n"
                "submits these requests one after another without letting the Host run:\n"
                f"{listing}\n"
                "then lets the Host run. After each step it compares what is queued, whether the queue\n"
                "is stopped and which requests are in flight with a driver that allows two, then the\n"
                "data read and written. Answer with the function: inflight_answer = do_lgb_request.")
        return dict(text=text, sectors=sectors, requests=requests, content=rng.randrange(1 << 30))

    def answer(self, p):
        return driver_two

    def judge(self, fn, p):
        if not callable(fn):
            return "answer with the function itself, not its result: inflight_answer = do_lgb_request"
        right, got = run_requests(p), run_requests(p, fn)
        flights = [s[3] for s in got["steps"]]
        if any(len(set(f)) < len(f) for f in flights):
            return "your driver sent a request that was already in flight: look behind the ones in flight"
        if any(len(f) > 2 for f in flights):
            return "your driver had more than two requests in flight at once: when must it stop taking more?"
        if got["error"]:
            return f"running your driver raised {got['error']} (after {len(got['steps'])} step(s))"
        if all(len(f) < 2 for f in flights):
            return ("your driver never had two requests in flight: it still waits for each request's "
                    "interrupt before it sends the next")
        for mine, want in zip(got["steps"], right["steps"]):
            if mine == want:
                continue
            step, queued, stopped, flight = mine
            if flight != want[3]:
                which = ", ".join(f"#{i + 1}" if i >= 0 else "one check() did not submit" for i in flight)
                return f"after {step}, your driver has in flight: {which or 'nothing'}"
            if not stopped and want[2]:
                return (f"after {step}, two requests are in flight but the queue is still running: "
                        "the block layer will keep calling your driver")
            if stopped and not want[2]:
                return f"after {step}, your queue is stopped although the driver could take another request"
            return f"after {step}, {queued} request(s) are queued: requests in flight stay at the head"
        if len(got["steps"]) != len(right["steps"]):
            return "your driver did not get through all the requests"
        if got["sends"] != right["sends"] or got["uptodate"] != right["uptodate"]:
            return "every request should be sent once and end successfully"
        if got["reads"] != right["reads"] or got["image"] != right["image"]:
            return "the data read or written is not what the requests asked for"
        return None

    def mistakes(self, p):
        return list(self.WRONG)


# --- the old end_request, predicted ------------------------------------------------------------
def old_way(bs: int, count: int) -> dict:
    """end_request() ended one bio per interrupt: the rest was sent again, one bio shorter."""
    bios = _sections(bs)
    sends = len(bios) * count
    moved = count * sum(sum(bios[i:]) for i in range(len(bios)))
    return {"sends": sends, "interrupts": sends, "bytes": moved}


class Old(Exercise):
    """dd with end_entire off: SENDs, interrupts and bytes moved, by reasoning."""

    label = "d400-ex-old"
    kind = "predict"
    points = 1
    minutes = 10
    what = 'a dict: {"sends": ..., "interrupts": ..., "bytes": ...}'

    def make(self, rng):
        bs_k = 2 * rng.randrange(2, 33)                        # 4 KiB .. 64 KiB, in steps of 2 KiB
        count = rng.randrange(1, 4)
        text = (f"A fresh Guest's disk holds at least {count * bs_k} KiB, and kernel.block.end_entire is\n"
                "False (the driver ends requests with the old end_request()). Then:\n"
                f"    dd if=/dev/lgba of=/dev/null bs={bs_k}k count={count}\n"
                'Answer with a dict: {"sends": SEND_DMAs the driver makes, "interrupts": interrupts the\n'
                'Guest takes, "bytes": bytes the Launcher moves in all}.')
        return dict(text=text, bs=bs_k * KIB, count=count)

    def answer(self, p):
        return old_way(p.bs, p.count)

    def judge(self, answer, p):
        if not isinstance(answer, dict) or set(answer) != {"sends", "interrupts", "bytes"}:
            return 'answer with a dict of exactly three keys: "sends", "interrupts", "bytes"'
        right = self.answer(p)
        if answer == right:
            return None
        if answer["sends"] == p.count != right["sends"] and answer["bytes"] == p.bs * p.count:
            return ("one SEND per dd record is what end_entire_request gives; the old end_request() "
                    "ended less than that")
        if p.bs % abi.PAGE_SIZE and answer["sends"] == (p.bs // abi.PAGE_SIZE) * p.count:
            return "a part page is a bio of its own, and so a SEND of its own"
        if answer["sends"] != right["sends"]:
            return "each SEND ends one bio: count the bios in one record (one per page), then the records"
        if answer["interrupts"] != right["interrupts"]:
            return "every SEND is answered by its own interrupt, which ends one bio and restarts the queue"
        if answer["bytes"] == p.bs * p.count:
            return "the request is sent again after each interrupt, and what is left is moved again"
        if answer["bytes"] == p.bs * right["sends"]:
            return "each resend is one bio shorter: the bios already ended are not sent again"
        return "add up the bytes of every SEND: the whole record first, then each time one bio less"

    def mistakes(self, p):
        right = self.answer(p)
        wrong = [({"sends": p.count, "interrupts": p.count, "bytes": p.bs * p.count}, "end_entire_request"),
                 ({**right, "interrupts": p.count}, "its own interrupt"),
                 ({**right, "bytes": p.bs * right["sends"]}, "one bio shorter")]
        if p.bs % abi.PAGE_SIZE:
            short = (p.bs // abi.PAGE_SIZE) * p.count
            wrong.append(({"sends": short, "interrupts": short, "bytes": right["bytes"]}, "a part page"))
        return [(w, h) for w, h in wrong if w != right]


# --- ticks saved with N in flight, measured ---------------------------------------------------
def read_ticks(sectors: int, in_flight: int, chunk_requests: int) -> int:
    """Host ticks to read a fresh Guest's whole disk of ``sectors`` through guest.open, with
    ``in_flight`` allowed and reads of ``chunk_requests`` x 64 KiB."""
    import lguest

    with tempfile.TemporaryDirectory(prefix="lguest-d400-") as workdir:
        path = os.path.join(workdir, "disk.img")
        with open(path, "wb") as f:
            f.write(bytes(sectors * abi.SECTOR_SIZE))
        host = lguest.Host(trace=False)
        guest = host.launch(mem_mb=16, block=[path])
        guest.kernel.block.max_in_flight = in_flight
        raw = guest.open("/dev/lgba", "rb", buffering=0)
        chunk, tick0 = bytearray(chunk_requests * REQUEST), host.tick
        while raw.readinto(chunk):
            pass
        return host.tick - tick0


class Ticks(Explore):
    """How many Host ticks N requests in flight save on reading a whole disk."""

    label = "d400-ex-ticks"
    points = 2
    minutes = 15
    tolerance = 0.1

    def make(self, rng):
        sectors = rng.randrange(8, 25) * (REQUEST // abi.SECTOR_SIZE) + rng.choice([0, rng.randrange(1, 128)])
        n = rng.choice([2, 3, 4, 6, 8])
        text = (f"Make a disk image of {sectors} sectors (zeros will do). On a fresh Guest, read the whole\n"
                "disk through guest.open('/dev/lgba', 'rb', buffering=0) with readinto() into a buffer\n"
                f"of {n} x 64 KiB, and count the Host's ticks from just before the first read to just\n"
                f"after the last. Do it with max_in_flight = 1 and with max_in_flight = {n}.\n"
                f"How many ticks does {n} in flight save? Answer with a number.")
        return dict(text=text, sectors=sectors, n=n)

    def answer(self, p):
        return read_ticks(p.sectors, 1, p.n) - read_ticks(p.sectors, p.n, p.n)

    def mistakes(self, p):
        requests = -(-p.sectors * abi.SECTOR_SIZE // REQUEST)
        batches = -(-requests // p.n)
        return [(requests + batches, "how many fewer"),
                (2 * requests, "how many fewer"),
                (0, "before you open")]

    def generic_hint(self, answer, p):
        return ("measure host.tick around the reading loop on a fresh Guest each time; the trace "
                "shows what costs a tick (SENDs and interrupts delivered)")

    def judge(self, answer, p):
        if isinstance(answer, bool) or not isinstance(answer, (int, float)):
            return "answer with a number: the ticks saved"
        right = self.answer(p)
        if self.same(answer, right):
            return None
        requests = -(-p.sectors * abi.SECTOR_SIZE // REQUEST)
        batches = -(-requests // p.n)
        if answer in (requests + batches, 2 * requests):
            return ("that is one run's tick count; the question asks how many fewer ticks "
                    f"{p.n} in flight take than one")
        if answer == 0:
            return ("no saving: set max_in_flight before you open /dev/lgba (the file takes its batch "
                    "at open), and read more than one request's worth at a time")
        return self.generic_hint(answer, p)


names, inflight, old, ticks = Names(), InFlight(), Old(), Ticks()
EXERCISES = (names, inflight, old, ticks)
