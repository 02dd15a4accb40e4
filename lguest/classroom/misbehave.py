"""The checkable exercises of "When Guests misbehave": where list_del()'s two poison stores land,
who is left waiting for lguest_lock after a Host oops, and an unbind that cannot unlink twice.

Every right answer comes from the model itself: a fresh ``lguest.Host``, real BIND_DMA and
SEND_DMA hypercalls, and the Host's trace (``poison_write``, ``oops``, ``blocked``). The wrong
answers the hints name are the usual misreadings of the 2.6.23 code.
"""
from __future__ import annotations

import contextlib

from .. import abi
from ..errors import LauncherStuck
from . import Exercise

LIST_POISON1, LIST_POISON2 = 0x00100100, 0x00200200     # include/linux/poison.h, 2.6.23
STORES = (LIST_POISON1 + 4, LIST_POISON2)                 # next->prev, then prev->next
PLACES = ("RAM", "descriptor page", "device page", "oops")


def _launch(host, mem_mb, devices=(), drivers=()):
    return host.launch(mem_mb=mem_mb, devices=list(devices), drivers=drivers)


def _place(memory, addr: int) -> str:
    """Which part of a Guest's memory holds ``addr``: RAM, the descriptor page or a device page."""
    name = memory.region_at(addr).name
    return name if name in ("RAM", "descriptor page") else "device page"


def _double_unbind(guest) -> None:
    """Bind a one-entry array to a private key of the Guest's own RAM, then unbind it twice."""
    arr = guest.dma([(guest.alloc(64), 64)])
    key = guest.alloc(16, align=4)
    guest.hypercall(abi.LHCALL_BIND_DMA, key, arr, (1 << 8) | 5)
    guest.hypercall(abi.LHCALL_BIND_DMA, key, arr, 0)
    guest.hypercall(abi.LHCALL_BIND_DMA, key, arr, 0)


# --- misbehave-ex-poison: where the two stores land ------------------------------------------
class Poison(Exercise):
    """A seeded Guest size, device list and CONFIG_DEBUG_LIST: the fate of list_del()'s stores."""

    label = "misbehave-ex-poison"
    kind = "predict"
    minutes = 15
    what = 'a list such as ["RAM", "descriptor page"], one item per store that happens, "oops" where the Host oopses'

    def make(self, rng):
        mem_mb = rng.choice([1, 1, 2, 2, 3, 4, 8, 16])
        devices = [f"--sharenet=lan{i}" for i in rng.sample(range(6), rng.randrange(0, 4))]
        rng.shuffle(devices)
        debug = rng.random() < 0.2
        text = (f"A Guest is launched with mem_mb={mem_mb} and devices={devices!r} on "
                f"lguest.Host(debug_list={debug}). It binds an array to a key and unbinds the same key and\n"
                "array twice. Follow list_del() on the stale entry: the first store goes to next->prev\n"
                "(LIST_POISON1 + 4), the second to prev->next (LIST_POISON2). Answer with a list, in order,\n"
                'one item per step the Host takes: "RAM", "descriptor page" or "device page" for a store\n'
                'that lands in the Guest\'s memory, "oops" where the Host oopses (nothing after an oops\n'
                "runs).")
        return dict(text=text, mem_mb=mem_mb, devices=devices, debug=debug)

    def answer(self, p):
        import lguest                                    # the facade, imported late (it boots kernels)
        host = lguest.Host(debug_list=p.debug)
        guest = _launch(host, p.mem_mb, p.devices)
        mark = host.trace.mark()
        _double_unbind(guest)
        out = []
        for e in host.trace.since(mark):
            if e.kind == "poison_write":
                out.append(_place(guest.memory, e.addr))
            elif e.kind == "oops":
                out.append("oops")
        return out

    def judge(self, answer, p):
        if not isinstance(answer, (list, tuple)) or not all(isinstance(a, str) for a in answer):
            return 'answer with a list of strings, e.g. ["RAM", "oops"]'
        unknown = [a for a in answer if a not in PLACES]
        if unknown:
            return f"each item is one of {list(PLACES)}; {unknown[0]!r} is not"
        answer, right = list(answer), self.answer(p)
        if answer == right:
            return None
        if p.debug:
            return ("CONFIG_DEBUG_LIST makes list_del() look at its neighbours before it stores anything: "
                    "what does it find in a stale entry's prev?")
        if "oops" in answer and answer.index("oops") < len(answer) - 1:
            return "nothing of the hypercall runs after an oops: the list ends there"
        if answer == list(reversed(right)):
            return "mind the order: __list_del() writes next->prev first, then prev->next"
        if "device page" in answer:
            return ("a device page lies above the descriptor page; with RAM a whole number of MiB, "
                    "can either poison address reach one?")
        if "oops" not in answer and "oops" in right:
            return "a store only lands if the Guest's memory reaches that high: compare each address with the top"
        if "oops" in answer and "oops" not in right:
            return ("the Host faults only where nothing is mapped: here both addresses are below the Guest's top")
        return "work out where RAM ends and the descriptor page lies for this size, then place each address"

    def mistakes(self, p):
        right = self.answer(p)
        out = []
        if p.debug:
            out.append((["RAM", "RAM"] if right != ["RAM", "RAM"] else ["oops", "RAM"], "CONFIG_DEBUG_LIST"))
        else:
            if len(right) == 2 and right[0] != right[1] and "oops" not in right:
                out.append((list(reversed(right)), "mind the order"))
            if "oops" in right:
                out.append((["RAM", "RAM"], "compare each address with the top"))
            if right == ["RAM", "RAM"]:
                out.append((["RAM", "oops"], "both addresses are below the Guest's top"))
            if p.devices and right == ["descriptor page", "oops"]:
                out.append((["descriptor page", "device page"], "a device page lies above the descriptor page"))
        return out


# --- misbehave-ex-blocked: who waits for lguest_lock after the oops --------------------------
ACTIONS = ("send", "bind", "bind irq 40", "getdma", "halt", "hypercall 99")
LOCKING = ("send", "bind", "getdma", "hypercall 99")        # those that reach mutex_lock(&lguest_lock)


class Blocked(Exercise):
    """A seeded sequence of Guests' calls around one Host oops: which Guests end up blocked."""

    label = "misbehave-ex-blocked"
    kind = "predict"
    minutes = 15
    what = "a sorted list of Guest ids, e.g. [0, 3]"

    def make(self, rng):
        n = rng.randrange(3, 6)
        bad = rng.randrange(n)
        steps = [(rng.randrange(n), rng.choice(ACTIONS)) for _ in range(rng.randrange(4, 8))]
        at = rng.randrange(1, len(steps))
        # the bad Guest must live to make its mistake: no fatal call of its own before it
        steps = [(g, "halt" if g == bad and what == "hypercall 99" and i < at else what)
                 for i, (g, what) in enumerate(steps)]
        steps.insert(at, (bad, "unbind twice"))
        lines = "\n".join(f"    {i + 1}. Guest {g}: {what}" for i, (g, what) in enumerate(steps))
        text = (f"{n} Guests share lan0 on one Host: Guest {bad} has 1 MiB of RAM, the others 4 MiB, and\n"
                "each has a receive ring bound to its own LAN slot. These happen in order (send: a\n"
                "SEND_DMA to the next Guest's slot; bind: a BIND_DMA with irq 5; bind irq 40: the same with\n"
                "irq 40; getdma: the Guest's Launcher asks for its buffer by LHREQ_GETDMA; halt:\n"
                "LHCALL_HALT; hypercall 99: a hypercall number that does not exist; unbind twice: BIND_DMA\n"
                "with irq 0 on the same key and array, twice). A Guest that is dead or blocked makes no more\n"
                "calls; its later steps are skipped.\n" + lines + "\n"
                "Which Guests are blocked at the end? Answer with a sorted list of ids.")
        return dict(text=text, n=n, bad=bad, steps=steps)

    def run(self, p):
        import lguest
        host = lguest.Host()
        guests = [host.launch(mem_mb=1 if i == p.bad else 4, sharenet=["lan0"], drivers=()) for i in range(p.n)]
        lan = [int(g.devices[0]["pfn"]) << abi.PAGE_SHIFT for g in guests]
        rings = []
        for g in guests:
            arr = g.dma([(g.alloc(64), 64)])
            g.hypercall(abi.LHCALL_BIND_DMA, lan[g.id] + 4 * g.id, arr, (1 << 8) | 5)
            rings.append(arr)
        msgs = [g.dma([(g.alloc(16), 16)]) for g in guests]
        for who, what in p.steps:
            g = guests[who]
            if g.dead is not None or host.lgs[who].blocked is not None:
                continue
            to = (who + 1) % p.n
            if what == "send":
                g.hypercall(abi.LHCALL_SEND_DMA, lan[who] + 4 * to, msgs[who])
            elif what in ("bind", "bind irq 40"):
                irq = 40 if what.endswith("40") else 5
                g.hypercall(abi.LHCALL_BIND_DMA, lan[who] + 4 * (20 + who), rings[who], (1 << 8) | irq)
            elif what == "getdma":
                with contextlib.suppress(LauncherStuck):    # it waits for ever for the lock
                    g.launcher.get_dma_buffer(lan[who] + 4 * who)
            elif what == "halt":
                g.hypercall(abi.LHCALL_HALT)
            elif what == "hypercall 99":
                g.hypercall(99)
            else:
                _double_unbind(g)
        return host, guests

    def answer(self, p):
        host, guests = self.run(p)
        return [g.id for g in guests if host.lgs[g.id].blocked is not None]

    def _after_oops(self, p):
        at = p.steps.index((p.bad, "unbind twice"))
        return at, p.steps[at + 1:]

    def judge(self, answer, p):
        if not isinstance(answer, (list, tuple)) or not all(isinstance(a, int) and not isinstance(a, bool)
                                                            for a in answer):
            return "answer with a list of Guest ids (whole numbers)"
        answer, right = sorted(answer), self.answer(p)
        if answer == right:
            return None
        if p.bad not in answer:
            return "the Guest whose hypercall oopsed is stuck too: its Launcher's task died inside the Host"
        if answer == list(range(p.n)):
            return "not everyone waits: only a call that asks for lguest_lock after the oops does"
        _, after = self._after_oops(p)
        naive = sorted({p.bad} | {g for g, _ in after})
        if answer == naive:
            return ("not every call takes lguest_lock: look at what BIND_DMA checks before it asks for it, "
                    "and at which hypercalls never ask")
        if set(answer) < set(right):
            return ("someone you left out asked for lguest_lock after the oops: remember that a Guest the "
                    "Host kills has its bindings released, and that takes the lock too")
        return "go through the steps after the oops one by one: does each call ask for lguest_lock?"

    def mistakes(self, p):
        right = self.answer(p)
        _, after = self._after_oops(p)
        naive = sorted({p.bad} | {g for g, _ in after})
        out = [(w, h) for w, h in (([x for x in right if x != p.bad], "the Guest whose hypercall oopsed"),
                                   (list(range(p.n)), "not everyone waits"),
                                   (naive, "not every call takes lguest_lock")) if w != right]
        seen, unique = [], []
        for w, h in out:                    # a wrong answer may match two descriptions: keep the first
            if w not in seen:
                seen.append(w)
                unique.append((w, h))
        return unique


# --- misbehave-ex-unbind: an unbind that cannot unlink twice ---------------------------------
def unbind_2007(table, key, dmas):
    """2.6.23's search: the first entry whose key and array match, live or not."""
    for i, entry in enumerate(table):
        if entry is not None and entry[0] == key and entry[1] == dmas:
            return i
    return None


def unbind_right(table, key, dmas):
    """The first *live* entry (irq not 0) whose key and array both match."""
    for i, entry in enumerate(table):
        if entry is not None and entry[2] and entry[0] == key and entry[1] == dmas:
            return i
    return None


def unbind_last(table, key, dmas):
    found = None
    for i, entry in enumerate(table):
        if entry is not None and entry[2] and entry[0] == key and entry[1] == dmas:
            found = i
    return found


def unbind_key_only(table, key, dmas):
    for i, entry in enumerate(table):
        if entry is not None and entry[2] and entry[0] == key:
            return i
    return None


TAIL_KEYS = (0x81000, 0x81100, 0x81200)
TAIL_ARRAYS = (0x91000, 0x91200, 0x91400, 0x91600)


class Unbind(Exercise):
    """unbind(table, key, dmas): which entry to unlink, run inside the Host on a seeded sequence."""

    label = "misbehave-ex-unbind"
    kind = "implement"
    points = 2
    minutes = 20
    what = "your function unbind (the function itself, not a call)"

    def make(self, rng):
        keys = [0x80000 + 0x100 * i for i in range(3)]
        arrays = [0x90000 + 0x200 * i for i in range(3)]
        ops, live = [], []
        while len(ops) < 10:
            roll = rng.random()
            if roll < 0.45 or not live:
                k, a = rng.choice(keys), rng.choice(arrays)
                ops.append(("bind", k, a, rng.randrange(1, 32)))
                live.append((k, a))
            elif roll < 0.85:
                k, a = rng.choice(live)
                live.remove((k, a))
                ops.append(("unbind", k, a, 0))
                if rng.random() < 0.5:
                    ops.append(("unbind", k, a, 0))          # the same key and array again
            else:
                ops.append(("unbind", rng.choice(keys), rng.choice(arrays), 0))
        # every instance ends with the same key bound twice to one array and once to another, one
        # unbind of each, then a double unbind: the cases the usual slips get wrong
        k, k2 = rng.sample(TAIL_KEYS, 2)
        a, a2, a3 = rng.sample(TAIL_ARRAYS, 3)
        ops += [("bind", k, a, 7), ("bind", k, a, 9), ("bind", k, a2, 11), ("unbind", k, a2, 0),
                ("unbind", k, a, 0), ("bind", k2, a3, 5), ("unbind", k2, a3, 0), ("unbind", k2, a3, 0)]
        lines = "\n".join(f"    {what} key={k:#x} array={a:#x}" + (f" irq={irq}" if what == "bind" else "")
                          for what, k, a, irq in ops)
        text = ("Write unbind(table, key, dmas): table is a Guest's 32 DMA table entries, each None (never\n"
                "used) or a tuple (key, dmas, irq); an entry with irq 0 is free. Return the index of the\n"
                "entry the Host should unlink, or None if there is none. The check runs these BIND_DMA\n"
                "calls of one Guest on a real Host, asking your function at every unbind (irq 0), and\n"
                "compares what each call returns, the table left behind, the key references and the\n"
                "Host's health with the right unbind's:\n" + lines)
        return dict(text=text, ops=ops)

    def answer(self, p):
        return unbind_right

    def run(self, fn, p):
        """The sequence on a fresh Host, ``fn`` choosing at each unbind: what the Host ends up with."""
        import lguest
        from ..host import dma
        from ..host.keys import get_futex_key
        host = lguest.Host()
        guest = host.launch(mem_mb=4, drivers=())
        lg = host.lgs[guest.id]
        returns, unlinked = [], []
        for what, key, dmas, irq in p.ops:
            if what == "bind":
                returns.append(guest.hypercall(abi.LHCALL_BIND_DMA, key, dmas, (1 << 8) | irq))
                unlinked.append(None)
                continue
            # bind_dma()'s irq-0 branch, with the student's search in place of unbind_dma()'s
            fkey = get_futex_key(lg.memory, lg.id, key)
            dma.get_key_refs(host, lg, fkey)
            table = [None if e is None else (e.ukey, e.dmas, e.interrupt) for e in lg.dma]
            i = fn(list(table), key, dmas)
            if i is None:
                returns.append(0)
                unlinked.append(None)
            else:
                entry = lg.dma[int(i)]
                unlinked.append((int(i), entry.ukey, entry.dmas, entry.interrupt))
                dma.unlink_dma(host, lg, entry)
                returns.append(1)
            dma.drop_key_refs(host, lg, fkey)
            if host.lock_holder is not None:
                break
        live = [(i, e.ukey, e.dmas, e.interrupt) for i, e in enumerate(lg.dma) if e is not None and e.interrupt]
        poisoned = bool(host.trace.filter("poison_write")) or host.lock_holder is not None
        return dict(returns=returns, unlinked=unlinked, live=live, refs=dict(host.key_refs), poisoned=poisoned,
                    corruption=list(host.corruption))

    def judge(self, fn, p):
        if not callable(fn):
            return "put the function itself in the answer cell (unbind, not unbind(...))"
        got, want = self.run(fn, p), self.run(unbind_right, p)
        if got["poisoned"] or got["corruption"]:
            return ("your unbind unlinked an entry that was already off its list: list_del() ran on it again "
                    "and its key's references were dropped twice (that is 2007's bug; a free entry has irq 0)")
        for n, (mine, right) in enumerate(zip(got["unlinked"], want["unlinked"])):
            if mine == right:
                continue
            what, key, dmas, _ = p.ops[n]
            where = f"call {n + 1} (unbind key={key:#x} array={dmas:#x})"
            if mine is not None and (mine[1], mine[2]) != (key, dmas):
                return f"{where} unlinked an entry of another key or array: an unbind needs both the key and the array to match"
            if mine is not None and right is not None:
                return (f"{where} unlinked another entry of the same key and array: 2007 took the first match "
                        "in table order; keep that")
            return f"{where}: did your search find the live entry that matches, and only that?"
        if got["returns"] != want["returns"] or got["live"] != want["live"]:
            return "your unbind's choices differ from the right one's; check what it returns when nothing matches"
        if got["refs"] != want["refs"]:
            return "the key references do not balance: unlink each binding exactly once"
        return None

    def mistakes(self, p):
        return [(unbind_2007, "2007's bug"), (unbind_key_only, "both the key and the array"),
                (unbind_last, "the first match in table order")]


poison, blocked, unbind = Poison(), Blocked(), Unbind()
EXERCISES = (poison, blocked, unbind)
