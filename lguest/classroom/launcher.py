"""The checkable exercises of "The Launcher's side": where a SEND_DMA goes, what a block request
leaves behind, and when three ^C end the Launcher.

Every right answer comes from the model itself: the Host's routing rule (``dma.route``, the one
``send_dma`` follows), a real block request served by a real Launcher on a scratch image, and
a console read at each time the instance names. The wrong answers the hints name are the usual
misreadings of the Launcher's code.
"""
from __future__ import annotations

import os
import tempfile

from .. import abi
from . import Exercise

PAGE = abi.PAGE_SIZE
SECTOR = abi.SECTOR_SIZE
CTRL_C = "\x03"
PLACES = ("launcher", "nowhere", "killed")


# --- launcher-ex-route: where a SEND_DMA goes ----------------------------------------------
def _lan_page(guest, lan: str) -> int:
    """The physical address at which ``guest`` maps LAN ``lan``'s page."""
    for device in guest.launcher.devices.devices:
        if device.name == f"net {lan}":
            return device.mem
    raise ValueError(f"{guest!r} is not on {lan}")


class Route(Exercise):
    """A few Guests on one or two LANs; for each key, where the sender's SEND_DMA goes."""

    label = "launcher-ex-route"
    kind = "predict"
    minutes = 15
    what = 'a list with one item per key: "launcher", "nowhere", "killed" or "gN" (a Guest id)'

    def make(self, rng):
        n = rng.randrange(2, 4)
        lines = []
        for g in range(n):
            lans = ["lan0"] + (["lan1"] if rng.random() < 0.5 else [])
            rng.shuffle(lans)
            lines.append((g, rng.choice([1, 2, 4]), [f"--sharenet={lan}" for lan in lans]))
        sender = rng.randrange(n)
        mem_mb, options = lines[sender][1], lines[sender][2]
        lan0 = (mem_mb << 20) + PAGE * (1 + options.index("--sharenet=lan0"))
        others = [g for g in range(n) if g != sender]
        candidates = [
            ("console key", 0),
            ("RAM", rng.choice([0x1000, 0x2000, 0x8000, 0x10000])),
            ("descriptor page", mem_mb << 20),
            ("own slot", lan0 + 4 * sender),
            ("other slot", lan0 + 4 * rng.choice(others)),
            ("empty slot", lan0 + 4 * rng.randrange(n, 20)),
            ("misaligned", lan0 + 4 * rng.choice(others) + rng.choice([1, 2, 3])),
            ("above top", lan0 + PAGE * rng.randrange(2, 5)),
        ]
        picked = sorted(rng.sample(range(len(candidates)), 6))
        keys = [candidates[i][1] for i in picked]
        setup = "\n".join(f"    Guest {g}: lguest {' '.join(opts)} {mb}" for g, mb, opts in lines)
        text = (f"{n} Guests are launched on one Host, in this order (so with these ids), each booting\n"
                "every driver, so every console has bound its input buffer at key 0 and every network\n"
                "driver its receive ring at its own slot of each LAN:\n" + setup + "\n"
                f"Guest {sender} makes one SEND_DMA to each of these keys (each on its own, from the state\n"
                "above, so a send that would kill does not affect the next one):\n    "
                + ", ".join(f"{k:#x}" for k in keys) + "\n"
                'For each key say where the Host sends it: "launcher" (the sender\'s own Launcher), "gN"\n'
                '(the binding of Guest N), "nowhere", or "killed" (the sender dies). Answer with a list.')
        return dict(text=text, guests=lines, sender=sender, keys=keys)

    def world(self, p):
        """The instance's Guests, launched as the text says (the facade, imported late)."""
        import lguest
        host = lguest.Host()
        guests = [host.launch(mem_mb=mb, devices=opts) for _, mb, opts in p.guests]
        return host, guests

    def answer(self, p):
        from ..host import dma
        host, guests = self.world(p)
        lg = host.lgs[guests[p.sender].id]
        out = []
        for key in p.keys:
            futex, where = dma.route(host, lg, key)
            if futex is None:
                out.append("killed")
            elif where is dma.TO_LAUNCHER:
                out.append("launcher")
            else:
                out.append("nowhere" if where is None else f"g{where.guestid}")
        return out

    def judge(self, answer, p):
        if not isinstance(answer, (list, tuple)) or not all(isinstance(a, str) for a in answer):
            return 'answer with a list of strings, e.g. ["launcher", "g1", "nowhere"]'
        if len(answer) != len(p.keys):
            return f"give one item per key: there are {len(p.keys)} keys"
        bad = [a for a in answer if a not in PLACES and not (a[:1] == "g" and a[1:].isdigit())]
        if bad:
            return f'each item is "launcher", "nowhere", "killed" or "gN"; {bad[0]!r} is not'
        right = self.answer(p)
        mine = f"g{p.sender}"
        for got, want, key in zip(answer, right, p.keys):
            if got == want:
                continue
            if want == "launcher" and got.startswith("g"):
                return (f"key {key:#x}: a private key goes to the sender's own Launcher, whatever is "
                        "bound there; only its Launcher's GETDMA ever finds such a binding")
            if want == "nowhere" and got == mine:
                return (f"key {key:#x}: on a shared key the Host looks only for another Guest's "
                        "binding; it never delivers to the sender itself")
            if want == "killed":
                return (f"key {key:#x}: the Host turns every key into a futex key first; what does "
                        "get_futex_key() need of the address?")
            if got == "killed":
                return f"key {key:#x}: this address is a good key: 4-byte aligned and mapped"
            if want == "launcher":
                return (f"key {key:#x}: is this address in a page of the LAN file, or in memory "
                        "private to the sender's Launcher?")
            return (f"key {key:#x}: work out which LAN page the address falls in, for the sender's "
                    "layout, and which slot of it; then who has bound that slot")
        return None

    def mistakes(self, p):
        right = self.answer(p)
        mine = f"g{p.sender}"
        out = []
        if 0 in p.keys:
            out.append(([mine if k == 0 else r for k, r in zip(p.keys, right)], "whatever is bound there"))
        own = [i for i, r in enumerate(right) if r == "nowhere" and p.keys[i] % 4 == 0]
        if own:
            wrong = list(right)
            wrong[own[0]] = mine
            out.append((wrong, "never delivers to the sender itself"))
        killed = [i for i, r in enumerate(right) if r == "killed"]
        if killed:
            wrong = list(right)
            wrong[killed[0]] = "nowhere"
            out.append((wrong, "get_futex_key()"))
        return out


# --- launcher-ex-block: what a block request leaves ----------------------------------------
class Block(Exercise):
    """One block request on a small image: the result field and the reply's used_len after it."""

    label = "launcher-ex-block"
    kind = "predict"
    minutes = 15
    what = "a pair (result, reply used_len) of whole numbers"

    def make(self, rng):
        sectors = rng.randrange(4, 17)
        before = rng.sample(["--sharenet=lan0", "--sharenet=lan1", "--tunnet=10.0.0.254"], rng.randrange(0, 3))
        write = rng.random() < 0.5
        count = rng.randrange(1, 5)
        shape = rng.choice(["inside", "inside", "straddles", "past", "at end"])
        if shape == "inside":
            sector = rng.randrange(0, sectors - count + 1)
        elif shape == "straddles":
            count = max(count, 2)
            sector = sectors - rng.randrange(1, count)
        elif shape == "past":
            sector = sectors + rng.randrange(1, 4)
        else:
            sector = sectors
        devices = before + ["--block=disk.img"]
        text = (f"A Guest is launched with {' '.join(devices)} and a disk image of {sectors} sectors\n"
                f"({sectors * SECTOR} bytes). Its driver asks for one {'write' if write else 'read'}: the block page "
                f"says type {int(write)}, sector {sector}, bytes {count * SECTOR}, result 0. The reply DMA "
                "bound at the page's key is "
                + (f"one section of {count * SECTOR} bytes, and the driver sends an empty ping. "
                   if not write else "an empty list, and the driver sends its data in one section. ")
                + "The Launcher serves the request, or exits. What are the block page's result and the "
                "reply DMA's used_len afterwards? Answer with a pair (result, used_len).")
        return dict(text=text, sectors=sectors, devices=devices, write=write, sector=sector,
                    nbytes=count * SECTOR, irq=len(before) + 1)

    def answer(self, p):
        return block_request(p.sectors, p.devices, p.write, p.sector, p.nbytes)["outcome"]

    def judge(self, answer, p):
        if (not isinstance(answer, (list, tuple)) or len(answer) != 2
                or not all(isinstance(a, int) and not isinstance(a, bool) for a in answer)):
            return "answer with a pair of whole numbers: (result, reply used_len)"
        right = self.answer(p)
        if tuple(answer) == right:
            return None
        off, size = p.sector * SECTOR, p.sectors * SECTOR
        if off >= size:
            return ("the Launcher looks at the offset before it does anything else, GETDMA included; "
                    "what does it do with one at or past the end?")
        if p.write and off + p.nbytes > size:
            if answer[0] in (1, 2):
                return ("a write is written first and checked after; one that ran past the end stops "
                        "the Launcher before it sets a result")
            return "the Launcher asked for the reply buffer before it wrote: what did GETDMA leave in it?"
        if answer[0] != right[0]:
            return "result is 1 when the bytes moved equal the page's bytes field, else 2"
        return ("for a read the reply's used_len is what the Launcher read; for a write it writes 0 "
                "there: the data went the other way")

    def mistakes(self, p):
        right = self.answer(p)
        off, size = p.sector * SECTOR, p.sectors * SECTOR
        if off >= size:
            return [((2, 0), "looks at the offset before")]
        if p.write and off + p.nbytes > size:
            return [((2, 0), "written first and checked after"), ((0, 0), "what did GETDMA leave")]
        if not p.write and off + p.nbytes > size:
            return [((1, p.nbytes), "result is 1 when")]
        if p.write:
            return [((1, p.nbytes), "for a write it writes 0")]
        return [((2, right[1]), "result is 1 when")]


def block_request(sectors: int, devices, write: bool, sector: int, nbytes: int) -> dict:
    """Serve one hand-made block request on a fresh image of ``sectors`` sectors "a", "b", ...

    Returns the outcome (result, reply used_len), the image's sectors (first byte of each) and
    the Guest's death message, if any."""
    import lguest
    with tempfile.TemporaryDirectory(prefix="lguest-launcher-") as workdir:
        path = os.path.join(workdir, "disk.img")
        with open(path, "wb") as f:
            f.write(b"".join(bytes([ord("a") + i % 26]) * SECTOR for i in range(sectors)))
        opts = [f"--block={path}" if d == "--block=disk.img" else d for d in devices]
        host = lguest.Host()
        guest = host.launch(mem_mb=1, devices=opts, drivers=())
        disk = next(d for d in guest.launcher.devices.devices if d.type == abi.LGUEST_DEVICE_T_BLOCK)
        page = guest.memory.struct_at(disk.mem, abi.lguest_block_page)
        buf = guest.alloc(PAGE, align=PAGE)
        reply = guest.dma([] if write else [(buf, nbytes)])
        guest.hypercall(abi.LHCALL_BIND_DMA, disk.mem, reply, (1 << 8) | (disk.index + 1))
        guest.memory.write(buf, b"W" * nbytes)
        page["type"], page["sector"], page["bytes"], page["result"] = int(write), sector, nbytes, 0
        guest.hypercall(abi.LHCALL_SEND_DMA, disk.mem, guest.dma([(buf, nbytes)] if write else []))
        with open(path, "rb") as f:
            image = f.read()
        return dict(outcome=(int(page["result"]), guest.memory.u32(reply)),
                    image="".join(chr(image[i]) for i in range(0, len(image), SECTOR)),
                    dead=guest.dead)


# --- launcher-ex-ctrlc: when three ^C end the Launcher -------------------------------------
def ctrl_c_run(reads) -> tuple[int, list[int]]:
    """Type each (ms, text) as one read at that time on the Host's clock; returns the number of
    the read after which the Launcher had exited (0 if it never did) and the tick of each read."""
    import lguest
    host = lguest.Host()
    guest = host.launch(mem_mb=1)
    ticks = []
    for n, (ms, text) in enumerate(reads, 1):
        host.idle(max(0, ms - host.tick))
        ticks.append(host.tick)
        guest.console.type(text)
        host.run()
        if guest.launcher.exited:
            return n, ticks
    return 0, ticks


def ctrl_c_naive(reads, window_ms=1000, per_byte=False, reset=True, sliding=False) -> int:
    """The usual misreadings of the rule, for the hints: a window in milliseconds, ^C counted
    byte by byte, other input not resetting the count, any three in a row (a sliding window)."""
    starts = []
    for n, (ms, text) in enumerate(reads, 1):
        presses = text.count(CTRL_C) if per_byte else int(text == CTRL_C)
        if not presses and reset:
            starts = []
        for _ in range(presses):
            starts.append(ms)
            if len(starts) == 3:
                if ms - starts[0] <= window_ms:
                    return n
                starts = starts[1:] if sliding else []
    return 0


def ctrl_c_rule(reads) -> int:
    """The Launcher's rule, in whole seconds: each read one ^C alone, the third's second at most
    one past the first's; any other read, and any third, start the count again."""
    count = start = 0
    for n, (ms, text) in enumerate(reads, 1):
        if text != CTRL_C:
            count = 0
            continue
        count += 1
        if count == 1:
            start = ms // 1000
        elif count == 3:
            count = 0
            if ms // 1000 <= start + 1:
                return n
    return 0


def _show_read(text: str) -> str:
    return "".join("^C" if c == CTRL_C else c for c in text)


class CtrlC(Exercise):
    """A seeded string of console reads with their times: after which read does the Launcher exit?"""

    label = "launcher-ex-ctrlc"
    kind = "predict"
    minutes = 10
    what = "a whole number: the read after which the Launcher exits, or 0"

    def make(self, rng):
        reads, ms = [], rng.randrange(1, 4) * 1000 + rng.randrange(0, 1000, 50)
        for _ in range(rng.randrange(6, 10)):
            roll = rng.random()
            text = CTRL_C if roll < 0.7 else CTRL_C * 2 if roll < 0.8 else rng.choice(["q", "y", "n"])
            reads.append((ms, text))
            ms += rng.choice([150, 300, 450, 600, 750, 900, 1200])
        lines = "\n".join(f"    read {n}: at {ms} ms, {_show_read(text)!r}" for n, (ms, text) in enumerate(reads, 1))
        text = ("A Guest's Launcher reads its console at these times on the Host's clock (1 tick = 1 ms,\n"
                "so gettimeofday() gives the tick // 1000 in seconds), and each read returns what is shown\n"
                "(^C is the byte 0x03):\n" + lines + "\n"
                "After which read does the Launcher exit with status 2? Answer with its number, or 0 if it\n"
                "never does.")
        return dict(text=text, reads=reads)

    def answer(self, p):
        return ctrl_c_run(p.reads)[0]

    def judge(self, answer, p):
        if isinstance(answer, bool) or not isinstance(answer, int):
            return "answer with a whole number: the number of a read, or 0"
        right = self.answer(p)
        if answer == right:
            return None
        if answer == ctrl_c_naive(p.reads, per_byte=True):
            return "each ^C counts only as a read of its own: a read of two ^C is not a ^C alone"
        if answer == ctrl_c_naive(p.reads, reset=False):
            return "any read that is not one ^C alone starts the count again"
        if answer == ctrl_c_naive(p.reads, sliding=True, window_ms=1999):
            return "after a third ^C that came too late, the count starts again from nothing"
        if answer == ctrl_c_naive(p.reads):
            return ("the Launcher compares whole seconds from gettimeofday(), not milliseconds: "
                    "the third may come in the first's second or the next")
        return "go through the reads one by one, keeping the count and the first ^C's second"

    def mistakes(self, p):
        right = self.answer(p)
        out = []
        for wrong, hint in ((ctrl_c_naive(p.reads, per_byte=True), "a read of its own"),
                            (ctrl_c_naive(p.reads, reset=False), "starts the count again"),
                            (ctrl_c_naive(p.reads, sliding=True, window_ms=1999), "came too late"),
                            (ctrl_c_naive(p.reads), "whole seconds")):
            if wrong != right and wrong not in [w for w, _ in out]:
                out.append((wrong, hint))
        return out


route, block, ctrlc = Route(), Block(), CtrlC()
EXERCISES = (route, block, ctrlc)
