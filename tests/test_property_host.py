"""A hypothesis state machine against the Host rules (issue 2, part 4; reference §3).

Three Guests share one LAN ("lan0"; the third maps it at a different address, behind a
LAN of its own). They boot with ``drivers=()``, so the harness is the only Guest code: it
binds a ring at each Guest's own slot key, as lguestnet_open would, and plays from there. Rules bind, send, unbind, fill and corrupt DMA structs, kill, halt,
raise irqs, type at a console and run the Host, with good and bad keys, arrays and
sections. Around every call into the Host the harness snapshots every Guest's memory and
afterwards checks the memory against an oracle built only from the reference's rules, the
trace events the step emitted and the DMA structs as they were before the step:

* no Python exception escapes the Host (the harness never calls into a dead Guest);
* bytes change only where the rules allow: a copy's receiving sections (and there, the
  sender's bytes as 2007's copy_data() took them: each step from the start of its source
  section), used_len fields, and a Launcher's input buffers;
* every used_len written is at most the capacity of the list it was written into;
* a dead Guest never receives (no copy, used_len, GETDMA or irq delivery after its kill),
  except where io.c carried on after a kill: an unreadable send descriptor read as zeros and
  delivered as an empty list, an empty list's receiver killed by its check still given
  used_len 0, and a GETDMA entry that lgread() could not read handed out all the same;
* at most 32 bindings per Guest, and exactly those a shadow of the binding table predicts;
* a kill is a trace event, its message is the first one, and nobody else dies silently.
"""
from __future__ import annotations

import struct

import numpy as np
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

import lguest
from lguest import abi

PAGE = abi.PAGE_SIZE
DMA = struct.Struct("<I16I16H")                  # struct lguest_dma, i386
U32 = struct.Struct("<I")
POOL = 12                                        # lguest_dma structs per Guest for arrays
STEPS = 30
RUN_STEPS = 1000      # host.run() bound: with 3 Guests and no handlers, idle comes in far fewer steps


# --- the Guests' memory, seen by the oracle ---------------------------------------------------------
class Layout:
    """Where one Guest's physical addresses live: (buffer id, offset) pieces."""

    def __init__(self, g):
        self.g = g
        self.id = g.id
        self.regions = [(r.start, r.end, id(r.buf)) for r in g.memory.regions]
        self.shared = {r.shared.name: r.start for r in g.memory.regions if r.shared is not None}
        self.ram = g.memory.ram_size
        self.top = g.memory.top
        self.lan = self.shared["lan0"]
        self.data = g.alloc(3 * PAGE, align=PAGE)        # where good sections point
        self.pool = g.alloc(POOL * 100, align=4)         # receive arrays
        self.sd = g.alloc(100, align=4)                  # the usual send descriptor
        self.msg = g.alloc(32, align=4)
        g.memory.write(self.msg, b"boom\0")
        self.lguest_data = g.kernel.lguest_data

    def pieces(self, addr, n, clip=False):
        out = []
        while n > 0:
            for start, end, bid in self.regions:
                if start <= addr < end:
                    k = min(n, end - addr)
                    out.append((bid, addr - start, k))
                    addr, n = addr + k, n - k
                    break
            else:
                if clip:
                    return out
                raise AssertionError(f"oracle: Guest {self.id} has nothing mapped at {addr:#x}")
        return out

    def ident(self, key):
        """The futex key a DMA key names (reference §3.1), computed independently."""
        for name, start in self.shared.items():
            if start <= key < start + PAGE:
                return ("shared", name, key - start)
        return ("private", self.id, key)

    def key_ok(self, key):
        return key % 4 == 0 and key < self.top


def read(state, L, addr, n):
    return b"".join(state[b][o:o + k].tobytes() for b, o, k in L.pieces(addr, n))


def write(state, copied, L, addr, data):
    done = 0
    for b, o, k in L.pieces(addr, len(data)):
        if b not in copied:
            state[b] = state[b].copy()
            copied.add(b)
        state[b][o:o + k] = np.frombuffer(data[done:done + k], np.uint8)
        done += k


def sections(state, L, addr):
    f = DMA.unpack(read(state, L, addr, 100))
    out = []
    for a, n in zip(f[1:17], f[17:33]):
        if not n:
            break
        out.append((a, n))
    return out


def lockstep(src, dst):
    """(source section, its offset, destination section, its offset, bytes) for each step of
    the copy: the walk of reference §3.5, written here independently of the package."""
    si = di = so = do = 0
    while si < len(src) and di < len(dst):
        n = min(src[si][1] - so, dst[di][1] - do)
        yield si, so, di, do, n
        so, do = so + n, do + n
        if so == src[si][1]:
            si, so = si + 1, 0
        if do == dst[di][1]:
            di, do = di + 1, 0


def address_ok(L, addr, n):
    """lguest_address_ok(): the end below the pfn limit, with no wrap."""
    return addr + n < 1 << 32 and (addr + n) // PAGE < L.top // PAGE


def section_ok(L, addr, n):
    """§3.3 for one section: the end below the pfn limit (no wrap), at most a page, not across one."""
    end = addr + n
    return end < 1 << 32 and end // PAGE < L.top // PAGE and n <= PAGE and addr % PAGE + n <= PAGE


def overlaps(xs, ys):
    return any(bx == by and ox < oy + ky and oy < ox + kx for bx, ox, kx in xs for by, oy, ky in ys)


# --- strategies: abstract choices, resolved per Guest ----------------------------------------------
KEY = st.tuples(st.sampled_from(["slot"] * 60 + ["private"] * 4 + ["console"] * 4 + ["misaligned", "out"]),
                st.integers(0, 63))
GOOD = st.tuples(st.sampled_from(["good"] * 5 + ["shared"]), st.integers(0, 2), st.integers(0, PAGE - 1),
                 st.integers(1, 300))
BAD_KINDS = ["cross", "long", "out", "attop", "straddle", "zero"]
# Mostly good lists; about one in four carries one bad (or zero-length) section somewhere.
SECTIONS = st.tuples(st.lists(GOOD, max_size=16), st.sampled_from([None] * 18 + BAD_KINDS), st.integers(0, 15),
                     st.integers(0, PAGE - 1), st.integers(1, 300))
WHERE = st.sampled_from(["pool"] * 12 + ["shared", "straddle", "attop", "out"])
IRQ = st.sampled_from(list(range(1, 32)) + [0, 0, 0, 32, 33, 255])
COUNT = st.one_of(st.integers(1, 4), st.sampled_from([0, POOL, 1000, 0xFFFF]))


def resolve_sections(L, spec):
    good, bad, at, off, ln = spec
    secs = [resolve_section(L, *g) for g in good]
    if bad is not None:
        secs.insert(min(at, len(secs)), resolve_section(L, bad, at % 3, off, ln))
    return secs[:16]


def resolve_key(L, kind, n):
    if kind == "slot":
        return L.lan + 4 * (n % 4)
    if kind == "private":
        return L.pool + 100 * (n % POOL)
    if kind == "console":
        return 0
    if kind == "misaligned":
        return L.lan + 4 * (n % 4) + 1 + n % 3
    return [L.top, L.top + 4 * n, 0xFFFFFFFC][n % 3]


def resolve_section(L, kind, p, off, ln):
    if kind == "good":
        return L.data + p * PAGE + off, min(ln, PAGE - off)
    if kind == "shared":
        return L.lan + off, min(ln, PAGE - off)
    if kind == "cross":
        k = off % 64 + 1
        return L.data + p * PAGE + PAGE - k, k + ln
    if kind == "long":
        return L.data + p * PAGE, PAGE + 1 + off
    if kind == "out":
        return L.top + off, ln
    if kind == "attop":
        return L.top - ln, ln
    if kind == "straddle":
        k = off % 64 + 1
        return L.ram - k, 2 * k
    return L.data, 0                                   # a zero length: the list ends here


def resolve_struct(L, where, i):
    """Where a DMA struct (a send descriptor or an array) lives."""
    return {"pool": L.pool + 100 * i, "shared": L.lan + 100 * (i % 8), "straddle": L.ram - 40,
            "attop": L.top - 100, "out": L.top + 100 * i, "sd": L.sd}[where]


def put(L, addr, secs, used):
    """The Guest writes a struct lguest_dma (its own business, outside any Host step)."""
    if addr + 100 > L.top:
        return
    addrs = [a & 0xFFFFFFFF for a, _ in secs] + [0] * (16 - len(secs))
    lens = [n for _, n in secs] + [0] * (16 - len(secs))
    L.g.memory.write(addr, DMA.pack(used, *addrs, *lens))


# --- the machine ---------------------------------------------------------------------------------------
class HostMachine(RuleBasedStateMachine):
    def __init__(self):
        super().__init__()
        self.host = lguest.Host()
        self.guests = [self.host.launch(mem_mb=1, sharenet=["lan0"], drivers=()),
                       self.host.launch(mem_mb=1, sharenet=["lan0"], drivers=()),
                       self.host.launch(mem_mb=1, sharenet=["solo", "lan0"], drivers=())]
        self.L = {g.id: Layout(g) for g in self.guests}
        for L in self.L.values():
            for i in range(POOL):
                put(L, L.pool + 100 * i, [(L.data + (i % 3) * PAGE + (i // 3) * 512, 200)], 0)
        self.bufs = {}
        for g in self.guests:
            for r in g.memory.regions:
                self.bufs[id(r.buf)] = r.buf
        self.table = {g.id: [None] * abi.LGUEST_MAX_DMA for g in self.guests}   # shadow binding tables
        # (ident, dmas) of entries unbound once: 2007 keeps them, and a second unbind finds them
        # again (tests/test_host_unbind_twice.py); this machine never makes that second unbind.
        self.stale = {g.id: [None] * abi.LGUEST_MAX_DMA for g in self.guests}
        self.udma = None
        for g in self.guests:          # as lguestnet_open: a ring of 4 bound at the Guest's own slot key
            L = self.L[g.id]
            key, irq = L.lan + 4 * g.id, 1 + g.id
            assert g.hypercall(abi.LHCALL_BIND_DMA, key, L.pool, (4 << 8) | irq) == 1
            self.table[g.id][0] = (L.ident(key), L.pool, 4, irq, key)

    # --- helpers ---------------------------------------------------------------------------------------
    def alive(self):
        return [g for g in self.guests if g.dead is None]

    def pick(self, i):
        alive = self.alive()
        return alive[i % len(alive)]

    def lg(self, g):
        return self.host.lgs[g.id]

    def step(self, action, udma=None, sender=None):
        """One call into the Host, checked against the oracle."""
        before = {b: buf.copy() for b, buf in self.bufs.items()}
        dead_before = {g.id: g.dead for g in self.guests}
        halted_before = {g.id: self.lg(g).halted for g in self.guests}
        mark = self.host.trace.mark()
        self.udma, self.sender = udma, sender
        result = action()                               # any exception here fails the test
        events = self.host.trace.since(mark)
        self.check(before, events, dead_before, halted_before)
        return result, events

    def check(self, before, events, dead_before, halted_before):
        expected, copied = dict(before), set()
        free = []                                       # (buffer, lo, hi): any bytes allowed
        dead = {gid for gid, d in dead_before.items() if d is not None}
        first_msg, woke = {}, set()
        copy_total = copy_ev = None
        handed_out = set()                              # (Guest, entry) from GETDMA this step
        for e in events:
            gid = e.guest
            if e.kind == "kill":
                assert gid not in dead, f"Guest {gid} killed twice: {e.msg!r}"
                dead.add(gid)
                first_msg[gid] = e.msg
            elif e.kind == "copy":
                assert e.to not in dead, f"a dead Guest received a copy: {e}"
                if gid in dead:                         # io.c read the descriptor as zeros and carried on
                    assert first_msg.get(gid) == f"bad read address {self.udma:#x} len 100" and e.bytes == 0, e
                assert gid == self.sender and copy_ev is None, f"a copy nobody sent: {e}"
                copy_ev = e
                copy_total = self.apply_copy(before, expected, copied, free, e)
            elif e.kind == "used_len":
                L = self.L[gid]
                cap = sum(n for _, n in sections(before, L, e.addr))
                assert e.value <= cap, f"used_len {e.value} > capacity {cap}: {e}"
                if e.fields.get("by") == "launcher":      # console output, or an input buffer
                    assert gid not in dead, f"used_len written into dead Guest {gid}: {e}"
                    assert (gid, e.addr) in handed_out | {(self.sender, self.udma)}, f"stray used_len {e}"
                elif copy_ev is not None:               # the sender's, then the receiver's (§3.5)
                    unread = first_msg.get(gid) == f"bad read address {self.udma:#x} len 100"
                    assert gid not in dead or (gid == self.sender and unread), f"used_len into dead Guest {gid}: {e}"
                    assert (gid, e.addr) in {(self.sender, self.udma), (copy_ev.to, copy_ev.entry)}, f"stray {e}"
                    assert e.value == copy_total, f"used_len {e.value} but {copy_total} bytes were copied"
                else:                                   # do_dma() refused a list: nothing was copied
                    assert e.value == 0, f"used_len {e.value} with no copy: {e}"
                    if (gid, e.addr) != (self.sender, self.udma):    # an empty list still reaches the receiver
                        assert self.sent_empty(before) and self.is_entry(gid, e.addr), f"stray {e}"
                write(expected, copied, L, e.addr, U32.pack(e.value))
            elif e.kind == "getdma" and e.fields.get("entry") is not None and gid in dead:
                # lgread() could not read the entry: it killed the Guest, and io.c handed it out anyway,
                # with the irq written into its used_len wherever that word itself is in range
                assert first_msg.get(gid) == f"bad read address {e.entry:#x} len 100", e
                if address_ok(self.L[gid], e.entry, 4):
                    write(expected, copied, self.L[gid], e.entry, U32.pack(e.irq))
            elif e.kind == "getdma" and e.fields.get("entry") is not None:
                L = self.L[gid]
                write(expected, copied, L, e.entry, U32.pack(e.irq))
                handed_out.add((gid, e.entry))
                after = {b: buf for b, buf in self.bufs.items()}
                for state in (before, after):           # the Launcher fills the sections it was given
                    for a, n in sections(state, L, e.entry):
                        free += [(b, o, o + k) for b, o, k in L.pieces(a, n, clip=True)]
            elif e.kind == "irq_deliver":
                assert gid not in dead, f"irq delivered to dead Guest {gid}: {e}"
                L = self.L[gid]
                if halted_before[gid] and gid not in woke:
                    woke.add(gid)                       # a halted Guest wakes with interrupts on
                    write(expected, copied, L, L.lguest_data, U32.pack(0x200))
                # handle_level_irq(): a line with no handler stays masked in blocked_interrupts
                assert not L.g.kernel.irq_actions.get(e.irq), "the harness registers no handlers"
                blocked = U32.unpack(read(expected, L, L.lguest_data + 4, 4))[0] | 1 << e.irq
                write(expected, copied, L, L.lguest_data + 4, U32.pack(blocked))
            elif e.kind == "check" and not e.ok:
                assert not section_ok(self.L[gid], e.addr, e.len), f"a good section was refused: {e}"
            elif e.kind == "hypercall":
                assert gid not in dead, f"dead Guest {gid} made a hypercall: {e}"

        if copy_ev is not None:                         # §3.5.4: the receiver's irq, unless the copy failed
            after_copy = events[events.index(copy_ev):]
            if not any(e.kind == "transfer_failed" for e in after_copy):
                assert any(e.kind == "irq_raise" and e.guest == copy_ev.to for e in after_copy), \
                    f"no irq raised for the receiver of {copy_ev}"

        # bytes change only where allowed, and to what the rules say
        for b, buf in self.bufs.items():
            diff = np.flatnonzero(expected[b] != buf)
            for fb, lo, hi in free:
                if fb == b and diff.size:
                    diff = diff[(diff < lo) | (diff >= hi)]
            if diff.size:
                where = [(L.id, start + int(diff[0])) for L in self.L.values() for start, end, bid in L.regions
                         if bid == b and start + int(diff[0]) < end]
                raise AssertionError(f"{diff.size} bytes changed outside what the rules allow, first at "
                                     f"(Guest, address) {where}; events: {events}")

        # deaths: only by a kill event, first message kept
        for g in self.guests:
            if dead_before[g.id] is not None:
                assert g.dead == dead_before[g.id], "a dead Guest's message changed"
            elif g.dead is not None:
                assert first_msg.get(g.id) == g.dead, f"Guest {g.id} died without a kill event"
                self.table[g.id] = [None] * abi.LGUEST_MAX_DMA
                self.stale[g.id] = [None] * abi.LGUEST_MAX_DMA
            else:
                assert g.id not in first_msg, f"kill event for Guest {g.id}, which still runs"

    def sent_empty(self, before):
        """Is the send list empty: its len[0] 0, or its descriptor unreadable (read as zeros)?"""
        S = self.L[self.sender]
        return not address_ok(S, self.udma, 100) or not sections(before, S, self.udma)

    def is_entry(self, gid, addr):
        """Is ``addr`` an entry of one of this Guest's bound arrays (the shadow table)?"""
        return any(entry and (addr - entry[1]) % 100 == 0 and 0 <= (addr - entry[1]) // 100 < entry[2]
                   for entry in self.table[gid])

    def apply_copy(self, before, expected, copied, free, e):
        """§3.5 as 2007 ran it: each step copies from the *start* of its source section."""
        S, D = self.L[e.guest], self.L[e.to]
        assert e.guest != e.to, f"a Guest delivered to itself: {e}"
        src = sections(before, S, self.udma) if address_ok(S, self.udma, 100) else []
        dst = sections(before, D, e.entry)
        for L, secs in ((S, src), (D, dst)):
            bad = [(a, n) for a, n in secs if not section_ok(L, a, n)]
            assert not bad, f"copied through Guest {L.id}'s list, which has bad sections {bad}: {e}"
        total = min(sum(n for _, n in src), sum(n for _, n in dst))
        assert e.bytes == total, f"copied {e.bytes} bytes; lockstep over {src} -> {dst} gives {total}"
        s_pieces, d_pieces, reread = [], [], 0
        for si, so, di, do, n in lockstep(src, dst):
            s_pieces += S.pieces(src[si][0], n)           # the bug: srcoff is never added
            d_pieces += D.pieces(dst[di][0] + do, n)
            reread += n if so else 0
        assert e.fields.get("reread", 0) == reread, f"{reread} bytes re-read from a section start: {e}"
        if overlaps(s_pieces, d_pieces):               # copying over itself: the C did memcpy, unspecified
            free.extend((b, o, o + k) for b, o, k in d_pieces)
            return total
        data = b"".join(before[b][o:o + k].tobytes() for b, o, k in s_pieces)
        done = 0
        for b, o, k in d_pieces:
            if b not in copied:
                expected[b] = expected[b].copy()
                copied.add(b)
            expected[b][o:o + k] = np.frombuffer(data[done:done + k], np.uint8)
            done += k
        return total

    def table_matches(self, g):
        want = [(entry[1], entry[2], entry[3]) for entry in self.table[g.id] if entry is not None]
        got = [(b.dmas, b.num_dmas, b.interrupt) for b in self.lg(g).bindings()]
        assert got == want, f"Guest {g.id} bindings {got}, the rules give {want}"

    # --- rules ------------------------------------------------------------------------------------------
    @precondition(lambda self: self.alive())
    @rule(gi=st.integers(0, 2), key=KEY, where=WHERE, i=st.integers(0, POOL - 1), count=COUNT, irq=IRQ)
    def bind(self, gi, key, where, i, count, irq):
        g = self.pick(gi)
        L = self.L[g.id]
        k = resolve_key(L, *key)
        dmas = resolve_struct(L, where, i)
        table = self.table[g.id]
        if irq == 0 and L.key_ok(k) and self.unbinds_twice(g, L.ident(k), dmas):
            return                                      # the second unbind has tests of its own
        ret, _ = self.step(lambda: g.hypercall(abi.LHCALL_BIND_DMA, k, dmas, (count << 8) | irq))
        if irq >= abi.LGUEST_IRQS:                      # §3.2.1: fails softly, before the key
            assert ret == 0 and g.dead is None
        elif not L.key_ok(k):                           # §3.1: a bad key kills
            assert ret == 0 and g.dead == f"bad dma key {k:#x}"
        elif irq == 0:                                  # §3.2.3: unbind, key AND array
            slot = self.first_match(g, L.ident(k), dmas)
            assert ret == (slot is not None) and g.dead is None
            if slot is not None:
                self.stale[g.id][slot], table[slot] = table[slot][:2], None
        else:                                           # §3.2.4: the first free entry of 32
            slot = next((s for s, entry in enumerate(table) if entry is None), None)
            assert ret == (slot is not None) and g.dead is None
            if slot is not None:
                table[slot] = (L.ident(k), dmas, count, irq, k)
                self.stale[g.id][slot] = None
        self.table_matches(g)

    def first_match(self, g, ident, dmas):
        """The slot unbind_dma() takes: the first whose key and array match, live or not."""
        for slot, (live, stale) in enumerate(zip(self.table[g.id], self.stale[g.id])):
            if (live and live[:2] == (ident, dmas)) or stale == (ident, dmas):
                return slot
        return None

    def unbinds_twice(self, g, ident, dmas) -> bool:
        slot = self.first_match(g, ident, dmas)
        return slot is not None and self.table[g.id][slot] is None

    def bound(self):
        return [(g, entry) for g in self.alive() for entry in self.table[g.id] if entry is not None]

    @precondition(lambda self: self.bound())
    @rule(i=st.integers(0, 95), wrong_array=st.booleans())
    def unbind(self, i, wrong_array):
        bound = self.bound()
        g, (ident, dmas, count, irq, key) = bound[i % len(bound)]
        dmas = dmas + 100 if wrong_array else dmas
        L, table = self.L[g.id], self.table[g.id]
        if self.unbinds_twice(g, ident, dmas):
            return                                      # the second unbind has tests of its own
        ret, _ = self.step(lambda: g.hypercall(abi.LHCALL_BIND_DMA, key, dmas, 0))
        slot = self.first_match(g, ident, dmas)
        assert ret == (slot is not None) and g.dead is None
        if slot is not None:
            self.stale[g.id][slot], table[slot] = table[slot][:2], None
        self.table_matches(g)

    @precondition(lambda self: self.alive())
    @rule(gi=st.integers(0, 2), key=KEY, secs=SECTIONS, where=st.sampled_from(["sd"] * 30 + ["pool", "shared",
                                                                                         "straddle", "attop", "out"]),
          i=st.integers(0, POOL - 1), zero=st.booleans())
    def send(self, gi, key, secs, where, i, zero):
        g = self.pick(gi)
        L = self.L[g.id]
        k = resolve_key(L, *key)
        udma = resolve_struct(L, where, i)
        put(L, udma, resolve_sections(L, secs), 0 if zero else 0x5A5A5A5A)
        _, events = self.step(lambda: g.hypercall(abi.LHCALL_SEND_DMA, k, udma), udma=udma, sender=g.id)
        if not L.key_ok(k):                             # §3.1
            assert g.dead == "bad sending DMA key"
            return
        ident = L.ident(k)
        if ident[0] == "private" or not any(entry and entry[0] == ident for other in self.guests
                                            if other.id != g.id for entry in self.table[other.id]):
            # §3.4: private keys go to the Launcher; a shared key nobody else bound goes nowhere
            assert not [e for e in events if e.kind == "copy"], "a copy nobody could have received"

    @precondition(lambda self: self.alive())
    @rule(gi=st.integers(0, 2), i=st.integers(0, POOL - 1), secs=SECTIONS, used=st.sampled_from([0, 0, 0, 7]))
    def fill(self, gi, i, secs, used):
        """The Guest (re)fills one receive entry, or hands it back with used_len 0."""
        g = self.pick(gi)
        L = self.L[g.id]
        put(L, L.pool + 100 * i, resolve_sections(L, secs), used)

    @precondition(lambda self: self.alive())
    @rule(gi=st.integers(0, 2), i=st.integers(0, POOL - 1))
    def consume(self, gi, i):
        g = self.pick(gi)
        g.memory.write(self.L[g.id].pool + 100 * i, bytes(4))

    @precondition(lambda self: self.alive())
    @rule(gi=st.integers(0, 2), what=st.sampled_from(["pool", "sd", "shared"]), i=st.integers(0, POOL - 1),
          off=st.integers(0, 99), junk=st.binary(min_size=1, max_size=8))
    def corrupt(self, gi, what, i, off, junk):
        """A lying Guest scribbles over a DMA struct (a send descriptor or a bound array)."""
        g = self.pick(gi)
        L = self.L[g.id]
        addr = resolve_struct(L, what, i) + off
        g.memory.write(addr, junk[:max(0, min(100 - off, L.top - addr))])

    @precondition(lambda self: self.alive())
    @rule(gi=st.integers(0, 2), how=st.sampled_from(["crash", "crash_bad_pointer", "unknown", "bind_misaligned",
                                                      "send_misaligned"]), n=st.integers(0, 3),
          now=st.sampled_from([True, False, False]))
    def kill(self, gi, how, n, now):
        if not now:
            return                                      # kills are rarer than the other rules
        g = self.pick(gi)
        L = self.L[g.id]
        key = L.lan + 4 * n + 1 + n % 3
        call = {"crash": (abi.LHCALL_CRASH, L.msg), "crash_bad_pointer": (abi.LHCALL_CRASH, L.top + 8),
                "unknown": (99 + n,), "bind_misaligned": (abi.LHCALL_BIND_DMA, key, L.pool, (1 << 8) | 3),
                "send_misaligned": (abi.LHCALL_SEND_DMA, key, L.sd)}[how]
        self.step(lambda: g.hypercall(*call))
        assert g.dead is not None
        expect = {"crash": "CRASH: boom", "crash_bad_pointer": f"bad read address {L.top + 8:#x} len 128",
                  "unknown": f"Bad hypercall {99 + n}\n", "bind_misaligned": f"bad dma key {key:#x}",
                  "send_misaligned": "bad sending DMA key"}
        assert g.dead == expect[how]

    @precondition(lambda self: self.alive())
    @rule(gi=st.integers(0, 2))
    def halt(self, gi):
        g = self.pick(gi)
        self.step(lambda: g.hypercall(abi.LHCALL_HALT))

    @precondition(lambda self: self.alive())
    @rule(gi=st.integers(0, 2), irq=st.integers(0, 31))
    def raise_irq(self, gi, irq):
        g = self.pick(gi)
        self.step(lambda: g.launcher.trigger_irq(irq))
        assert self.lg(g).irqs_pending & (1 << irq)

    @precondition(lambda self: self.alive())
    @rule(gi=st.integers(0, 2), text=st.binary(min_size=1, max_size=8))
    def type_and_run(self, gi, text):
        g = self.pick(gi)
        self.step(lambda: (g.console.type(text), self.host.run(max_steps=RUN_STEPS)))

    @rule()
    def run(self):
        self.step(lambda: self.host.run(max_steps=RUN_STEPS))

    # Weights: hypothesis picks among the enabled rules uniformly, so the common Guest
    # actions appear more than once (same rule, same name in a failing example).
    send_2 = send_3 = send_4 = send
    bind_2 = bind
    fill_2 = fill
    consume_2 = consume

    # --- invariants after every rule --------------------------------------------------------------------
    @invariant()
    def at_most_32_bindings_and_none_for_the_dead(self):
        for g in self.guests:
            n = len(self.lg(g).bindings())
            assert n <= abi.LGUEST_MAX_DMA
            if g.dead is not None:
                assert n == 0, f"dead Guest {g.id} still holds {n} bindings"


TestHostStateMachine = HostMachine.TestCase
TestHostStateMachine.settings = settings(
    max_examples=2000,
    stateful_step_count=STEPS,
    derandomize=True,
    database=None,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much],
)
