"""The whole machine under a stateful fuzzer: shared by tests/test_fuzz.py and bench/fuzz.py.

Three Guests share one LAN ("lan0") and one disk image, each with all its drivers (console,
block, net) booted as ``lguest.Host().launch()`` boots them. Guest 2 (and every relaunched
Guest with the second layout) has 3 MiB and puts its block page first, so it maps the LAN
page at a different physical address (the Futex Trick is in play) and a second list_del()
stores its poison into its own RAM. On top of the drivers, the harness plays a misbehaving
Guest through the facade, with random arguments:

* ``bind``: good LAN slot keys, the block key, console key 0, other private keys, misaligned
  and unmapped keys; arrays in the harness's pool, in the LAN or block page, over the
  drivers' own rings, straddling the end of RAM, at the top or above it; counts of 0 to
  65535; irqs 1..31, 0 (unbind), 32 and more; ``bind_burst``: up to 40 in one step, so the
  table of 32 fills;
* ``unbind`` of a live binding, and ``unbind_twice`` (the same key and array again: 2007's
  unbind_dma() finds the freed entry and unlinks it a second time; the poison stores that
  land in the Guest's own memory are allowed, an oops leaves lguest_lock held for ever, and
  from then on only the generic invariants judge what anyone does);
* ``send`` to the same keys, from descriptors with random sections: good, into the LAN page,
  the block page, the console's input buffer, the descriptor page, and bad ones (out of
  range, longer than a page, across a page, ending at the top, straddling RAM's end, 64 KiB);
* ``frame``: a well-formed ARP request or ping to another Guest, so its kernel answers;
* ``scribble``: random bytes over live DMA structs (the harness's own, the net ring, the
  console's input DMA, the block reply DMA, the drivers' send DMAs), over MAC slots of the LAN
  page and over the block page's request fields; ``refill`` writes a whole fresh struct;
* ``type``: Launcher input floods (``guest.console.type()`` of 1 to 420 bytes), then
  ``host.run()``; ``ctrl_c``: one ^C read alone (2007's Launcher exited after three);
* ``block``: requests written into the block page by hand, with wild sectors, types, byte
  counts and sections, then sent to the block key, as D:450 does (D:400, launcher/block.py);
* ``kill`` (``host.kill_guest``), ``relaunch`` (a new Guest takes the dead one's slot),
  ``dead_facade`` (a dead Guest's facade raises GuestDead; typing at its console moves
  nothing), ``irq``, ``halt`` and ``run``.

Every call into the Host is one step. A trace watcher follows the step event by event and
builds, from the reference's rules only, where each step may write; afterwards every Guest's
memory is compared with its snapshot from before the step. Invariants, after every step:

* no Python exception escapes the Host, the Launcher or the Guest kernels (misbehaviour
  kills; GuestDead only for the calls of the ``dead_facade`` rule);
* bytes change only where the step was allowed to write: a copy's receiving sections and the
  two used_len fields, a buffer GETDMA handed the Launcher (its sections and used_len), a
  block page's ``result``, a used_len the Launcher filled in, a new Guest's MAC slot, the
  poison of a second list_del() in the unbinding Guest's own memory, a halted Guest's
  irq_enabled as it wakes; and, while its interrupt handler runs (the harness diffs its RAM
  at the handler's entry and exit), a Guest kernel's own heap. The harness's own pages lie
  below the heap, where only transfers may write. A Guest that took no part changes in no
  byte. Copied bytes are checked too: 2007's copy_data(), each step from the
  start of its source section;
* every used_len written is at most the capacity of the list it was written into, except the
  0xffffffff of a failed block read; GETDMA's irq-in-used_len is not a used_len event;
* a dead Guest never receives: no copy, used_len, GETDMA or interrupt names it after its
  kill, and its memory never changes again;
* at most 32 bindings per Guest, none for a dead one (unless a Host oops holds lguest_lock,
  which release_all_dma() needs);
* the console prints exactly the bytes sent to key 0; an unknown private key is a "Pending
  dma" warning; the disk image matches a reference of what 2007's Launcher wrote
  (handle_block_output(): the offset, GETDMA, the type read after it, writev or readv, cut
  back after "Write past end", ``bytes`` compared after the I/O), and so do the reply, its
  used_len and ``result``, and the Launcher's exit messages;
* a Guest dies only by a kill event, with the first message.

Where the fuzzer found the model was not 2007 (the Launcher read a block request's ``type`` and
``bytes`` too early, and it had no three-^C exit), the model was fixed; tests/test_fuzz.py keeps
each one's smallest reproduction.
"""
from __future__ import annotations

import atexit
import collections
import os
import shutil
import struct
import tempfile

import dpkt
import numpy as np
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

import lguest
from lguest import abi
from lguest.errors import GuestDead
from lguest.guest.kmalloc import heap_start
from lguest.host.dma import LIST_POISON1, LIST_POISON2

PAGE = abi.PAGE_SIZE
DMA = struct.Struct("<I16I16H")            # struct lguest_dma (i386), packed here independently
U32 = struct.Struct("<I")
I32 = struct.Struct("<i")
LAN = "lan0"
DISK_SECTORS = 64
DISK_SIZE = DISK_SECTORS * 512
RUN_STEPS = 5000                           # host.run()'s bound: far more than any step here needs

# The harness's own memory, below the kernel heap (the model's kmalloc starts at half of a
# 1 MiB RAM, where a real kernel's image would end): only transfers ever write here.
DATA = 0x10000                             # three pages that good sections point into
POOL = DATA + 3 * PAGE                     # POOL_N lguest_dma structs for receive arrays
POOL_N = 12
SD = POOL + 100 * POOL_N                   # the usual send descriptor

STEPS = 10                                 # stateful_step_count for both runners
STATS: collections.Counter = collections.Counter()   # what the runs did, for `make fuzz`


_DISKS: dict[int, str] = {}


def disk_path() -> str:
    """This process's disk image (a forked runner gets its own)."""
    pid = os.getpid()
    if pid not in _DISKS:
        folder = tempfile.mkdtemp(prefix="lguest-fuzz-")
        atexit.register(shutil.rmtree, folder, True)
        _DISKS[pid] = os.path.join(folder, "disk.img")
    return _DISKS[pid]


def cleanup() -> None:
    """Remove this process's disk image now (a pool worker never runs atexit)."""
    path = _DISKS.pop(os.getpid(), None)
    if path is not None:
        shutil.rmtree(os.path.dirname(path), True)


def disk_pattern() -> bytes:
    """The image every sequence starts from: each sector says its number."""
    return b"".join(bytes([(s * 37 + i) % 251 + 1 for i in range(16)]) * 32 for s in range(DISK_SECTORS))


INITIAL_DISK = disk_pattern()


def launch_args(n: int) -> dict:
    """launch() arguments. 0: 1 MiB, net, block, console. 1: 3 MiB, block, net, console, so its
    LAN page is elsewhere, and both of a second list_del()'s poison stores (at 1 MiB + 0x104
    and 2 MiB + 0x200) land in its own RAM, where with 1 MiB the second oopses the Host."""
    if n == 0:
        return dict(mem_mb=1, sharenet=[LAN], block=[disk_path()])
    return dict(mem_mb=3, devices=[f"--block={disk_path()}", f"--sharenet={LAN}"])


def signed(addr: int) -> int:
    return addr - (1 << 32) if addr >= 1 << 31 else addr


def c_pointer(value: int) -> str:
    return f"{value:#x}" if value else "(nil)"


# --- a Guest's physical address space, live or copied ------------------------------------
class Space:
    """The regions of one GuestMemory as (start, end, buffer, shared); reads clip to them."""

    def __init__(self, memory, copy: bool = False):
        self.top = memory.top
        self.ram = memory.ram_size
        self.heap = heap_start(self.ram)
        self.regions = [(r.start, r.end, r.buf.copy() if copy else r.buf, r.shared is not None)
                        for r in memory.regions]

    def pieces(self, addr: int, n: int):
        """(buffer, offset, length) for the mapped parts of [addr, addr + n)."""
        out = []
        for start, end, buf, _ in self.regions:
            lo, hi = max(addr, start), min(addr + n, end)
            if lo < hi:
                out.append((buf, lo - start, hi - lo))
        return out

    def read(self, addr: int, n: int) -> bytes | None:
        got = self.pieces(addr, n)
        if sum(k for _, _, k in got) != n:
            return None
        return b"".join(buf[o:o + k].tobytes() for buf, o, k in got)

    def write(self, addr: int, data: bytes) -> None:
        done = 0
        for buf, o, k in self.pieces(addr, len(data)):
            buf[o:o + k] = np.frombuffer(data[done:done + k], np.uint8)
            done += k

    def u32(self, addr: int) -> int:
        return U32.unpack(self.read(addr, 4))[0]

    def host_ok(self, addr: int, n: int) -> bool:
        """lguest_address_ok(): the end below the page-frame limit, with no wrap."""
        return 0 <= addr and addr + n < 1 << 32 and (addr + n) // PAGE < self.top // PAGE

    def launcher_bad(self, addr: int, n: int) -> bool:
        """The Launcher's _check_pointer(): it exits unless both ends lie below top."""
        return addr >= self.top or addr + n >= self.top

    def dma(self, addr: int):
        """(used_len, sections up to the first zero length), or None if unreadable."""
        raw = self.read(addr, 100) if self.host_ok(addr, 100) else None
        if raw is None:
            return None
        f = DMA.unpack(raw)
        secs = []
        for a, n in zip(f[1:17], f[17:33]):
            if not n:
                break
            secs.append((a, n))
        return f[0], secs

    def iov(self, addr: int):
        """The Launcher's dma2iov(): (sections, None), or (None, the address it exits on)."""
        if self.launcher_bad(addr, 100):
            return None, addr
        _, secs = self.dma(addr)
        for a, n in secs:
            if self.launcher_bad(a, n):
                return None, a
        return secs, None


class Seat:
    """One Guest and the addresses the harness plays with."""

    def __init__(self, g, layout: int):
        self.g, self.id, self.layout = g, g.id, layout
        self.space = Space(g.memory)
        self.top, self.ram = g.memory.top, g.memory.ram_size
        k = g.kernel
        info = k.net.devices[0].priv
        self.lan, self.slot, self.ring = info.peer_phys, info.me, info.dma
        self.blk = g.launcher.disks[0].device.mem
        self.desc = g.launcher.devices.desc_addr
        self.cons, self.inbuf = k.console.cons_input, k.console.inbuf
        self.bddma = k.block.disks[0].dma
        self.stacks = [k.console.stack_dma, k.net.stack_dma, k.block.stack_dma]
        self.mac = bytes(info.peer[self.slot * 6:self.slot * 6 + 6])
        self.ctrl_c = 0                                   # ^C read alone, in a row (2007's exit hack)
        self.ctrl_c_second = 0                            # gettimeofday()'s seconds at the first
        self.ip = k.inet.addrs["eth0"].ip
        g.memory.write(DATA, data_pattern(g.id))
        for i in range(POOL_N):                          # two sections each: a copy can re-read
            base = DATA + (i % 3) * PAGE + (i // 3) * 1024
            put_dma(g, POOL + 100 * i, [(base, 60 + 16 * i), (base + 512, 300)])

    def private_buffers(self):
        return [buf for _, _, buf, shared in self.space.regions if not shared]


_PATTERNS: dict[int, bytes] = {}


def data_pattern(gid: int) -> bytes:
    """What a Guest's three data pages hold at launch: recognisable, non-zero, its own."""
    if gid not in _PATTERNS:
        _PATTERNS[gid] = (((np.arange(3 * PAGE) * 7 + gid * 31) % 251) + 1).astype(np.uint8).tobytes()
    return _PATTERNS[gid]


def put_dma(g, addr: int, secs, used: int = 0) -> None:
    """The Guest fills in a struct lguest_dma (its own business, between steps)."""
    if addr < 0 or addr + 100 > g.memory.top:
        return
    secs = list(secs)[:16]
    pad = [0] * (16 - len(secs))
    g.memory.write(addr, DMA.pack(used & 0xFFFFFFFF, *[a & 0xFFFFFFFF for a, _ in secs], *pad,
                                  *[n & 0xFFFF for _, n in secs], *pad))


def changed(before: np.ndarray, after: np.ndarray) -> np.ndarray:
    """Offsets of the bytes that differ (compared eight at a time first)."""
    words = np.flatnonzero(before.view(np.uint64) != after.view(np.uint64))
    if not words.size:
        return words
    idx = (words[:, None] * 8 + np.arange(8)).ravel()
    return idx[before[idx] != after[idx]]


# --- strategies: abstract choices, resolved against one Guest ------------------------------
KEY = st.tuples(st.sampled_from(["slot"] * 12 + ["console"] * 2 + ["block"] * 2 + ["private", "desc",
                                                                                     "misaligned", "unmapped"]),
                st.integers(0, 63))
LEN = st.one_of(st.integers(1, 300), st.sampled_from([1500, 2048, PAGE]))
GOOD = st.tuples(st.sampled_from(["good"] * 8 + ["shared", "block", "inbuf", "desc"]), st.integers(0, 2),
                 st.integers(0, PAGE - 1), LEN)
BAD_KINDS = ["cross", "long", "out", "attop", "straddle", "zero", "huge"]
SECTIONS = st.tuples(st.lists(GOOD, max_size=16), st.sampled_from([None] * 12 + BAD_KINDS), st.integers(0, 15),
                     st.integers(0, PAGE - 1), st.integers(1, 300))
ARRAY = st.sampled_from(["pool"] * 8 + ["lan", "block", "ring", "cons", "bddma", "straddle", "attop", "out"])
COUNT = st.one_of(st.integers(1, 4), st.sampled_from([0, POOL_N, 1000, 0xFFFF]))
IRQ = st.sampled_from(list(range(1, 32)) + [0, 0, 32, 33, 255])
SENDER = st.sampled_from(["sd"] * 12 + ["pool", "lan", "block", "straddle", "attop", "out"])
SECTOR = st.one_of(st.integers(0, DISK_SECTORS - 1), st.integers(0, DISK_SECTORS - 1),
                   st.sampled_from([DISK_SECTORS - 1, DISK_SECTORS, DISK_SECTORS + 1, 0x7FFFFF, 0x800000,
                                    0xFFFFFFFF]))
SCRIBBLE = st.sampled_from(["pool"] * 4 + ["sd", "lan", "ring", "ring", "cons", "bddma", "stack", "blockpage"])
SHORT_TEXT = st.binary(min_size=1, max_size=40)
TEXT = st.one_of(SHORT_TEXT, SHORT_TEXT, SHORT_TEXT, st.binary(min_size=280, max_size=420))   # a flood in 4


def resolve_key(S: Seat, kind: str, n: int) -> int:
    if kind == "slot":                                    # mostly the three Guests' slots
        return S.lan + 4 * (0, 1, 2, 0, 1, 2, 3, 9)[n % 8]
    if kind == "console":
        return 0
    if kind == "block":
        return S.blk
    if kind == "private":
        return DATA + 4 * n
    if kind == "desc":
        return S.desc
    if kind == "misaligned":
        return [S.lan + 4 * (n % 5) + 1 + n % 3, S.blk + 2][n % 2]
    return [S.top, S.top + 4 * n, 0xFFFFFFFC][n % 3]


def resolve_section(S: Seat, kind: str, p: int, off: int, ln: int) -> tuple[int, int]:
    if kind == "good":
        return DATA + p * PAGE + off, min(ln, PAGE - off)
    if kind == "shared":
        return S.lan + off, min(ln, PAGE - off)
    if kind == "block":
        return S.blk + off % 24, min(ln, 24 - off % 24)
    if kind == "inbuf":
        return S.inbuf + off % 256, min(ln, 256 - off % 256)
    if kind == "desc":
        return S.desc + off, min(ln, PAGE - off)
    if kind == "cross":
        k = off % 64 + 1
        return DATA + p * PAGE + PAGE - k, k + ln
    if kind == "long":
        return DATA + p * PAGE, PAGE + 1 + off
    if kind == "out":
        return S.top + off, ln
    if kind == "attop":
        return S.top - ln, ln
    if kind == "straddle":
        k = off % 64 + 1
        return S.ram - k, 2 * k
    if kind == "huge":
        return DATA, 0xFFFF
    return DATA, 0                                        # "zero": the list ends here


def resolve_sections(S: Seat, spec) -> list[tuple[int, int]]:
    good, bad, at, off, ln = spec
    secs = [resolve_section(S, *g) for g in good]
    if bad is not None:
        secs.insert(min(at, len(secs)), resolve_section(S, bad, at % 3, off, ln))
    return secs[:16]


def resolve_array(S: Seat, where: str, i: int) -> int:
    return {"pool": POOL + 100 * (i % POOL_N), "lan": S.lan + 100 * (i % 8), "block": S.blk,
            "ring": S.ring + 100 * (i % 8), "cons": S.cons, "bddma": S.bddma, "straddle": S.ram - 40,
            "attop": S.top - 100, "out": S.top + 100 * i, "sd": SD,
            "stack": S.stacks[i % 3], "blockpage": S.blk}[where]


# --- one step, followed event by event ------------------------------------------------------
class Step:
    """What one call into the Host did, and what the rules allow it to have done."""

    def __init__(self, machine, name: str):
        self.m = machine
        self.name = name
        self.events = []
        self.allowed: dict[int, list[tuple[int, int]]] = {}     # id(buffer) -> [(lo, hi)]
        self.caps: dict[tuple[int, int], int] = {}               # (lg id, addr) -> capacity of that list
        self.ran: set[int] = set()                               # Guests whose kernel took an irq
        self.killed: dict[int, str] = {}
        self.expect_exit: dict[int, str] = {}                    # Guest -> the Launcher's last words
        self.expect_warn: dict[int, list[str]] = collections.defaultdict(list)
        self.console: dict[int, bytearray] = collections.defaultdict(bytearray)
        self.block = None                                         # a block request being served
        self.block_checks = []                                    # (Guest, 2007's outcome)
        self.raised: set[tuple[int, int]] = set()
        self.src = None                                           # (sender, udma, sections) of a transfer
        self.receiver = None                                      # (id, Space copy) before the transfer
        self.dead_lgs = {id(lg) for lg in machine.host.lgs if lg.dead is not None}
        self.booting = None                                       # a relaunch: the id being booted
        self.waiting: dict[int, bytes] = {}                       # Guest -> console input not yet read
        self.block_write = None                                   # the last block_io was a write
        self.stale_unbind = False                                 # the last unbind found a freed entry
        self.console_entries: set[tuple[int, int]] = set()        # buffers GETDMA gave for key 0
        self.console_reads: dict[int, list] = collections.defaultdict(list)   # Guest -> (length, tick)
        self.block_replies: set[tuple[int, int]] = set()          # replies GETDMA gave for a block request
        self.before: dict[int, tuple] = {}                        # id(buffer) -> (its bytes at the start, seat)
        self.checkpoint: dict[int, np.ndarray] = {}               # a RAM's bytes at its kernel's last entry/exit
        self.unexplained: dict[int, list] = collections.defaultdict(list)   # changes the rules must allow
        self.window = None                                        # the Guest whose interrupt handler runs

    def note(self, buf, free=None) -> None:
        """At a kernel's entry or exit: what changed in its RAM since the last look. Outside
        its handler only the rules may have written; inside it, the kernel itself, in its heap."""
        key = id(buf)
        base = self.checkpoint.get(key)
        if base is None:
            base = self.before[key][0]
        diff = changed(base, buf)
        if free is not None and diff.size:
            diff = diff[(diff < free[0]) | (diff >= free[1])]
        if diff.size:
            self.unexplained[key].append(diff)
        self.checkpoint[key] = buf.copy()

    # -- helpers ----------------------------------------------------------------------------
    def space(self, gid: int) -> Space:
        lg = self.m.host.lgs[gid]
        return self.m.space_of(lg)

    def allow(self, space: Space, addr: int, n: int) -> None:
        for buf, o, k in space.pieces(addr, n):
            self.allowed.setdefault(id(buf), []).append((o, o + k))

    def alive_here(self, gid: int, what) -> None:
        lg = self.m.host.lgs[gid]
        assert id(lg) not in self.dead_lgs, f"{what}: Guest {gid} was dead before this step ({lg.dead})"
        assert gid not in self.killed, f"{what}: Guest {gid} was killed earlier in this step ({self.killed[gid]})"

    # -- the watcher -------------------------------------------------------------------------
    def on_event(self, e) -> None:
        self.events.append(e)
        handler = getattr(self, "on_" + e.kind, None)
        if handler is not None and e.guest is not None and e.guest != self.booting:
            handler(e)

    def on_hypercall(self, e):
        self.alive_here(e.guest, e)

    def on_kill(self, e):
        assert e.guest not in self.killed, f"Guest {e.guest} killed twice: {self.killed[e.guest]!r}, then {e.msg!r}"
        self.killed[e.guest] = e.msg
        STATS["kill: " + kill_kind(e.msg)] += 1

    def on_irq_deliver(self, e):
        self.alive_here(e.guest, e)
        self.ran.add(e.guest)
        seat = self.m.seat_by_id(e.guest)
        self.allow(self.space(e.guest), seat.g.kernel.lguest_data, 4)   # a halted Guest wakes: irq_enabled

    def on_irq_raise(self, e):
        self.raised.add((e.guest, e.irq))

    def on_send_dma(self, e):
        S = self.space(e.guest)
        to = e.fields.get("to")
        got = S.dma(e.dma)
        secs = got[1] if got else []
        if to is None:
            return
        self.caps[(e.guest, e.dma)] = sum(n for _, n in secs)
        if to == "launcher":
            self.launcher_output(e, S)
            return
        self.alive_here(to, e)
        self.src = (e.guest, e.dma, secs)
        self.receiver = (to, Space(self.m.host.lgs[to].memory, copy=True))

    def launcher_output(self, e, S: Space):
        """handle_output(): dma2iov() first, then the device watching the key (reference §4.2)."""
        gid, key = e.guest, e.key
        iov, bad = S.iov(e.dma)
        if iov is None:
            self.expect_exit[gid] = f"Launcher exited: Invalid address {signed(bad)}"
            return
        seat = self.m.seat_by_id(gid)
        if key == abi.LGUEST_CONSOLE_DMA_KEY:
            for a, n in iov:
                self.console[gid] += S.read(a, n)
        elif seat is not None and key == seat.blk:
            off = S.u32(seat.blk + 4) * 512
            self.block = dict(gid=gid, udma=e.dma, iov=iov, off=off)
            STATS["block request"] += 1
            if off >= DISK_SIZE:
                self.expect_exit[gid] = f"Launcher exited: Bad offset {off} vs {DISK_SIZE}"
                self.block = None
                STATS["block: bad offset"] += 1
        else:
            self.expect_warn[gid].append(f"lguest: Pending dma {c_pointer(e.dma)}, key {c_pointer(key)}")

    def on_copy(self, e):
        to, space = self.receiver
        assert to == e.to and self.src and self.src[0] == e.guest, f"a copy nobody sent: {e}"
        self.alive_here(e.to, e)
        S, D = self.space(e.guest), self.space(e.to)
        _, dst = space.dma(e.entry)
        src = self.src[2]
        total = min(sum(n for _, n in src), sum(n for _, n in dst))
        assert e.bytes == total, f"copied {e.bytes} bytes; the lists {src} -> {dst} hold {total}"
        self.caps[(e.to, e.entry)] = sum(n for _, n in dst)
        self.allow(D, e.entry, 4)
        for a, n in dst:
            self.allow(D, a, n)
        STATS["copy"] += 1
        # the bytes: each step of the lockstep walk reads from the start of its source section
        shared = {id(b) for _, _, b, sh in S.regions if sh}
        touched = {id(b) for a, n in src for b, _, _ in S.pieces(a, n)}
        if touched & shared:
            return                                       # source and destination may overlap: memcpy's business
        si = di = so = do = 0
        writes = []
        while si < len(src) and di < len(dst):
            n = min(src[si][1] - so, dst[di][1] - do)
            writes.append((dst[di][0] + do, S.read(src[si][0], n)))
            so, do = so + n, do + n
            if so == src[si][1]:
                si, so = si + 1, 0
            if do == dst[di][1]:
                di, do = di + 1, 0
        for a, data in writes:
            space.write(a, data)
        for a, data in writes:
            assert D.read(a, len(data)) == space.read(a, len(data)), \
                f"copy {e}: the bytes at {a:#x} are not what 2007's copy_data() puts there"

    def on_used_len(self, e):
        if e.fields.get("by") == "guest":
            return                                       # the Guest kernel's own store
        gid = e.guest
        lg = self.m.host.lgs[gid]
        assert id(lg) not in self.dead_lgs, f"used_len written into Guest {gid}, dead before the step: {e}"
        if e.fields.get("by") == "launcher":
            assert gid not in self.killed, f"the Launcher of dead Guest {gid} wrote a used_len: {e}"
        cap = self.caps.get((gid, e.addr))
        if cap is None:
            # io.c's empty-list path writes 0 into an entry it found free (used_len already 0)
            assert e.value == 0, f"used_len {e.value} written where no list was read: {e}"
            return
        if e.fields.get("by") == "launcher" and (gid, e.addr) in self.console_entries:
            self.console_reads[gid].append((e.value, e.tick))
        failed_read = e.value == 0xFFFFFFFF and (gid, e.addr) in self.block_replies   # readv() gave -1
        assert e.value <= cap or failed_read, f"used_len {e.value} > capacity {cap}: {e}"
        self.allow(self.space(gid), e.addr, 4)

    def on_getdma(self, e):
        gid, entry = e.guest, e.fields.get("entry")
        S = self.space(gid)
        # io.c handed out an entry lgread() could not read (the Guest killed, the entry read as
        # zeros, so "free"); then the Launcher's dma2iov() exits on it, after the first message
        unread = entry is not None and self.killed.get(gid) == f"bad read address {entry:#x} len 100"
        if not unread:
            self.alive_here(gid, e)
        blk = self.block if self.block and self.block["gid"] == gid else None
        seat = self.m.seat_by_id(gid)
        if blk is not None and (seat is None or e.key != seat.blk):
            blk = None
        if blk is not None:
            self.block = None
        if entry is None:
            if blk is not None:
                self.expect_exit[gid] = ("Launcher exited: Block request didn't give us a dma buffer: "
                                         "No such file or directory")
            return
        if e.key == abi.LGUEST_CONSOLE_DMA_KEY:
            self.console_entries.add((gid, entry))
        if blk is not None:
            self.block_replies.add((gid, entry))
        if S.host_ok(entry, 4):
            self.allow(S, entry, 4)                      # the irq, handed over in used_len
        if unread:
            assert S.launcher_bad(entry, 100), f"an unreadable entry the Launcher accepts: {e}"
            return
        iov, bad = S.iov(entry)
        if iov is not None:
            self.caps[(gid, entry)] = sum(n for _, n in iov)
            for a, n in iov:
                self.allow(S, a, n)
        if blk is not None:
            self.simulate_block(gid, blk, entry, e.irq)

    def on_unbind(self, e):
        self.stale_unbind = bool(e.fields.get("stale"))
        STATS["unbind of a freed entry"] += self.stale_unbind

    def on_poison_write(self, e):
        """2007's second list_del() of an unbound entry (its unbind_dma() matches freed entries
        too, first in table order): the poison lands in the caller's own memory (the
        Launcher's address space), at the two addresses list_del() stores to."""
        assert self.stale_unbind, f"a poison store without an unbind of a freed entry: {e}"
        assert e.addr in (LIST_POISON1 + 4, LIST_POISON2), f"a poison store at {e.addr:#x}"
        self.allow(self.space(e.guest), e.addr, 4)
        STATS["poison stores"] += 1

    def on_oops(self, e):
        STATS["Host oops"] += 1

    def on_block_io(self, e):
        self.block_write = e.write

    def on_block_result(self, e):
        seat = self.m.seat_by_id(e.guest)
        self.allow(self.space(e.guest), seat.blk + 12, 4)
        STATS[f"block: {'write' if self.block_write else 'read'} result {e.result}"] += 1

    # -- 2007's handle_block_output(), from the GETDMA on ------------------------------------
    def simulate_block(self, gid: int, req: dict, entry: int, irq: int) -> None:
        """What the Launcher does once get_dma_buffer() has found ``entry``, in 2007's order:
        the Host writes the irq into used_len; dma2iov() of the reply; ``p->type`` is read
        now; writev (then the cut back) or readv; ``*lenp``; ``p->bytes`` is read now for the
        result; last, handle_output() stores the handler's 0 in the sent DMA's used_len."""
        seat = self.m.seat_by_id(gid)
        self.block_checks.append((gid, self.block_outcome(seat, req, entry, irq)))

    def block_outcome(self, seat: Seat, req: dict, entry: int, irq: int) -> dict:
        scratch = Space(self.m.host.lgs[seat.id].memory, copy=True)
        disk = bytearray(self.m.disk_ref)
        out = dict(scratch=scratch, disk=disk, exit=None,
                   ranges=[(entry, 4), (seat.blk + 12, 4)], irq=None, write=None)
        if scratch.host_ok(entry, 4):
            scratch.write(entry, U32.pack(irq))
        reply, bad = scratch.iov(entry)
        if reply is None:
            out["exit"] = f"Launcher exited: Invalid address {signed(bad)}"
        else:
            out["irq"] = scratch.u32(entry)
            write = I32.unpack(scratch.read(seat.blk, 4))[0] != 0
            out["write"] = write
            off = req["off"]
            if write:
                data = b"".join(scratch.read(a, n) for a, n in req["iov"])
                length = len(data)
                if len(disk) < off + length:
                    disk.extend(bytes(off + length - len(disk)))
                disk[off:off + length] = data
                if off + length > DISK_SIZE:
                    del disk[DISK_SIZE:]
                    out["exit"] = f"Launcher exited: Write past end {off}+{length}"
                lenp = 0
            else:
                data = bytes(disk[off:off + sum(n for _, n in reply)])
                done = 0
                for a, n in reply:
                    k = min(n, len(data) - done)
                    if k <= 0:
                        break
                    scratch.write(a, data[done:done + k])
                    out["ranges"].append((a, k))
                    done += k
                lenp = length = len(data)
            if out["exit"] is None:
                scratch.write(entry, U32.pack(lenp))
                nbytes = scratch.u32(seat.blk + 8)
                scratch.write(seat.blk + 12, I32.pack(1 + (nbytes != length)))
                scratch.write(req["udma"], U32.pack(0))      # handle_output(): *lenp = the handler's 0
                out["ranges"].append((req["udma"], 4))
        return out


def kill_kind(msg: str) -> str:
    """A kill message without its numbers, for the counts `make fuzz` prints."""
    words = []
    for w in msg.replace(":", " :").split():
        if any(c.isdigit() for c in w):
            break
        words.append(w)
    return " ".join(words).replace(" :", ":").strip(": ") or msg


# --- the machine ---------------------------------------------------------------------------
class WholeMachine(RuleBasedStateMachine):
    def __init__(self):
        super().__init__()
        STATS["sequences"] += 1
        with open(disk_path(), "wb") as f:
            f.write(INITIAL_DISK)
        self.disk_ref = bytearray(INITIAL_DISK)
        self.host = lguest.Host()
        self.seats: list[Seat] = []
        self.graves: list[tuple[Seat, list, list]] = []     # dead Guests: (seat, buffers, their bytes at death)
        self._spaces: dict[int, tuple[object, Space]] = {}
        self.step_log: Step | None = None
        self.host.watch(self._watch)
        for layout in (0, 0, 1):
            self.seat(self.host.launch(**launch_args(layout)), layout)

    def seat(self, g, layout: int) -> Seat:
        """Take a Guest into the machine, and watch its kernel's interrupt entry: while a
        handler runs, the kernel may write its own heap (and nothing else of itself)."""
        seat = Seat(g, layout)
        self.seats.append(seat)
        lg = self.host.lgs[g.id]
        inner, ram, heap = lg.interrupt_entry, seat.space.regions[0][2], (seat.space.heap, seat.ram)

        def entry(irq):
            log = self.step_log
            if log is None or log.window is not None or id(ram) not in log.before:
                return inner(irq)
            log.note(ram)
            log.window = g.id
            try:
                return inner(irq)
            finally:
                log.window = None
                log.note(ram, free=heap)

        lg.interrupt_entry = entry                   # the test's own instrument on the Host's record
        return seat

    def teardown(self):
        for lg in self.host.lgs:                          # close every disk fd, free every LAN slot
            if lg.dead is None:
                self.host.kill_guest(lg, "fuzz: end of the sequence")

    # -- helpers -----------------------------------------------------------------------------
    def _watch(self, e):
        if self.step_log is not None:
            self.step_log.on_event(e)

    def space_of(self, lg) -> Space:
        """A live Space per Lg (its memory's regions never change after launch)."""
        got = self._spaces.get(id(lg))
        if got is None or got[0] is not lg:
            got = (lg, Space(lg.memory))
            self._spaces[id(lg)] = got
        return got[1]

    def seat_by_id(self, gid: int) -> Seat | None:
        for seat in self.seats:
            if seat.id == gid and seat.g.dead is None:
                return seat
        return None

    def wedged(self) -> bool:
        """After a Host oops lguest_lock is held for ever: whoever asks for it is blocked, and
        the rules' own expectations no longer apply (the generic invariants still do)."""
        return self.host.lock_holder is not None

    def alive(self) -> list[Seat]:
        return [s for s in self.seats if s.g.dead is None]

    def pick(self, i: int) -> Seat:
        alive = self.alive()
        return alive[i % len(alive)]

    def buffers(self):
        """Every buffer of every live Guest, once each (the LAN page is one buffer)."""
        seen = {}
        for s in self.alive():
            for _, _, buf, _ in s.space.regions:
                seen.setdefault(id(buf), (buf, s))
        return seen

    def step(self, name: str, action):
        """One call into the Host, checked against the rules."""
        STATS["steps"] += 1
        STATS["rule: " + name] += 1
        before = {k: (buf.copy(), s) for k, (buf, s) in self.buffers().items()}
        consoles = {s.id: len(s.g.console.raw) for s in self.alive()}
        logs = {s.id: len(s.g.launcher.log) for s in self.alive()}
        alive_before = self.alive()
        log = self.step_log = Step(self, name)
        log.before = before
        log.waiting = {s.id: s.g.console.waiting for s in alive_before}
        try:
            result = action(log)
        finally:
            self.step_log = None
        self.count_ctrl_c(log, alive_before)
        self.check(log, before, consoles, logs, alive_before)
        return result

    def count_ctrl_c(self, log: Step, alive_before) -> None:
        """2007's exit hack: the third console read in a row that is one ^C byte alone, with
        gettimeofday()'s seconds at most one past the first's, and the Launcher exits (2)."""
        for s in alive_before:
            ticks = [tick for _, tick in log.console_reads.get(s.id, ())]
            ticks += [e.tick for e in log.events if e.kind == "launcher_warn" and e.guest == s.id
                      and e.msg.startswith("lguest: console: no dma buffer!")]      # a discard read
            if not ticks:
                continue
            typed = log.waiting[s.id]
            read = typed[:len(typed) - len(s.g.console.waiting)]
            if len(ticks) > 1 or read != b"\x03":
                s.ctrl_c = 0
                continue
            tick, = ticks
            s.ctrl_c += 1
            if s.ctrl_c == 1:
                s.ctrl_c_second = tick // 1000
            elif s.ctrl_c == 3:
                s.ctrl_c = 0
                if tick // 1000 <= s.ctrl_c_second + 1:
                    log.expect_exit[s.id] = "Launcher exited: three ^C (status 2)"
                    STATS["three ^C exits"] += 1

    def check(self, log: Step, before, consoles, logs, alive_before) -> None:
        for key, (old, s) in before.items():
            buf = next(b for _, _, b, _ in s.space.regions if id(b) == key)
            diffs = log.unexplained.get(key, []) + [changed(log.checkpoint.get(key, old), buf)]
            diff = np.unique(np.concatenate(diffs)) if len(diffs) > 1 else diffs[0]
            if not diff.size:
                continue
            keep = np.ones(diff.size, bool)
            for lo, hi in log.allowed.get(key, ()):
                keep &= (diff < lo) | (diff >= hi)
            diff = diff[keep]
            if diff.size:
                start = next(st_ for st_, _, b, _ in s.space.regions if id(b) == key)
                raise AssertionError(f"step {log.name}: {diff.size} bytes changed where no rule allows, first at "
                                     f"Guest {s.id} address {start + int(diff[0]):#x}; events:\n"
                                     + "\n".join(map(repr, log.events[-40:])))
        # a dead Guest's memory never changes again
        for seat, bufs, saved in self.graves:
            for buf, old in zip(bufs, saved):
                assert not changed(old, buf).size, f"step {log.name}: dead Guest {seat.id}'s memory changed"
        # block requests: the image, the reply, its used_len, result, the irq, or the exit, as 2007's
        with open(disk_path(), "rb") as f:
            disk = f.read()
        for gid, outcome in log.block_checks:
            miss = self.block_miss(log, gid, outcome, disk)
            assert miss is None, f"step {log.name}: {miss}"
            self.disk_ref = bytearray(outcome["disk"])
            if outcome["exit"] is not None:
                log.expect_exit[gid] = outcome["exit"]
                STATS["block: " + kill_kind(outcome["exit"])] += 1
        # deaths: each by one kill event, the first message kept; the Launcher's exits as 2007's
        for s in alive_before:
            g = s.g
            if g.dead is None:
                assert s.id not in log.killed, f"kill event for Guest {s.id}, which still runs"
                assert s.id not in log.expect_exit, \
                    f"Guest {s.id} lives, but 2007's Launcher would have exited: {log.expect_exit[s.id]!r}"
            else:
                assert log.killed.get(s.id) == g.dead, f"Guest {s.id} died ({g.dead!r}) without a kill event"
                if s.id in log.expect_exit:
                    assert g.dead == log.expect_exit[s.id], \
                        f"Guest {s.id}: the Launcher said {g.dead!r}; 2007's said {log.expect_exit[s.id]!r}"
                self.graves.append((s, s.private_buffers(), [b.copy() for b in s.private_buffers()]))
                if not self.wedged():                   # release_all_dma() needs lguest_lock
                    assert not self.host.lgs[s.id].bindings(), f"dead Guest {s.id} still holds bindings"
        # what the Launchers printed and wrote
        for s in alive_before:
            out = bytes(s.g.console.raw[consoles[s.id]:])
            if s.g.dead is None or s.id not in log.expect_exit:
                sent = bytes(log.console.get(s.id, b""))
                assert out == sent, f"Guest {s.id}'s console printed {out[:60]!r}, its key-0 sends held {sent[:60]!r}"
            new_lines = s.g.launcher.log[logs[s.id]:]
            for line in log.expect_warn.get(s.id, ()):
                assert line in new_lines, f"Guest {s.id}'s Launcher did not warn {line!r}: {new_lines}"
        assert len(disk) == DISK_SIZE, f"the disk image is {len(disk)} bytes, not {DISK_SIZE}"
        if disk != self.disk_ref:
            at = next(i for i in range(DISK_SIZE) if disk[i] != self.disk_ref[i])
            raise AssertionError(f"step {log.name}: the disk differs from 2007's at byte {at} (sector {at // 512})")

    def block_miss(self, log: Step, gid: int, v: dict, disk: bytes) -> str | None:
        """None if the step did what ``v`` says, else how it differs."""
        g = self.host.lgs[gid]
        if disk != bytes(v["disk"]):
            at = next((i for i in range(min(len(disk), len(v["disk"]))) if disk[i] != v["disk"][i]), None)
            return (f"the disk image differs from 2007's Launcher at byte {at} "
                    f"({len(disk)} vs {len(v['disk'])} bytes)")
        if v["exit"] is not None:
            return None if g.dead == v["exit"] else f"Guest {gid} is {g.dead!r}; 2007's Launcher: {v['exit']!r}"
        if g.dead is not None:
            return f"Guest {gid} died ({g.dead!r}) serving a block request 2007's Launcher completed"
        if gid in log.ran:
            return None
        live = self.space_of(g)
        for a, n in v["ranges"]:
            if live.read(a, n) != v["scratch"].read(a, n):
                return (f"block {'write' if v['write'] else 'read'} by Guest {gid}: the {n} bytes at {a:#x} are "
                        f"{live.read(a, n)[:16]!r}, 2007's Launcher wrote {v['scratch'].read(a, n)[:16]!r}")
        if (gid, v["irq"]) not in log.raised:
            return f"block request of Guest {gid}: irq {v['irq']} was not raised"
        return None

    # -- rules -----------------------------------------------------------------------------------
    @precondition(lambda self: self.alive())
    @rule(gi=st.integers(0, 2), key=KEY, where=ARRAY, i=st.integers(0, 15), count=COUNT, irq=IRQ)
    def bind(self, gi, key, where, i, count, irq):
        S = self.pick(gi)
        k, dmas = resolve_key(S, *key), resolve_array(S, where, i)
        lg = self.host.lgs[S.id]
        was = len(lg.bindings())
        ret = self.step("bind", lambda log: S.g.hypercall(abi.LHCALL_BIND_DMA, k, dmas, (count << 8) | irq))
        if self.wedged():
            return
        if irq >= abi.LGUEST_IRQS:                       # §3.2.1: refused before the key is looked at
            assert ret == 0 and S.g.dead is None and len(lg.bindings()) == was
        elif k % 4 or not 0 <= k < S.top:                # §3.1: a bad key kills
            assert ret == 0 and S.g.dead == f"bad dma key {k:#x}"
        elif irq:                                        # §3.2.4: a free entry of 32, or 0
            assert S.g.dead is None and ret == (was < abi.LGUEST_MAX_DMA)
            assert len(lg.bindings()) == was + ret
        else:                                            # an unbind: judged by the invariants only
            assert S.g.dead is None

    @precondition(lambda self: self.alive())
    @rule(gi=st.integers(0, 2), n=st.integers(1, 40), key=KEY, where=ARRAY, irq=st.integers(1, 31))
    def bind_burst(self, gi, n, key, where, irq):
        """Many binds in one step, so the table of 32 fills (then BIND_DMA returns 0)."""
        S = self.pick(gi)
        lg = self.host.lgs[S.id]
        was = len(lg.bindings())
        k = resolve_key(S, *key)

        def burst(log):
            rets = []
            for j in range(n):
                if S.g.dead is not None:                 # a bad key killed it: the burst ends there
                    break
                rets.append(S.g.hypercall(abi.LHCALL_BIND_DMA, k + 4 * (j % 3) * (key[0] == "slot"),
                                          resolve_array(S, where, j), (1 << 8) | irq))
            return rets

        rets = self.step("bind_burst", burst)
        if self.wedged() or S.g.dead is not None:
            return
        room = abi.LGUEST_MAX_DMA - was
        assert rets == [1] * min(n, room) + [0] * max(0, n - room), f"binds returned {rets} with {was} bound"
        STATS["bind: table full"] += n > room

    @precondition(lambda self: any(self.host.lgs[s.id].bindings() for s in self.alive()))
    @rule(i=st.integers(0, 200), twice=st.sampled_from([False] * 9 + [True]))
    def unbind(self, i, twice):
        """Unbind a live binding (the drivers' own included); ``twice`` repeats the same call."""
        bound = [(s, b) for s in self.alive() for b in self.host.lgs[s.id].bindings()]
        S, b = bound[i % len(bound)]
        lg = self.host.lgs[S.id]
        was = len(lg.bindings())
        ret, stale = self.step("unbind", lambda log: (S.g.hypercall(abi.LHCALL_BIND_DMA, b.ukey, b.dmas, 0),
                                                      log.stale_unbind))
        if not stale:                                   # else a freed twin came first in the table
            assert self.wedged() or (ret == 1 and len(lg.bindings()) == was - 1 and S.g.dead is None)
        if twice and S.g.dead is None:                   # the second: judged by the invariants only
            self.step("unbind_twice", lambda log: S.g.hypercall(abi.LHCALL_BIND_DMA, b.ukey, b.dmas, 0))

    @precondition(lambda self: self.alive())
    @rule(gi=st.integers(0, 2), key=KEY, secs=SECTIONS, where=SENDER, i=st.integers(0, 15), zero=st.booleans())
    def send(self, gi, key, secs, where, i, zero):
        S = self.pick(gi)
        k = resolve_key(S, *key)
        udma = resolve_array(S, where, i)
        put_dma(S.g, udma, resolve_sections(S, secs), 0 if zero else 0x5A5A5A5A)
        self.step("send", lambda log: S.g.hypercall(abi.LHCALL_SEND_DMA, k, udma))
        if (k % 4 or not 0 <= k < S.top) and not self.wedged():
            assert S.g.dead == "bad sending DMA key"

    @precondition(lambda self: len(self.alive()) >= 2)
    @rule(gi=st.integers(0, 2), gj=st.integers(0, 2), ping=st.booleans(), broadcast=st.booleans())
    def frame(self, gi, gj, ping, broadcast):
        """A well-formed frame from one Guest to another's slot: its kernel will answer it."""
        S = self.pick(gi)
        others = [s for s in self.alive() if s is not S]
        T = others[gj % len(others)]
        if ping:
            icmp = dpkt.icmp.ICMP(type=8, data=dpkt.icmp.ICMP.Echo(id=0x4242, seq=1, data=b"fuzz" * 8))
            ip = dpkt.ip.IP(src=S.ip.packed, dst=T.ip.packed, p=1, ttl=64, data=icmp)
            ip.len = len(bytes(ip))
            frame = dpkt.ethernet.Ethernet(dst=T.mac, src=S.mac, type=0x0800, data=ip)
        else:
            arp = dpkt.arp.ARP(op=1, sha=S.mac, spa=S.ip.packed, tha=bytes(6), tpa=T.ip.packed)
            frame = dpkt.ethernet.Ethernet(dst=b"\xff" * 6 if broadcast else T.mac, src=S.mac, type=0x0806, data=arp)
        raw = bytes(frame)
        S.g.memory.write(DATA + 2 * PAGE, raw)
        put_dma(S.g, SD, [(DATA + 2 * PAGE, len(raw))])
        key = S.lan + 4 * T.slot
        self.step("frame", lambda log: S.g.hypercall(abi.LHCALL_SEND_DMA, key, SD))

    @precondition(lambda self: self.alive())
    @rule(gi=st.integers(0, 2), what=SCRIBBLE, i=st.integers(0, 15), off=st.integers(0, 99),
          junk=st.binary(min_size=1, max_size=8))
    def scribble(self, gi, what, i, off, junk):
        """The Guest scribbles over one of its live DMA structs (or the LAN or block page)."""
        S = self.pick(gi)
        addr = resolve_array(S, what, i) + (off % 30 if what in ("lan", "blockpage") else off)
        junk = junk[:max(0, S.top - addr)]
        if junk:
            S.g.memory.write(addr, junk)

    @precondition(lambda self: self.alive())
    @rule(gi=st.integers(0, 2), what=st.sampled_from(["pool"] * 4 + ["ring", "bddma", "cons", "blockpage"]),
          i=st.integers(0, 15),
          secs=SECTIONS, used=st.sampled_from([0, 0, 0, 7]))
    def refill(self, gi, what, i, secs, used):
        """The Guest (re)fills a receive entry with fresh sections, or hands it back."""
        S = self.pick(gi)
        put_dma(S.g, resolve_array(S, what, i), resolve_sections(S, secs), used)

    @precondition(lambda self: self.alive())
    @rule(gi=st.integers(0, 2), text=TEXT, cut=st.booleans())
    def type(self, gi, text, cut):
        """A Launcher input flood, then the Host runs. No lowercase letters: the shell never
        finds a command in it, so no dd or ping of its own starts."""
        S = self.pick(gi)
        text = bytes(b for b in text if not 0x61 <= b <= 0x7A) or b"\r"
        if cut:                                         # one read() per chunk, as keys arrive
            for k in range(0, len(text), 37):
                S.g.console.type(text[k:k + 37])
        else:
            S.g.console.type(text)
        STATS["typed bytes"] += len(text)
        self.step("type", lambda log: self.host.run(max_steps=RUN_STEPS))

    @precondition(lambda self: self.alive())
    @rule(gi=st.integers(0, 2))
    def ctrl_c(self, gi):
        """One ^C, read alone, as 2007's three-^C exit wanted them."""
        S = self.pick(gi)
        S.g.console.type(b"\x03")
        self.step("ctrl_c", lambda log: self.host.run(max_steps=RUN_STEPS))

    @precondition(lambda self: self.alive())
    @rule(gi=st.integers(0, 2), kind=st.sampled_from(["read", "read", "write", "write", "junk"]), sector=SECTOR,
          nbytes=st.one_of(st.none(), st.none(), st.integers(0, 70000)), secs=SECTIONS,
          reply=st.sampled_from(["driver", "driver", "keep"]), rsecs=SECTIONS)
    def block(self, gi, kind, sector, nbytes, secs, reply, rsecs):
        """A block request by hand (D:450): fill the block page, then send to its key."""
        S = self.pick(gi)
        typ = {"read": 0, "write": 1, "junk": -7}[kind]
        data = resolve_sections(S, secs) if typ else []
        if not typ and reply == "driver":                # do_read(): the request's pages go in the bound DMA
            put_dma(S.g, S.bddma, resolve_sections(S, rsecs))
        total = sum(n for _, n in (data if typ else resolve_sections(S, rsecs)))
        S.g.memory.write(S.blk, struct.pack("<iIIi", typ, sector, total if nbytes is None else nbytes, 0))
        put_dma(S.g, SD, data)
        self.step("block", lambda log: S.g.hypercall(abi.LHCALL_SEND_DMA, S.blk, SD))

    @precondition(lambda self: self.alive())
    @rule(gi=st.integers(0, 2))
    def kill(self, gi):
        S = self.pick(gi)
        self.step("kill", lambda log: self.host.kill_guest(self.host.lgs[S.id], "fuzz: killed"))
        assert S.g.dead == "fuzz: killed"

    @precondition(lambda self: not self.wedged() and any(lg.dead is not None for lg in self.host.lgs))
    @rule(layout=st.integers(0, 1))
    def relaunch(self, layout):
        """A new Guest on the same LAN: it takes the lowest dead id, and so the dead one's slot."""
        want = min(i for i, lg in enumerate(self.host.lgs) if lg.dead is not None)
        page = self.host.shared_pages[LAN]
        free = min(s for s in range(682) if s not in page.locked_slots)

        def launch(log):
            log.booting = want
            lan_buf = page.buf
            log.allowed.setdefault(id(lan_buf), []).append((free * 6, free * 6 + 6))
            return self.host.launch(**launch_args(layout))

        g = self.step("relaunch", launch)
        assert g.id == want and g.dead is None
        seat = self.seat(g, layout)
        assert seat.slot == free == want, f"relaunched Guest {g.id} took LAN slot {seat.slot}, not {free}"
        STATS["relaunches"] += 1

    @precondition(lambda self: any(s.g.dead is not None for s in self.seats))
    @rule(i=st.integers(0, 15), how=st.sampled_from(["hypercall", "shell", "open", "type"]))
    def dead_facade(self, i, how):
        dead = [s for s in self.seats if s.g.dead is not None]
        S = dead[i % len(dead)]
        if how == "type":
            S.g.console.type(b"#!\r")
            self.step("dead_type", lambda log: self.host.run(max_steps=RUN_STEPS))
            return
        call = {"hypercall": lambda: S.g.hypercall(abi.LHCALL_HALT), "shell": lambda: S.g.shell("help"),
                "open": lambda: S.g.open("/dev/lgba")}[how]
        try:
            call()
        except GuestDead:
            STATS["GuestDead"] += 1
        else:
            raise AssertionError(f"{how} on dead Guest {S.id}'s facade did not raise GuestDead")

    @precondition(lambda self: self.alive())
    @rule(gi=st.integers(0, 2), irq=st.integers(0, 31))
    def irq(self, gi, irq):
        S = self.pick(gi)
        self.step("irq", lambda log: S.g.launcher.trigger_irq(irq))

    @precondition(lambda self: self.alive())
    @rule(gi=st.integers(0, 2))
    def halt(self, gi):
        S = self.pick(gi)
        self.step("halt", lambda log: S.g.hypercall(abi.LHCALL_HALT))

    @rule()
    def run(self):
        self.step("run", lambda log: self.host.run(max_steps=RUN_STEPS))

    # Weights: hypothesis picks among the enabled rules evenly, so the common ones appear twice.
    send_2 = send_3 = send
    bind_2 = bind
    ctrl_c_2 = ctrl_c
    block_2 = block
    run_2 = run

    @invariant()
    def at_most_32_bindings_and_none_for_the_dead(self):
        for lg in self.host.lgs:
            n = len(lg.bindings())
            assert n <= abi.LGUEST_MAX_DMA, f"Guest {lg.id} holds {n} bindings"
            assert lg.dead is None or n == 0 or self.wedged(), f"dead Guest {lg.id} holds {n} bindings"


def fuzz_settings(max_examples: int, derandomize: bool) -> settings:
    return settings(max_examples=max_examples, stateful_step_count=STEPS, derandomize=derandomize, database=None,
                    deadline=None, print_blob=True,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                           HealthCheck.filter_too_much])
