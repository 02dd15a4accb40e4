"""D:200's checkable exercises: the lockstep copy as 2007 did it, a deaf ring entry, the fixed
copy written by hand, and the bytes 2007's copy re-read, measured with the trace.

Every right answer here comes from the model itself: a fresh ``lguest.Host`` with two Guests
on one LAN, Guest 1 bound to slot 1, and real SEND_DMA hypercalls (``_pair``). The wrong
answers the hints name come from small simulations of the usual misreadings.
"""
from __future__ import annotations

import hashlib
from itertools import accumulate

from .. import abi
from ..host.dma import copy_steps
from . import Exercise, Explore

DMA = abi.DMA_SIZE


# --- the model, set up as the chapter's lan_pair() does ---------------------------------------
def _pair(fixed: bool = False):
    """A fresh Host, two Guests on one LAN; returns (host, g0, g1, g0's key for slot 1, g1's)."""
    import lguest                                    # the facade; imported late (it boots kernels)
    host = lguest.Host(copy_data_fixed=fixed)
    g0 = host.launch(mem_mb=16, sharenet=["lan"], drivers=())
    g1 = host.launch(mem_mb=32, sharenet=["lan"], drivers=())
    lan0, lan1 = (int(g.devices[0]["pfn"]) << abi.PAGE_SHIFT for g in (g0, g1))
    return host, g0, g1, lan0 + 4, lan1 + 4


def _sections(guest, lens, data=None):
    """One allocation per section (never across a page); ``data`` fills them in order."""
    out, at = [], 0
    for n in lens:
        addr = guest.alloc(n)
        if data is not None:
            guest.memory.write(addr, data[at:at + n])
        out.append((addr, n))
        at += n
    return out


def _stream(n: int, tag: str) -> bytes:
    """n bytes in which no run of 8 repeats, so any piece can be found again by its bytes."""
    return hashlib.shake_128(tag.encode()).digest(n)


def _merge(pieces):
    """Runs of the stream as (first, end) tuples, touching runs joined into one."""
    out = []
    for first, end in pieces:
        if end <= first:
            continue
        if out and out[-1][1] == first:
            out[-1] = (out[-1][0], end)
        else:
            out.append((first, end))
    return out


def _pieces_2007(src_lens, dst_lens):
    """Which runs of the sent stream 2007's copy put in the receiver, in order."""
    starts = [0, *accumulate(src_lens)]
    return _merge((starts[si], starts[si] + n) for si, _srcoff, _di, _dstoff, n in copy_steps(src_lens, dst_lens))


def _reread(src_lens, dst_lens) -> int:
    """Bytes 2007's copy read from a section's start instead of from where the walk was."""
    return sum(n for _si, srcoff, _di, _dstoff, n in copy_steps(src_lens, dst_lens) if srcoff)


def _is_int(x) -> bool:
    return isinstance(x, int) and not isinstance(x, bool)


# --- d200-ex-lockstep: predict what 2007's copy delivers ---------------------------------------
class Lockstep(Exercise):
    """A sender's list and a receiver's list: which runs of the stream arrive, and used_len."""

    label = "d200-ex-lockstep"
    kind = "predict"
    minutes = 15
    what = 'a dict: {"used_len": ..., "pieces": [(first, end), ...]}'

    def make(self, rng):
        while True:
            src = [rng.randrange(1, 31) * 10 for _ in range(rng.randint(2, 4))]
            dst = [rng.randrange(5, 31) * 10 for _ in range(rng.randint(1, 3))]
            if _reread(src, dst):                     # a step must carry on inside a source section
                break
        starts = [0, *accumulate(src)]
        holds = ", ".join(f"src[{i}] bytes {starts[i]}..{starts[i + 1] - 1}" for i in range(len(src)))
        text = (f"Guest 0 sends one lguest_dma with sections of lengths {src}, to Guest 1's slot.\n"
                f"Together they hold bytes 0..{starts[-1] - 1} of one stream, in order:\n    {holds}.\n"
                f"Guest 1's only receive buffer on that key has sections of lengths {dst}.\n"
                "On 2007's Host (lguest.Host()), which runs of the stream does Guest 1 hold afterwards,\n"
                "in the order they lie in its sections, and what used_len does the sender get?\n"
                'Answer with a dict: {"used_len": a number, "pieces": [(first, end), ...]}, each piece a\n'
                "run of the stream from byte first up to, not including, byte end; runs that touch\n"
                "(one ends where the next begins) may be given as one.")
        return dict(text=text, src=src, dst=dst)

    def answer(self, p):
        return {"used_len": min(sum(p.src), sum(p.dst)), "pieces": _pieces_2007(p.src, p.dst)}

    def judge(self, answer, p):
        if not isinstance(answer, dict) or set(answer) != {"used_len", "pieces"}:
            return 'answer with a dict of exactly two keys: "used_len" and "pieces"'
        pieces = answer["pieces"]
        if not isinstance(pieces, (list, tuple)) or not all(
                isinstance(x, (list, tuple)) and len(x) == 2 and all(map(_is_int, x)) for x in pieces):
            return '"pieces" is a list of (first, end) pairs of whole numbers'
        right = self.answer(p)
        if answer["used_len"] != right["used_len"]:
            if answer["used_len"] == sum(p.src):
                return ("used_len counts the bytes copied, and the receiver has less room than the sender "
                        "offered: what does not fit is dropped")
            return "used_len is the number of bytes the copy moved: add up the steps of the walk"
        mine = _merge(tuple(x) for x in pieces)
        if mine == right["pieces"]:
            return None
        if mine == [(0, right["used_len"])]:
            return ("that is what the walk should have read; 2007's copy read every step from the start "
                    "of its source section, even when the walk was part-way into it")
        if sum(end - first for first, end in mine) != right["used_len"]:
            return "the pieces together must hold exactly as many bytes as used_len says"
        return ("walk the two lists in lockstep (show.lockstep_table plans it), and remember where "
                "2007's copy read each step from")

    def mistakes(self, p):
        right = self.answer(p)
        out = [({"used_len": right["used_len"], "pieces": [(0, right["used_len"])]},
                "start of its source section")]
        if sum(p.src) > sum(p.dst):
            out.append(({"used_len": sum(p.src), "pieces": right["pieces"]}, "less room"))
        return out


# --- d200-ex-deaf: which ring entry takes each send -------------------------------------------
def _deaf_sim(deaf, sends, skip_deaf=False, ping_fails=False, reuse=False):
    """The entry each send uses, or None. Right with every flag off; each flag is a misreading:
    ``skip_deaf`` (a deaf entry is passed over), ``ping_fails`` (an empty list is refused),
    ``reuse`` (a filled entry is free again at once)."""
    n, used, cursor, out = len(deaf), [False] * len(deaf), 0, []
    for kind in sends:
        free = [(cursor + i) % n for i in range(n) if not used[(cursor + i) % n]]
        if skip_deaf and kind == "frame":
            free = [i for i in free if not deaf[i]]
        if not free:                                   # ring full, the retry too
            out.append(None)
            continue
        i = free[0]
        if kind == "ping":
            if ping_fails:
                out.append(None)
                continue
        elif deaf[i]:                                  # a non-empty list that moved 0 bytes: failed
            out.append(None)
            continue
        else:
            used[i] = not reuse
        out.append(i)
        cursor = (i + 1) % n
    return out


class Deaf(Exercise):
    """A ring with deaf entries (empty lists) and a run of frames and pings: who takes which."""

    label = "d200-ex-deaf"
    kind = "predict"
    minutes = 15
    what = "a list: for each send, the entry index the Host used, or None"

    def make(self, rng):
        while True:
            n = rng.randint(3, 5)
            deaf = [rng.random() < 0.4 for _ in range(n)]
            sends = ["ping" if rng.random() < 0.25 else "frame" for _ in range(rng.randint(5, 7))]
            right = _deaf_sim(deaf, sends)
            if (any(deaf) and "ping" in sends and right.count(None) >= 2
                    and _deaf_sim(deaf, sends, skip_deaf=True) != right
                    and _deaf_sim(deaf, sends, ping_fails=True) != right):
                break
        ring = ", ".join(f"{i}: {'deaf' if d else 'good'}" for i, d in enumerate(deaf))
        text = (f"Guest 1 binds a ring of {n} entries to its slot's key ({ring}).\n"
                "A good entry has one section of 200 bytes; a deaf one has an empty list (len[0] = 0).\n"
                "Guest 0 then makes these sends to that key, one after another:\n"
                f"    {sends}\n"
                "A frame is one section of 100 bytes; a ping is an empty list. Guest 1 hands nothing\n"
                "back meanwhile (it writes no used_len). For each send, which entry does the Host use,\n"
                "that is, whose used_len it writes, or None when no entry takes the send?\n"
                "Answer with a list, one item per send: an entry index or None.")
        return dict(text=text, deaf=deaf, sends=sends)

    def answer(self, p):
        """Run it: the Host's own next_dma and checks decide."""
        host, g0, g1, to_1, key_1 = _pair()
        ring = g1.dma_array([[] if d else _sections(g1, [200]) for d in p.deaf])
        g1.kernel.lguest_bind_dma(key_1, ring, len(p.deaf), 1)
        frame, ping = g0.dma(_sections(g0, [100])), g0.dma([])
        out = []
        for kind in p.sends:
            mark = host.trace.mark()
            g0.kernel.lguest_send_dma(to_1, ping if kind == "ping" else frame)
            events = host.trace.since(mark)
            copies = [e for e in events if e.kind == "copy"]
            failed = any(e.kind == "transfer_failed" for e in events)
            out.append((copies[0].entry - ring) // DMA if copies and not failed else None)
        return out

    def judge(self, answer, p):
        if not isinstance(answer, (list, tuple)) or len(answer) != len(p.sends):
            return f"answer with a list of {len(p.sends)} items, one per send"
        if not all(x is None or _is_int(x) for x in answer):
            return "each item is an entry index (0, 1, ...) or None"
        answer = list(answer)
        if answer == self.answer(p):
            return None
        for wrong, hint in self.mistakes(p):
            if answer == wrong:
                return hint
        return ("follow next_dma: the Host searches from it for the first entry whose used_len is 0, "
                "and moves it on only when the transfer is delivered")

    def mistakes(self, p):
        right = self.answer(p)
        out = []
        for flags, hint in (({"skip_deaf": True}, "a transfer that fails leaves next_dma where it was, "
                             "and a deaf entry's used_len stays 0: the next search stops at it again"),
                            ({"ping_fails": True}, "an empty list may move nothing and still be delivered"),
                            ({"reuse": True}, "nothing is handed back: a filled entry keeps its used_len")):
            wrong = _deaf_sim(p.deaf, p.sends, **flags)
            if wrong != right and all(wrong != w for w, _ in out):
                out.append((wrong, hint))
        return out


# --- d200-ex-fix: write the fixed copy -------------------------------------------------------
def _copy_2007(src, dst_lens):
    """2007's copy on bytes: every step reads from the start of its source section."""
    out = [bytearray() for _ in dst_lens]
    for si, _srcoff, di, _dstoff, n in copy_steps([len(s) for s in src], list(dst_lens)):
        out[di] += src[si][:n]
    return [bytes(o) for o in out]


def _copy_padded(src, dst_lens):
    """The fixed walk, but every section returned at its full length, zeros after the data."""
    got = _copy_fixed_ref(src, dst_lens)
    return [g + bytes(n - len(g)) for g, n in zip(got, dst_lens)]


def _copy_fixed_ref(src, dst_lens):
    out = [bytearray() for _ in dst_lens]
    for si, srcoff, di, _dstoff, n in copy_steps([len(s) for s in src], list(dst_lens)):
        out[di] += src[si][srcoff:srcoff + n]
    return [bytes(o) for o in out]


def _copy_unbounded(src, dst_lens):
    """No truncation: whatever does not fit is put in the last section anyway."""
    got = _copy_fixed_ref(src, dst_lens)
    extra = b"".join(src)[sum(len(g) for g in got):]
    return got[:-1] + [got[-1] + extra]


class Fix(Exercise):
    """copy_fixed(src, dst_lens): the lockstep copy with the one-word fix, checked against the
    model's own fixed copy (Host(copy_data_fixed=True)) on the cases of the seed."""

    label = "d200-ex-fix"
    kind = "implement"
    points = 2
    minutes = 25
    what = "your function copy_fixed (the function itself, not a call)"

    CASES = 6

    def make(self, rng):
        cases = []
        while len(cases) < self.CASES:
            src = [rng.randint(1, 1500) for _ in range(rng.randint(1, 5))]
            dst = [rng.randint(1, 1500) for _ in range(rng.randint(1, 4))]
            want_bug = len(cases) < 3                 # three cases where 2007's copy goes wrong
            want_room = len(cases) == 3               # one where the receiver has room to spare
            want_drop = len(cases) == 4               # one where it has too little, and drops
            if want_bug and not _reread(src, dst):
                continue
            if want_room and sum(dst) <= sum(src) or want_drop and sum(dst) >= sum(src):
                continue
            cases.append((src, dst))
        rng.shuffle(cases)
        data = [[rng.randbytes(n) for n in src] for src, _ in cases]
        shown = "\n".join(f"    case {k}: sender {src} -> receiver {dst}" for k, (src, dst) in enumerate(cases))
        text = ("Write copy_fixed(src, dst_lens): src is the sender's sections as a list of bytes objects,\n"
                "dst_lens the receiver's section lengths (a list of whole numbers). Return a list with one\n"
                "bytes object per receiver section: exactly the bytes the fixed lockstep copy writes into\n"
                "it, in order (a section the copy does not fill completely holds fewer bytes; one it never\n"
                "reaches holds b''). The check runs your function on these cases (section lengths; the\n"
                "bytes are random) and compares with what Guest 1 receives from a real send on\n"
                "lguest.Host(copy_data_fixed=True):\n" + shown)
        return dict(text=text, cases=cases, data=data)

    def answer(self, p):
        return _copy_fixed_ref

    def expected(self, p):
        """What each receiver section holds after a real send on the fixed Host, case by case."""
        out = []
        for (src_lens, dst_lens), src in zip(p.cases, p.data):
            host, g0, g1, to_1, key_1 = _pair(fixed=True)
            dst = _sections(g1, dst_lens)
            ring = g1.dma_array([dst])
            g1.kernel.lguest_bind_dma(key_1, ring, 1, 1)
            msg = g0.dma(_sections(g0, src_lens, b"".join(src)))
            g0.kernel.lguest_send_dma(to_1, msg)
            used, held, at = g1.memory.u32(ring), [], 0
            for addr, n in dst:
                k = max(0, min(n, used - at))
                held.append(g1.memory.read(addr, k) if k else b"")
                at += n
            out.append(held)
        return out

    def judge(self, fn, p):
        if not callable(fn):
            return "put the function itself in the answer cell (copy_fixed, not copy_fixed(...))"
        expected = self.expected(p)
        for k, ((src_lens, dst_lens), src, want) in enumerate(zip(p.cases, p.data, expected)):
            got = fn([bytes(s) for s in src], list(dst_lens))
            where = f"case {k} ({src_lens} -> {dst_lens})"
            if not isinstance(got, (list, tuple)) or len(got) != len(dst_lens):
                return f"{where}: return a list with one bytes object per receiver section"
            if not all(isinstance(g, (bytes, bytearray)) for g in got):
                return f"{where}: each item of the list is a bytes object"
            got = [bytes(g) for g in got]
            if got == want:
                continue
            if got == _copy_2007(src, dst_lens):
                return (f"{where}: that is 2007's copy, which reads each step from the start of its source "
                        "section; read from where the walk has reached in it (srcoff)")
            if [len(g) for g in got] == list(dst_lens) and [len(w) for w in want] != list(dst_lens):
                return (f"{where}: a section holds only the bytes copied into it; one the copy does not "
                        "fill is shorter, and one it never reaches is empty")
            if sum(map(len, got)) > sum(map(len, want)):
                return (f"{where}: you returned more bytes than the receiver has room for; the walk stops "
                        "when either list ends, and the rest is dropped")
            return f"{where}: the bytes differ; step through show.lockstep_table for these lengths"
        return None

    def mistakes(self, p):
        return [(_copy_2007, "that is 2007's copy"), (_copy_padded, "a section holds only the bytes"),
                (_copy_unbounded, "more bytes than the receiver has room for")]


# --- d200-ex-reread: how many bytes 2007's copy re-reads, measured ---------------------------
class Reread(Explore):
    """Several sends into a ring, handed back after each: the bytes re-read, from the trace."""

    label = "d200-ex-reread"
    minutes = 20
    tolerance = 0.01                                   # a count of bytes: as good as exact
    what = "a number: the bytes re-read, summed over every copy"

    def make(self, rng):
        while True:
            ring = [[rng.randrange(2, 31) * 50 for _ in range(rng.randint(1, 3))] for _ in range(rng.randint(2, 3))]
            sends = [[rng.randrange(1, 31) * 50 for _ in range(rng.randint(1, 4))] for _ in range(rng.randint(4, 6))]
            right = sum(_reread(s, ring[i % len(ring)]) for i, s in enumerate(sends))
            first = sum(_reread(s, ring[0]) for s in sends)
            if right and abs(first - right) > 0.05 * right:
                break
        text = (f"Guest 1 binds a ring of {len(ring)} entries to its slot's key; entry i has sections of\n"
                f"these lengths: {ring}.\n"
                f"Guest 0 then sends these {len(sends)} lists to that key, one after another (section lengths):\n"
                f"    {sends}\n"
                "After each send Guest 1 hands its buffers back (it writes 0 into every entry's used_len).\n"
                "On 2007's Host (lguest.Host()), how many bytes do the copies read from the wrong place,\n"
                "summed over every send? Measure it with the trace: each copy event carries reread=N.\n"
                "Answer with a number.")
        return dict(text=text, ring=ring, sends=sends)

    def answer(self, p):
        host, _copies = self.run(p)
        return sum(e.fields.get("reread", 0) for e in _copies)

    def run(self, p, fixed=False):
        """The scenario on the model; returns the Host and the copy events."""
        host, g0, g1, to_1, key_1 = _pair(fixed=fixed)
        ring = g1.dma_array([_sections(g1, lens) for lens in p.ring])
        g1.kernel.lguest_bind_dma(key_1, ring, len(p.ring), 1)
        mark = host.trace.mark()
        for lens in p.sends:
            g0.kernel.lguest_send_dma(to_1, g0.dma(_sections(g0, lens)))
            for i in range(len(p.ring)):
                g1.memory.set_u32(ring + i * DMA, 0)
        return host, host.trace.filter("copy", since=mark)

    def mistakes(self, p):
        right = self.answer(p)
        _host, copies = self.run(p)
        out = [(0, "copy_data_fixed"),
               (sum(e.bytes for e in copies), "only the bytes read from the wrong place"),
               (sum(_reread(s, p.ring[0]) for s in p.sends), "next_dma")]
        kept = []
        for w, h in out:                               # two misreadings may give one number
            if not self.same(w, right) and all(w != k for k, _ in kept):
                kept.append((w, h))
        return kept

    def judge(self, answer, p):
        right = self.answer(p)
        if self.same(answer, right):
            return None
        if isinstance(answer, bool) or not isinstance(answer, (int, float)):
            return "answer with a number"
        hints = {0: "0 is what a Host with copy_data_fixed=True re-reads; measure on 2007's Host, lguest.Host()"}
        _host, copies = self.run(p)
        if self.same(answer, sum(e.bytes for e in copies)):
            return "that counts every byte copied; count only the bytes read from the wrong place (reread=)"
        if answer == 0:
            return hints[0]
        if self.same(answer, sum(_reread(s, p.ring[0]) for s in p.sends)):
            return ("each send takes the entry next_dma points at, and the Host moves next_dma on after "
                    "every delivery: the sends go round the ring")
        return "sum the reread field of every copy event of these sends (a copy with none re-read nothing)"


lockstep, deaf, fix, reread = Lockstep(), Deaf(), Fix(), Reread()
EXERCISES = (lockstep, deaf, fix, reread)
