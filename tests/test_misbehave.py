"""The adversarial corpus: every way the 2007 Host kills a Guest on the I/O path, and every soft
failure (reference §3.1-§3.7, H:100/H:120), each played against a small world of three Guests.

The world: Guests B, V and C on one LAN (lan0), launched in that order (ids and LAN slots 0, 1, 2),
driverless, each with a two-entry receive ring bound at its own slot key. B and V each have a disk
image of their own; B has a reply buffer bound at its block page. V is the one that misbehaves.

Every kill test checks, around the fatal step:

* the victim dies with 2007's exact message, and nobody else dies; the trace holds one kill;
* the first message wins: a second bad thing after it (a hypercall, a bad GETDMA, another kill,
  the Launcher closing, a send to the victim's old slot) changes neither message nor trace;
* not one byte of any Guest's memory (shared LAN page included) and not one byte of either disk
  image changed, except where the rule itself writes (listed per test as ``allow``);
* nobody else got an interrupt the rule does not raise;
* afterwards the Host still serves the others: B and C send to each other, and B reads its disk.

The soft failures check the same, with nobody killed at all.
"""
from __future__ import annotations

import errno
import hashlib
import struct

import pytest

import lguest
from lguest import abi
from lguest.errors import GuestDead

from host_helpers import (PAGE, assert_unchanged, bind, events, lg, new_dma, pattern, put_dma, ring, send,
                          set_used_len, slot_key, snapshot, unbind, used_len)

SECTOR = abi.SECTOR_SIZE
SPARE = 20                       # a LAN slot no Guest owns: the victim's hostile bindings go there
RING_IRQ, SPARE_IRQ, BLOCK_IRQ = 5, 7, 1
DMA_SIZE = 100                   # sizeof(struct lguest_dma) on i386, counted by hand: 4 + 16*4 + 16*2


def image_bytes(seed: int, sectors: int = 32) -> bytes:
    return bytes((i * 13 + seed) % 256 for i in range(sectors * SECTOR))


class World:
    """B (with a disk), V (the victim, with a disk of its own) and C, all on lan0."""

    def __init__(self, tmp_path, boot_victim: bool = True):
        self.host = lguest.Host()
        self.disk_b, self.disk_v = tmp_path / "b.img", tmp_path / "v.img"
        self.disk_b.write_bytes(image_bytes(1))
        self.disk_v.write_bytes(image_bytes(2))
        launch = self.host.launch
        self.b = launch(mem_mb=1, sharenet=["lan0"], block=[str(self.disk_b)], drivers=())
        self.v = launch(mem_mb=1, sharenet=["lan0"], block=[str(self.disk_v)], drivers=(), boot=boot_victim)
        self.c = launch(mem_mb=1, sharenet=["lan0"], drivers=())
        self.guests = [self.b, self.v, self.c]
        assert [g.id for g in self.guests] == [0, 1, 2]
        self.rings = {}
        for g in self.guests:
            if g is self.v and not boot_victim:
                continue                     # any hypercall would already kill it
            arr, bufs = ring(g, [64, 64])
            assert bind(g, slot_key(g, g.id), arr, 2, RING_IRQ) == 1
            self.rings[g.id] = (arr, bufs)
        # B's disk: the block page, a one-entry reply buffer bound to it, the empty "read" ping
        self.blk_page = block_page(self.b)
        self.blk_buf = self.b.alloc(1024, align=PAGE)
        self.blk_reply = new_dma(self.b, [(self.blk_buf, 1024)])
        assert bind(self.b, self.blk_page, self.blk_reply, 1, BLOCK_IRQ) == 1
        self.blk_ping = new_dma(self.b)
        # what B sends in the tests, made now so that the snapshots are taken after it
        self.b_payload = payload(self.b, 48, seed=3)
        self.b_probe = payload(self.b, 32, seed=5)

    def disks(self):
        return [hashlib.sha256(p.read_bytes()).hexdigest() for p in (self.disk_b, self.disk_v)]


def block_page(g) -> int:
    for d in g.devices:
        if int(d["type"]) == abi.LGUEST_DEVICE_T_BLOCK:
            return int(d["pfn"]) << abi.PAGE_SHIFT
    raise AssertionError(f"Guest {g.id} has no disk")


def payload(g, n: int, seed: int) -> int:
    """A one-section lguest_dma over n recognisable bytes (never across a page)."""
    buf = g.alloc(n, align=64)
    g.memory.write(buf, pattern(n, seed))
    return new_dma(g, [(buf, n)])


def sections_of(g, dma: int):
    return struct.unpack("<I16I16H", g.memory.read(dma, DMA_SIZE))


# --- the checks every test shares -----------------------------------------------------------
def second_bad_things(w, victim):
    """After the kill, every door still open to misbehaviour is tried; none may change the message."""
    bad_key = slot_key(victim, SPARE) + 2
    with pytest.raises(GuestDead):                                    # the Guest's own int $0x1F
        victim.hypercall(abi.LHCALL_BIND_DMA, bad_key, 0, (1 << 8) | RING_IRQ)
    with pytest.raises(GuestDead):                                    # ... even past the facade
        lg(victim).fd.hypercall_gate()(abi.LHCALL_SEND_DMA, bad_key, 0)
    with pytest.raises(OSError) as exc:                               # LHREQ_GETDMA with a bad key
        lg(victim).fd.getdma(bad_key)
    assert exc.value.errno == errno.ENOENT
    assert victim.launcher.get_dma_buffer(bad_key) is None
    w.host.kill_guest(lg(victim), "a second reason")
    lg(victim).fd.close("the Launcher closes /dev/lguest")
    send(w.b, slot_key(w.b, victim.id), w.b_probe)                   # to the victim's old slot
    assert used_len(w.b, w.b_probe) == 0


def still_serving(w):
    """B and C still send to each other through the Host, and B's disk still reads."""
    for src, dst, seed in ((w.b, w.c, 11), (w.c, w.b, 12)):
        arr, bufs = w.rings[dst.id]
        for i in range(2):
            set_used_len(dst, arr + DMA_SIZE * i, 0)                 # dst restocks its ring
        dma = payload(src, 40, seed)
        send(src, slot_key(src, dst.id), dma)
        assert used_len(src, dma) == 40
        got = [dst.memory.read(buf, 40) for i, buf in enumerate(bufs) if used_len(dst, arr + DMA_SIZE * i)]
        assert got == [pattern(40, seed)]
        assert RING_IRQ in dst.pending_irqs
    page = w.b.memory.struct_at(w.blk_page, abi.lguest_block_page)
    page["type"], page["sector"], page["bytes"], page["result"] = 0, 3, 1024, 0
    set_used_len(w.b, w.blk_reply, 0)
    send(w.b, w.blk_page, w.blk_ping)
    assert int(page["result"]) == 1 and used_len(w.b, w.blk_reply) == 1024
    assert w.b.memory.read(w.blk_buf, 1024) == image_bytes(1)[3 * SECTOR:3 * SECTOR + 1024]
    assert BLOCK_IRQ in w.b.pending_irqs
    assert w.b.dead is None and w.c.dead is None


def assert_kill(w, victim, fatal, msg, allow=(), raised=None, log=None):
    """Run ``fatal``; check the kill, the untouched bytes, the second bad things, and the others."""
    others = [g for g in w.guests if g is not victim]
    before, disks = snapshot(w.guests), w.disks()
    pending = {g.id: lg(g).irqs_pending for g in others}
    for gid, irq in (raised or {}).items():
        pending[gid] |= 1 << irq
    mark = w.host.trace.mark()
    fatal()
    assert victim.dead == msg
    assert [g.dead for g in others] == [None] * len(others)
    assert [(e.guest, e.msg) for e in events(w.host, "kill", since=mark)] == [(victim.id, msg)]
    assert lg(victim).bindings() == []
    assert (log or f"lguest: {msg}") in victim.launcher.log
    assert {g.id: lg(g).irqs_pending for g in others} == pending
    assert_unchanged(before, w.guests, allow)
    assert w.disks() == disks
    second_bad_things(w, victim)
    assert victim.dead == msg
    assert len(events(w.host, "kill", since=mark)) == 1
    assert_unchanged(before, w.guests, allow)
    still_serving(w)
    assert w.disks() == disks


def assert_soft(w, action, allow=(), raised=None):
    """Run ``action`` (which returns what it returns); nobody dies and only ``allow`` changes."""
    before, disks = snapshot(w.guests), w.disks()
    pending = {g.id: lg(g).irqs_pending for g in w.guests}
    for gid, irq in (raised or {}).items():
        pending[gid] |= 1 << irq
    mark = w.host.trace.mark()
    result = action()
    assert [g.dead for g in w.guests] == [None, None, None]
    assert events(w.host, "kill", since=mark) == []
    assert {g.id: lg(g).irqs_pending for g in w.guests} == pending
    assert_unchanged(before, w.guests, allow)
    assert w.disks() == disks
    still_serving(w)
    assert w.disks() == disks
    return result


@pytest.fixture
def w(tmp_path):
    return World(tmp_path)


# --- bad keys (reference §3.1): BIND_DMA, SEND_DMA ---------------------------------------------
@pytest.mark.parametrize("off", [1, 2, 3])
def test_kill_bad_dma_key_misaligned_bind(w, off):
    v = w.v
    key = slot_key(v, SPARE) + off
    arr = w.rings[v.id][0]
    assert_kill(w, v, lambda: v.hypercall(abi.LHCALL_BIND_DMA, key, arr, (2 << 8) | RING_IRQ),
                f"bad dma key {key:#x}")


@pytest.mark.parametrize("where", ["top", "a page past top", "the last word"])
def test_kill_bad_dma_key_unmapped_bind(w, where):
    v = w.v
    key = {"top": v.memory.top, "a page past top": v.memory.top + PAGE, "the last word": 0xFFFFFFFC}[where]
    assert_kill(w, v, lambda: v.hypercall(abi.LHCALL_BIND_DMA, key, w.rings[v.id][0], (2 << 8) | RING_IRQ),
                f"bad dma key {key:#x}")


def test_kill_bad_dma_key_unbind_too(w):
    """irq 0 (unbind) computes the key first, so a misaligned unbind dies the same way."""
    v = w.v
    key = slot_key(v, v.id) + 2
    assert_kill(w, v, lambda: unbind(v, key, w.rings[v.id][0]), f"bad dma key {key:#x}")


@pytest.mark.parametrize("where", ["shared, next to C's slot", "private, for the Launcher"])
def test_kill_bad_sending_dma_key_misaligned_send(w, where):
    """C is bound at the aligned key beside it: it must get nothing; nor may the Launcher."""
    v = w.v
    key = slot_key(v, w.c.id) + 1 if where.startswith("shared") else 0x4002
    dma = payload(v, 16, seed=7)
    assert_kill(w, v, lambda: v.hypercall(abi.LHCALL_SEND_DMA, key, dma), "bad sending DMA key")
    assert not any("Pending dma" in line for line in v.launcher.log)


@pytest.mark.parametrize("where", ["top", "a page past top", "the last word"])
def test_kill_bad_sending_dma_key_unmapped_send(w, where):
    v = w.v
    key = {"top": v.memory.top, "a page past top": v.memory.top + PAGE, "the last word": 0xFFFFFFFC}[where]
    dma = payload(v, 16, seed=7)
    assert_kill(w, v, lambda: v.hypercall(abi.LHCALL_SEND_DMA, key, dma), "bad sending DMA key")


def test_kill_bad_sending_dma_key_comes_before_the_descriptor(w):
    """A bad key and an unreadable descriptor together: the key is looked at first, and the
    descriptor never (so no "bad read address")."""
    v = w.v
    assert_kill(w, v, lambda: v.hypercall(abi.LHCALL_SEND_DMA, slot_key(v, w.c.id) + 2, v.memory.top + PAGE),
                "bad sending DMA key")


# --- bad sections (reference §3.3): the owner of the bad list dies ------------------------------
def bad_section(g, kind):
    """(addr, len) of one section that check_dma_list() refuses, made in Guest g."""
    top = g.memory.top
    if kind == "out_of_range":
        return top + PAGE, 16
    if kind == "wraps_past_4g":                  # addr + len wraps in 32 bits: the no-wrap test
        return 0xFFFFFFF0, 32
    if kind == "ends_exactly_at_top":            # its last byte is mapped; the end-address test fails it
        return top - 16, 16
    page = g.alloc(2 * PAGE, align=PAGE)
    if kind == "longer_than_a_page":
        return page, PAGE + 4
    if kind == "crosses_a_page":
        return page + PAGE - 8, 16
    if kind == "longer_than_a_page_at_0":        # the kernel's %#x prints 0 as 0x0 (glibc would say 0)
        return 0, PAGE + 1
    raise ValueError(kind)


KINDS = ["out_of_range", "wraps_past_4g", "ends_exactly_at_top", "longer_than_a_page", "crosses_a_page",
         "longer_than_a_page_at_0"]


@pytest.mark.parametrize("kind", KINDS)
def test_kill_bad_dma_entry_on_the_senders_list(w, kind):
    """V sends to C with a bad section after a good one: V dies, C's buffers stay as they were
    (nothing is copied, not even the good first section) and C gets no interrupt."""
    v = w.v
    good = v.alloc(16, align=64)
    v.memory.write(good, pattern(16, 8))
    addr, n = bad_section(v, kind)
    dma = new_dma(v, [(good, 16), (addr, n)])
    assert_kill(w, v, lambda: send(v, slot_key(v, w.c.id), dma), f"bad DMA entry: {n}@{addr:#x}")
    assert used_len(v, dma) == 0


def hostile_ring(v, entries):
    """V binds an array of the given entries (lists of sections) at the spare slot, irq 7.

    Returns the key B sends to (the same LAN offset, in B's own addresses)."""
    arr = v.alloc(DMA_SIZE * len(entries), align=4)
    for i, sections in enumerate(entries):
        put_dma(v, arr + DMA_SIZE * i, sections)
    assert bind(v, slot_key(v, SPARE), arr, len(entries), SPARE_IRQ) == 1
    return arr


@pytest.mark.parametrize("kind", KINDS)
def test_kill_bad_dma_entry_on_the_receivers_list(w, kind):
    """B sends to V's spare binding, whose entry has a bad section: V, the list's owner, dies.
    B lives, its used_len stays 0, and no interrupt is raised for anyone."""
    v, b = w.v, w.b
    addr, n = bad_section(v, kind)
    hostile_ring(v, [[(v.alloc(64, align=64), 64), (addr, n)]])
    assert_kill(w, v, lambda: send(b, slot_key(b, SPARE), w.b_payload), f"bad DMA entry: {n}@{addr:#x}")
    assert used_len(b, w.b_payload) == 0


def test_kill_bad_dma_entry_receivers_list_is_checked_first(w):
    """Both lists bad: do_dma() checks the receiver's first, kills V and stops, so B, whose own
    list is just as bad, is never checked and lives."""
    v, b = w.v, w.b
    addr, n = bad_section(v, "crosses_a_page")
    hostile_ring(v, [[(addr, n)]])
    b_page = b.alloc(2 * PAGE, align=PAGE)
    dma = new_dma(b, [(b_page + PAGE - 4, 8)])
    assert_kill(w, v, lambda: send(b, slot_key(b, SPARE), dma), f"bad DMA entry: {n}@{addr:#x}")
    assert used_len(b, dma) == 0


def test_kill_bad_dma_entry_names_the_first_bad_section(w):
    v = w.v
    page = v.alloc(2 * PAGE, align=PAGE)
    good = v.alloc(16, align=64)
    first, second = (page + PAGE - 2, 4), (v.memory.top + PAGE, 8)
    dma = new_dma(v, [(good, 16), first, second])
    assert_kill(w, v, lambda: send(v, slot_key(v, w.c.id), dma), f"bad DMA entry: 4@{first[0]:#x}")


def test_a_list_stops_at_its_first_zero_length(w):
    """Not a kill: sections after the first zero length are never looked at, however bad."""
    v, c = w.v, w.c
    good = v.alloc(16, align=64)
    v.memory.write(good, pattern(16, 9))
    dma = new_dma(v, [(good, 16), (v.memory.top, 0), (v.memory.top + PAGE, 16), (0, PAGE + 1)])
    arr, bufs = w.rings[c.id]

    def action():
        send(v, slot_key(v, c.id), dma)
        return used_len(v, dma), used_len(c, arr), c.memory.read(bufs[0], 16)
    got = assert_soft(w, action, allow=[(c, bufs[0], 16), (c, arr, 4), (v, dma, 4)], raised={c.id: RING_IRQ})
    assert got == (16, 16, pattern(16, 9))


# --- bad arrays and bad descriptors (reference §3.5 steps 1 and 2) -------------------------------
@pytest.mark.parametrize("where", ["a page past top", "straddling top", "second entry past top"])
def test_kill_bad_address_in_registered_dma_struct(w, where):
    """The receiver's bound array is read where it lies: an entry that cannot be read kills
    the receiver (lgread_other) and the transfer stops, with no interrupt for anyone."""
    v, b = w.v, w.b
    top = v.memory.top
    if where == "second entry past top":
        arr = top - DMA_SIZE - 50                # entry 0 in range but in use; entry 1 runs past top
        put_dma(v, arr, [(v.alloc(64, align=64), 64)], used=1)
        num = 2
    else:
        arr, num = (top + PAGE, 1) if where == "a page past top" else (top - 50, 1)
    assert bind(v, slot_key(v, SPARE), arr, num, SPARE_IRQ) == 1        # nothing is checked at bind time
    assert_kill(w, v, lambda: send(b, slot_key(b, SPARE), w.b_payload), "bad address in registered DMA struct")
    assert used_len(b, w.b_payload) == 0


@pytest.mark.parametrize("where", ["a page past top", "straddling top"])
def test_kill_unreadable_send_descriptor_reads_as_zeros_and_carries_on(w, where):
    """lgread() of V's lguest_dma fails: V dies ("bad read address"), the zeros are an empty
    list, and the Host carries on with it, as io.c did: C's free entry gets used_len 0 (so
    stays free), its cursor moves on by one, and C's interrupt is raised. Then the Host writes
    V's used_len: a page past top that write fails too, a second bad thing whose message is
    lost; straddling top its 4 bytes are in range, so a 0 lands in the dead V (where 0 was)."""
    v, c = w.v, w.c
    udma = v.memory.top + PAGE if where == "a page past top" else v.memory.top - 50
    cursor = next(bd for bd in lg(c).bindings() if bd.interrupt == RING_IRQ)
    assert cursor.next_dma == 0
    seen = []

    def fatal():
        mark = w.host.trace.mark()
        v.hypercall(abi.LHCALL_SEND_DMA, slot_key(v, c.id), udma)
        seen.append((cursor.next_dma, [(e.guest, e.addr, e.value) for e in events(w.host, "used_len", since=mark)]))
    assert_kill(w, v, fatal, f"bad read address {udma:#x} len {DMA_SIZE}", raised={c.id: RING_IRQ})
    arr = w.rings[c.id][0]
    to_v = [] if where == "a page past top" else [(v.id, udma, 0)]
    assert seen == [(1, to_v + [(c.id, arr, 0)])]


def test_unreadable_send_descriptor_to_a_key_nobody_bound_is_never_read(w):
    """Soft: with no receiver the Host never reads the descriptor, so nobody notices it is bad."""
    v = w.v
    assert_soft(w, lambda: v.hypercall(abi.LHCALL_SEND_DMA, slot_key(v, SPARE), v.memory.top + PAGE))


def test_kill_unreadable_send_descriptor_to_the_launcher_is_the_launchers_check(w):
    """To a private key the Host reads nothing: the Launcher's dma2iov() finds the pointer past
    top and exits; the model makes its line the death message (differences.md, `launcher-exit`)."""
    v = w.v
    udma, key = v.memory.top + PAGE, v.alloc(4, align=4)
    assert_kill(w, v, lambda: v.hypercall(abi.LHCALL_SEND_DMA, key, udma),
                f"Launcher exited: Invalid address {udma}", log=f"lguest: Invalid address {udma}")


# --- the Launcher's GETDMA (reference §3.6) -----------------------------------------------------
@pytest.mark.parametrize("where", ["misaligned", "unmapped"])
def test_kill_bad_registered_dma_buffer(w, where):
    """The Launcher passes the bad key, and the *Guest* dies for it."""
    v = w.v
    key = slot_key(v, v.id) + 3 if where == "misaligned" else v.memory.top + PAGE
    assert_kill(w, v, lambda: v.launcher.get_dma_buffer(key), "bad registered DMA buffer")


def test_kill_getdma_on_an_unreadable_array_hands_out_the_entry_all_the_same(w):
    """A good key, but V's array bound to it lies past top. find_dma_buf()'s lgread() kills V
    and reads zeros, which look like a free entry, so GETDMA hands its address out anyway; the
    irq written into it then fails too (a second message, lost)."""
    v = w.v
    arr = v.memory.top + PAGE
    assert bind(v, slot_key(v, SPARE), arr, 1, SPARE_IRQ) == 1
    got = []
    assert_kill(w, v, lambda: got.append(lg(v).fd.getdma(slot_key(v, SPARE))),
                f"bad read address {arr:#x} len {DMA_SIZE}")
    assert got == [arr]


# --- hypercalls (H:100, H:120) ------------------------------------------------------------------
@pytest.mark.parametrize("nr", [abi.LHCALL_SEND_DMA, abi.LHCALL_BIND_DMA, abi.LHCALL_HALT, 0xFFFFFFFF])
def test_kill_hypercall_before_lguest_init(tmp_path, nr):
    """V launched with boot=False. Its first hypercall is not LGUEST_INIT: death, and a SEND_DMA
    with good arguments to C's slot delivers nothing; a BIND_DMA binds nothing."""
    w = World(tmp_path, boot_victim=False)
    v = w.v
    dma = payload(v, 16, seed=6)
    args = {abi.LHCALL_SEND_DMA: (slot_key(v, w.c.id), dma, 0),
            abi.LHCALL_BIND_DMA: (slot_key(v, v.id), dma, (1 << 8) | RING_IRQ)}.get(nr, (0, 0, 0))
    signed = nr - (1 << 32) if nr >= 1 << 31 else nr
    assert_kill(w, v, lambda: v.hypercall(nr, *args), f"hypercall {signed} before LGUEST_INIT")
    assert lg(v).lguest_data is None


@pytest.mark.parametrize("nr", [17, 99, 0x80000000])
def test_kill_bad_hypercall(w, nr):
    """H:120's default case; the newline is 2007's, and %li prints the register signed."""
    signed = nr - (1 << 32) if nr >= 1 << 31 else nr
    assert_kill(w, w.v, lambda: w.v.hypercall(nr, 1, 2, 3), f"Bad hypercall {signed}\n")


@pytest.mark.parametrize("where", ["its own lguest_data", "an address past top"])
def test_kill_lguest_init_twice(w, where):
    v = w.v
    addr = v.kernel.lguest_data if where.startswith("its") else v.memory.top + PAGE
    assert_kill(w, v, lambda: v.hypercall(abi.LHCALL_LGUEST_INIT, addr), "already have lguest_data")


@pytest.mark.parametrize("text, msg", [(b"Power down\0junk", "CRASH: Power down"),
                                       (b"x" * 200, "CRASH: " + "x" * 127)])
def test_kill_crash(w, text, msg):
    v = w.v
    buf = v.alloc(len(text), align=4)
    v.memory.write(buf, text)
    assert_kill(w, v, lambda: v.hypercall(abi.LHCALL_CRASH, buf), msg)


def test_kill_crash_with_a_bad_pointer_dies_of_the_read(w):
    """The 128-byte lgread() fails first; CRASH's own kill_guest() then comes second and is lost."""
    v = w.v
    addr = v.memory.top - 100
    assert_kill(w, v, lambda: v.hypercall(abi.LHCALL_CRASH, addr), f"bad read address {addr:#x} len 128")


# --- the soft failures (reference §3.7) ---------------------------------------------------------
@pytest.mark.parametrize("irq, off", [(32, 0), (255, 0), (32, 2)])
def test_soft_bind_irq_32_or_more_returns_0(w, irq, off):
    """irq >= 32 fails before the key is even looked at, so a misaligned key does not kill here."""
    v = w.v
    key = slot_key(v, SPARE) + off
    count = len(lg(v).bindings())
    assert assert_soft(w, lambda: bind(v, key, w.rings[v.id][0], 2, irq)) == 0
    assert len(lg(v).bindings()) == count


def test_soft_bind_with_the_table_full_returns_0(w):
    v = w.v
    arr = w.rings[v.id][0]
    assert len(lg(v).bindings()) == 1
    for n in range(31):
        assert bind(v, slot_key(v, 30 + n), arr, 2, RING_IRQ) == 1
    assert assert_soft(w, lambda: bind(v, slot_key(v, SPARE), arr, 2, RING_IRQ)) == 0    # the 33rd
    assert len(lg(v).bindings()) == 32
    assert v.kernel.lguest_bind_dma(slot_key(v, SPARE), arr, 2, RING_IRQ) == -errno.ENOMEM
    assert unbind(v, slot_key(v, 30), arr) == 1                     # one free entry: it binds again
    assert bind(v, slot_key(v, SPARE), arr, 2, RING_IRQ) == 1


@pytest.mark.parametrize("whose", ["a slot nobody bound", "V's own slot (only V bound it)"])
def test_soft_send_to_a_shared_key_nobody_else_bound(w, whose):
    """The sender never delivers to itself; with nobody else bound nothing happens at all."""
    v = w.v
    dma = payload(v, 16, seed=7)
    set_used_len(v, dma, 0xDEAD)
    n = SPARE if whose.startswith("a slot") else v.id
    mark = w.host.trace.mark()
    assert_soft(w, lambda: send(v, slot_key(v, n), dma), allow=[(v, dma, 4)])
    assert used_len(v, dma) == 0                     # the Guest's wrapper zeroed it; the Host left it
    sends = events(w.host, "send_dma", since=mark, guest=v)
    assert sends[0].to is None and not events(w.host, "copy", since=mark, guest=v)


def test_soft_send_to_a_full_ring_after_one_retry(w):
    v, c = w.v, w.c
    arr = w.rings[c.id][0]
    set_used_len(c, arr, 1)
    set_used_len(c, arr + DMA_SIZE, 1)
    dma = payload(v, 16, seed=7)
    mark = w.host.trace.mark()
    assert_soft(w, lambda: send(v, slot_key(v, c.id), dma), raised={c.id: RING_IRQ})
    tried = [e.attempt for e in events(w.host, "send_dma", since=mark, guest=v)]
    assert tried[:2] == [1, 2]
    assert [e.to for e in events(w.host, "send_dma_full", since=mark, guest=v)][:1] == [c.id]
    assert len(events(w.host, "ring_full", since=mark, guest=c)) >= 2
    assert not [e for e in events(w.host, "copy", since=mark) if e.guest == v.id]


def test_soft_launcher_output_to_an_unknown_key(w):
    v = w.v
    dma = payload(v, 16, seed=7)
    assert_soft(w, lambda: send(v, 0x4000, dma))
    assert used_len(v, dma) == 0
    assert f"lguest: Pending dma {dma:#x}, key 0x4000" in v.launcher.log


# --- snapshot, then check: the Host reads a descriptor once, and checks and copies that copy -----
def rewrite_on(w, kind, of, owner, dma, sections):
    """Right after the first ``kind`` event for Guest ``of``, overwrite ``owner``'s lguest_dma at
    ``dma`` with ``sections`` (its used_len kept). Returns (stop watching, the events seen)."""
    seen = []

    def watcher(e):
        if e.kind == kind and e.guest == of.id:
            seen.append(e)
            if len(seen) == 1:
                put_dma(owner, dma, sections, used=used_len(owner, dma))
    return w.host.watch(watcher), seen


REWRITES = ["a secret of V's", "past top", "across a page", "sixteen pages"]


def rewritten_list(v, which, secret):
    if which == "a secret of V's":
        return [(secret, 48)]
    if which == "past top":
        return [(v.memory.top + PAGE, 48)]
    page = v.alloc(17 * PAGE, align=PAGE)
    if which == "across a page":
        return [(page + PAGE - 24, 48)]
    return [(page + i * PAGE, PAGE) for i in range(16)]


@pytest.mark.parametrize("which", REWRITES)
def test_snapshot_then_check_sender_rewrites_after_the_check(w, which):
    """V's descriptor is rewritten right after the Host's check of it: the copy follows the
    list that was checked. The 48 bytes C gets are V's checked payload, nothing of the secret;
    V is not killed for the rewritten list (it is never looked at); nothing else changes."""
    v, c = w.v, w.c
    buf = v.alloc(48, align=64)
    v.memory.write(buf, pattern(48, 21))
    secret = v.alloc(48, align=64)
    v.memory.write(secret, pattern(48, 77))
    dma = new_dma(v, [(buf, 48)])
    new = rewritten_list(v, which, secret)
    arr, bufs = w.rings[c.id]
    before, disks = snapshot(w.guests), w.disks()
    stop, seen = rewrite_on(w, "check", v, v, dma, new)
    mark = w.host.trace.mark()
    try:
        send(v, slot_key(v, c.id), dma)
    finally:
        stop()
    assert len(seen) == 1 and seen[0].ok                           # the rewrite came after V's check
    assert [g.dead for g in w.guests] == [None, None, None]
    assert c.memory.read(bufs[0], 48) == pattern(48, 21)
    assert pattern(48, 77) not in bytes(c.memory.read(bufs[0], 64))
    assert used_len(v, dma) == 48 and used_len(c, arr) == 48
    assert list(sections_of(v, dma)[1:1 + len(new)]) == [a for a, _ in new]     # the Host left the rewrite
    copies = [e for e in events(w.host, "copy", since=mark) if e.guest == v.id]
    assert [e.bytes for e in copies] == [48]
    assert_unchanged(before, w.guests, [(c, bufs[0], 48), (c, arr, 4), (v, dma, DMA_SIZE)])
    assert w.disks() == disks
    still_serving(w)


@pytest.mark.parametrize("which", ["another of C's buffers", "past top"])
def test_snapshot_then_check_receiver_rewrites_after_its_check(w, which):
    """The receiver races too: C rewrites its ring entry right after the Host checked it. The
    bytes land in the checked buffer; the buffer C switched to is untouched."""
    v, c = w.v, w.c
    arr, bufs = w.rings[c.id]
    other = c.alloc(64, align=64)
    target = other if which.startswith("another") else c.memory.top + PAGE
    dma = payload(v, 48, seed=22)
    before, disks = snapshot(w.guests), w.disks()
    stop, seen = rewrite_on(w, "check", c, c, arr, [(target, 64)])
    try:
        send(v, slot_key(v, c.id), dma)
    finally:
        stop()
    assert len(seen) == 1 and seen[0].ok
    assert [g.dead for g in w.guests] == [None, None, None]
    assert c.memory.read(bufs[0], 48) == pattern(48, 22)
    assert used_len(c, arr) == 48 and used_len(v, dma) == 48
    assert_unchanged(before, w.guests, [(c, bufs[0], 48), (c, arr, DMA_SIZE), (v, dma, 4)])
    assert w.disks() == disks
    put_dma(c, arr, [(bufs[0], 64)], used=48)         # C puts its entry back before going on
    still_serving(w)


def test_snapshot_then_check_a_rewrite_before_the_read_is_what_gets_checked(w):
    """The other side of the snapshot: the Host reads the descriptor after the send_dma event
    and before any check. A list rewritten at send_dma is the list checked, and a bad one
    kills V, with the rewritten section in the message; C gets nothing."""
    v, c = w.v, w.c
    dma = payload(v, 48, seed=23)
    page = v.alloc(2 * PAGE, align=PAGE)
    bad = (page + PAGE - 16, 48)
    stop, seen = rewrite_on(w, "send_dma", v, v, dma, [bad])
    try:
        assert_kill(w, v, lambda: send(v, slot_key(v, c.id), dma), f"bad DMA entry: 48@{bad[0]:#x}",
                    allow=[(v, dma, DMA_SIZE)])
    finally:
        stop()
    assert len(seen) == 1


def test_snapshot_then_check_the_descriptor_is_read_once(w):
    """Rewriting V's descriptor after the *receiver's* check (V's list already read, not yet
    checked) changes nothing either: V's check and the copy both use what was read before."""
    v, c = w.v, w.c
    dma = payload(v, 48, seed=24)
    secret = v.alloc(48, align=64)
    v.memory.write(secret, pattern(48, 78))
    arr, bufs = w.rings[c.id]
    before = snapshot(w.guests)
    stop, seen = rewrite_on(w, "check", c, v, dma, [(v.memory.top + PAGE, 48), (secret, 48)])
    checks = w.host.trace.mark()
    try:
        send(v, slot_key(v, c.id), dma)
    finally:
        stop()
    assert len(seen) == 1
    assert [(e.guest, e.ok) for e in events(w.host, "check", since=checks)] == [(c.id, True), (v.id, True)]
    assert v.dead is None and c.dead is None
    assert c.memory.read(bufs[0], 48) == pattern(48, 24) and used_len(v, dma) == 48
    assert_unchanged(before, w.guests, [(c, bufs[0], 48), (c, arr, 4), (v, dma, DMA_SIZE)])
    still_serving(w)
