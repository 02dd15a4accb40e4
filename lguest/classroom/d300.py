"""D:300's checkable exercises: fix put_chars' FIXME, count a paste, follow a stale drain, chunk a printk."""
from __future__ import annotations

import lguest

from .. import abi, show
from ..guest.console import INBUF_SIZE
from ..guest.linux.hvc import N_INBUF, N_OUTBUF, TTY_FLIP_ROOM
from ..structs import write_dma
from . import Exercise

PAGE = abi.PAGE_SIZE
CONSOLE_ONLY = ("console",)


def _letters(n: int, start: int = 0) -> bytes:
    return bytes(65 + (start + i) % 26 for i in range(n))


# --- d300-ex-fixme: the implement exercise ---------------------------------------------------------
def put_chars_fixed(kernel, buf, count):
    """The reference: one section per page the buffer touches, one SEND_DMA to key 0."""
    sections, addr, left = [], buf, count
    while left:
        n = min(left, PAGE - addr % PAGE)
        sections.append((addr, n))
        addr, left = addr + n, left - n
    write_dma(kernel.memory, kernel.console.stack_dma, sections)
    kernel.lguest_send_dma(abi.LGUEST_CONSOLE_DMA_KEY, kernel.console.stack_dma)
    return count


def _put_chars_2007(kernel, buf, count):
    """The FIXME left as it was: one section, whatever it crosses."""
    write_dma(kernel.memory, kernel.console.stack_dma, [(buf, count)])
    kernel.lguest_send_dma(abi.LGUEST_CONSOLE_DMA_KEY, kernel.console.stack_dma)
    return count


def _put_chars_split_once(kernel, buf, count):
    """Splits at the first boundary only: right until a buffer crosses two."""
    first = min(count, PAGE - buf % PAGE)
    sections = [(buf, first)] + ([(buf + first, count - first)] if count > first else [])
    write_dma(kernel.memory, kernel.console.stack_dma, sections)
    kernel.lguest_send_dma(abi.LGUEST_CONSOLE_DMA_KEY, kernel.console.stack_dma)
    return count


def _put_chars_one_over(kernel, buf, count):
    """Off by one: each cut lands one byte past the page's end."""
    sections, addr, left = [], buf, count
    while left:
        n = min(left, PAGE - addr % PAGE + 1)
        sections.append((addr, n))
        addr, left = addr + n, left - n
    write_dma(kernel.memory, kernel.console.stack_dma, sections)
    kernel.lguest_send_dma(abi.LGUEST_CONSOLE_DMA_KEY, kernel.console.stack_dma)
    return count


def _put_chars_one_short(kernel, buf, count):
    """Off by one the other way: each cut lands one byte before the page's end."""
    sections, addr, left = [], buf, count
    while left:
        n = min(left, max(1, PAGE - addr % PAGE - 1))
        sections.append((addr, n))
        addr, left = addr + n, left - n
    write_dma(kernel.memory, kernel.console.stack_dma, sections)
    kernel.lguest_send_dma(abi.LGUEST_CONSOLE_DMA_KEY, kernel.console.stack_dma)
    return count


class Fixme(Exercise):
    """Implement put_chars() with the FIXME fixed; run in a Guest that sends on to a second Guest."""

    label = "d300-ex-fixme"
    kind = "implement"
    points = 3
    minutes = 25
    what = "your function put_chars_fixed(kernel, buf, count) -> int"

    def make(self, rng):
        cases = []
        n = rng.randrange(1, 257)                                   # inside one page
        cases.append((rng.randrange(1, PAGE - n), n, "inside one page"))
        cases.append((0, rng.randrange(1, 257), "starts on a boundary"))
        n = rng.randrange(2, 257)
        cases.append((PAGE - n, n, "ends exactly on a boundary"))
        n = rng.randrange(3, 257)                                   # crosses by 2 bytes or more
        cases.append((PAGE - rng.randrange(1, n - 1), n, "crosses one boundary"))
        n = rng.randrange(PAGE + 2, 2 * PAGE)                       # longer than a page, three pages
        cases.append((PAGE - rng.randrange(1, n - PAGE), n, "longer than a page"))
        n = rng.randrange(2 * PAGE + 2, 3 * PAGE)                   # longer than two pages
        cases.append((PAGE - rng.randrange(1, n - 2 * PAGE), n, "longer than two pages"))
        rows = "\n".join(f"    {i + 1}. {why:28s} offset {off:#06x} in its page, {n:5d} bytes"
                         for i, (off, n, why) in enumerate(cases))
        text = ("Write put_chars_fixed(kernel, buf, count) -> int: put_chars() with its FIXME fixed.\n"
                "It builds one lguest_dma (kernel.console.stack_dma will do) with ONE section per page\n"
                "the buffer touches, in order, sends it to key 0 with kernel.lguest_send_dma(), and\n"
                "returns count. The check calls it in a Guest on these buffers, then sends the same list\n"
                "on to a second Guest over a LAN, where the Host checks every section:\n" + rows)
        return dict(text=text, cases=cases)

    def answer(self, p):
        return put_chars_fixed

    def mistakes(self, p):
        return [(_put_chars_2007, "crosses a page boundary"),
                (_put_chars_split_once, "more than one boundary"),
                (_put_chars_one_over, "one byte past"),
                (_put_chars_one_short, "more sections than pages")]

    def judge(self, answer, p):
        if not callable(answer):
            return "answer with your function itself: put_chars_fixed, not a call of it"
        host = lguest.Host(copy_data_fixed=True)    # so the receiver's bytes can be compared (D:200's bug)
        s = host.launch(mem_mb=16, sharenet=["lan"], drivers=CONSOLE_ONLY)
        r = host.launch(mem_mb=16, sharenet=["lan"], drivers=())
        lan_s, lan_r = (int(x.devices[0]["pfn"]) << abi.PAGE_SHIFT for x in (s, r))
        pages = [r.alloc(PAGE, align=PAGE) for _ in range(4)]
        inbox = r.dma([(page, PAGE) for page in pages])
        r.kernel.lguest_bind_dma(lan_r + 4, inbox, 1, 1)
        base = s.alloc(4 * PAGE, align=PAGE)
        for i, (off, n, why) in enumerate(p.cases):
            case = f"case {i + 1} ({why})"
            buf, data = base + off, _letters(n, start=i)
            s.memory.write(buf, data)
            printed, mark = len(s.console.output), host.trace.mark()
            returned = answer(s.kernel, buf, n)
            if s.dead is not None:
                return f"{case}: the Host killed the Guest ({s.dead}) during your own send"
            if isinstance(returned, bool) or returned != n:
                return f"{case}: return how many bytes were written, as put_chars() does (hvc counts on it)"
            sends = [e for e in host.trace.filter("send_dma", since=mark) if e.key == abi.LGUEST_CONSOLE_DMA_KEY]
            if len(sends) != 1:
                return f"{case}: make exactly one SEND_DMA to key 0 per call, as put_chars() does (you made {len(sends)})"
            if s.console.output[printed:] != data.decode():
                return f"{case}: the Launcher did not print the buffer's bytes in order: the sections must cover buf to buf + count, one after another"
            sections = show.dma_sections(s.memory, sends[0].dma)
            for j, (addr, length) in enumerate(sections):
                over = addr + length - (addr // PAGE + 1) * PAGE
                if over > 0:
                    if over == 1 and j == 0:
                        return f"{case}: section {j} runs one byte past the end of its page (an off-by-one at the cut)"
                    if j > 0:
                        return f"{case}: section {j} still crosses a page; a long buffer can cross more than one boundary"
                    return f"{case}: section {j} crosses a page boundary: cut it where its page ends"
            touched = (buf + n - 1) // PAGE - buf // PAGE + 1
            if len(sections) > touched:
                return (f"{case}: more sections than pages the buffer touches: a section ends before its page does "
                        "(an off-by-one at the cut, or a cut where no boundary is)")
            r.memory.set_u32(inbox, 0)
            s.kernel.lguest_send_dma(lan_s + 4, sends[0].dma)      # the Host checks every section
            if s.dead is not None:
                return f"{case}: sent on to the other Guest, the list got the sender killed ({s.dead})"
            got = b"".join(r.memory.read(page, PAGE) for page in pages)[:r.memory.u32(inbox)]
            if got != data:
                return f"{case}: the other Guest did not receive the buffer's bytes in order"
        return None


# --- d300-ex-chunks: a paste, counted --------------------------------------------------------------
class Chunks(Exercise):
    """A paste of N characters: what each read delivers, and how busy the driver and hvc get."""

    label = "d300-ex-chunks"
    kind = "predict"
    minutes = 10
    what = 'a dict: {"used_len": [...], "interrupts": ..., "polls": ..., "get_chars": ..., "sends": ...}'
    KEYS = ("used_len", "interrupts", "polls", "get_chars", "sends")

    def make(self, rng):
        shape = rng.randrange(3)
        if shape == 0:
            n = INBUF_SIZE * rng.randrange(1, 5)                       # whole buffers
        elif shape == 1:
            n = N_INBUF * rng.randrange(1, 64)                         # whole get_chars() chunks
        else:
            n = rng.randrange(1, 1100)
        text = (f"On a freshly booted Guest, someone pastes {n} letters into the console in one go (no\n"
                "Enter). Predict what each Launcher read writes into used_len (a list, in order), how many\n"
                "interrupts the Guest takes, how many polls hvc makes, how many get_chars() calls it\n"
                "makes in all, and how many SEND_DMAs the Guest makes meanwhile. Answer with a dict:\n"
                '{"used_len": [...], "interrupts": ..., "polls": ..., "get_chars": ..., "sends": ...}.')
        return dict(text=text, n=n)

    def answer(self, p):
        """Run it: a fresh Guest, the paste, and the counts from hvc and the trace."""
        host = lguest.Host()
        g = host.launch(mem_mb=16, drivers=CONSOLE_ONLY)
        hp, con = g.kernel.hvc.consoles[0], g.kernel.console
        polls, calls, mark = hp.polls, hp.get_chars_calls, host.trace.mark()
        g.console.type("y" * p.n)
        host.run()
        used = [e.value for e in host.trace.filter("used_len", since=mark)
                if e.addr == con.cons_input and getattr(e, "by", None) == "launcher"]
        return {"used_len": used, "interrupts": len(host.trace.filter("irq_deliver", since=mark)),
                "polls": hp.polls - polls, "get_chars": hp.get_chars_calls - calls,
                "sends": len(host.trace.filter("send_dma", since=mark))}

    def mistakes(self, p):
        right = self.answer(p)
        wrong = [({**right, "get_chars": right["get_chars"] - right["polls"]}, "ends with one call that returns nothing"),
                 ({**right, "sends": 0}, "echo")]
        if p.n > INBUF_SIZE:                                            # as if inbuf had no end
            wrong.append(({**right, "used_len": [p.n], "interrupts": 1, "polls": 1,
                           "get_chars": -(-p.n // N_INBUF) + 1}, "how much one read can deliver"))
        return wrong

    def judge(self, answer, p):
        if not isinstance(answer, dict) or set(answer) != set(self.KEYS):
            return 'answer with a dict of exactly five keys: "used_len", "interrupts", "polls", "get_chars", "sends"'
        right = self.answer(p)
        try:
            used = [int(x) for x in answer["used_len"]]
        except (TypeError, ValueError):
            return "used_len is a list of whole numbers, one per Launcher read"
        if sum(used) == p.n and len(used) < len(right["used_len"]):
            return "a read goes straight into inbuf: check how much one read can deliver"
        if used != right["used_len"]:
            return "each read fills the one input buffer as far as it goes; the rest waits for the next read"
        if answer["interrupts"] != right["interrupts"]:
            return "the Launcher raises the console's interrupt once per read"
        if answer["polls"] != right["polls"]:
            return "hvc polls once per interrupt it takes"
        if answer["get_chars"] == right["get_chars"] - right["polls"]:
            return "count the calls again: each poll ends with one call that returns nothing"
        if answer["get_chars"] != right["get_chars"]:
            return "hvc asks get_chars() for at most 16 bytes a call, and one read's bytes are drained before the next read"
        if answer["sends"] != right["sends"]:
            return "output is a SEND_DMA too: what does the model's tty do with each character it receives (its echo)?"
        return None


# --- d300-ex-stale: the drain cut short ------------------------------------------------------------
class Stale(Exercise):
    """The Launcher overwrites inbuf mid-drain: what get_chars() returns next, and what a poll does."""

    label = "d300-ex-stale"
    kind = "predict"
    points = 2
    minutes = 15
    what = 'a dict: {"returns": [n, n, n], "cons_offset": ..., "poll": ...}'

    def make(self, rng):
        regime = rng.choices(["below", "equal", "above"], weights=[5, 2, 3])[0]
        first = rng.randrange(2 * N_INBUF + 1, INBUF_SIZE + 1)
        by_hand = rng.randrange(1, (first - 1) // N_INBUF + 1)          # not drained by hand
        offset = by_hand * N_INBUF
        if regime == "below":
            second = rng.randrange(1, offset)
        elif regime == "equal":
            second = offset
        else:
            second = rng.randrange(offset + 1, min(offset + 40, INBUF_SIZE) + 1)
        text = (f"On a freshly booted Guest: disable the console's interrupt line with disable_irq(), type\n"
                f"{first} letters and let the Host run; call get_chars(0, 16) yourself {by_hand} time(s), as a\n"
                f"poll cut short would; then type {second} more letters and let the Host run again.\n"
                "Predict how many bytes each of the next three calls of get_chars(0, 16) returns, what\n"
                "cons_offset is after them, and how many bytes the real poll then hands the tty when\n"
                "enable_irq() lets the held interrupt in. Answer with a dict:\n"
                '{"returns": [n1, n2, n3], "cons_offset": ..., "poll": ...}.')
        return dict(text=text, first=first, by_hand=by_hand, second=second, regime=regime)

    def answer(self, p):
        """Run it in the model."""
        host = lguest.Host()
        g = host.launch(mem_mb=16, drivers=CONSOLE_ONLY)
        con, hp = g.kernel.console, g.kernel.hvc.consoles[0]
        g.kernel.disable_irq(hp.irq)
        g.console.type(_letters(p.first).decode())
        host.run()
        for _ in range(p.by_hand):
            con.get_chars(0, N_INBUF)
        g.console.type("z" * p.second)
        host.run()
        returns = [len(con.get_chars(0, N_INBUF)) for _ in range(3)]
        offset, before = con.cons_offset, g.kernel.tty.received
        g.kernel.enable_irq(hp.irq)
        host.run()
        return {"returns": returns, "cons_offset": offset, "poll": g.kernel.tty.received - before}

    def mistakes(self, p):
        right, offset = self.answer(p), p.by_hand * N_INBUF
        if p.regime == "below":
            return [({"returns": [0, 0, 0], "cons_offset": offset, "poll": 0}, "unsigned"),
                    ({**right, "poll": max(0, INBUF_SIZE - right["cons_offset"])}, "the end of inbuf")]
        if p.regime == "equal":
            return [({"returns": [N_INBUF] * 3, "cons_offset": offset + 3 * N_INBUF, "poll": TTY_FLIP_ROOM},
                     "used_len - cons_offset")]
        fresh = [min(N_INBUF, max(0, p.second - N_INBUF * i)) for i in range(3)]
        return [({**right, "returns": fresh}, "cons_offset is not reset")]

    def judge(self, answer, p):
        if not isinstance(answer, dict) or set(answer) != {"returns", "cons_offset", "poll"}:
            return 'answer with a dict of exactly three keys: "returns", "cons_offset", "poll"'
        right = self.answer(p)
        try:
            returns = [int(x) for x in answer["returns"]]
        except (TypeError, ValueError):
            return '"returns" is a list of three whole numbers, the length each call returns'
        if returns != right["returns"]:
            if p.regime == "below" and returns[0] < N_INBUF:
                return ("used_len is now smaller than cons_offset: work out used_len - cons_offset the way C "
                        "does for unsigned numbers")
            if p.regime == "above" and returns[0] == min(N_INBUF, p.second):
                return "cons_offset is not reset when the Launcher overwrites the buffer: the next call starts where the last one stopped"
            if p.regime == "equal":
                return "compute used_len - cons_offset right after the overwrite, and apply get_chars()'s drained test"
            return "follow get_chars() call by call: used_len, cons_offset, and the drained test"
        if answer["cons_offset"] != right["cons_offset"]:
            return "cons_offset grows by what each call returns, and goes back to 0 only when it meets used_len"
        if p.regime == "below" and answer["poll"] != right["poll"]:
            return "nothing in get_chars() stops at the end of inbuf; what stops a poll is said in D:350"
        if answer["poll"] != right["poll"]:
            return ("a poll calls get_chars() until it returns nothing or the tty's room for one poll is used up "
                    "(D:350); did the buffer get drained before the poll?")
        return None


# --- d300-ex-printk: a kernel message, in sends --------------------------------------------------
MESSAGES = ("lguest: block device lgba: {n} sectors", "eth0: lguest net device {n} joined the LAN",
            "Freeing unused kernel memory: {n}k freed", "hvc0: console ready, {n} bytes of output buffer",
            "lguest: {n} pages of memory\nlguest: descriptor page above them",
            "Memory: {n}k available\nCalibrating delay loop... skipped")


class Printk(Exercise):
    """One printk(): how hvc's early path cuts it into sends, and what each used_len says."""

    label = "d300-ex-printk"
    kind = "predict"
    minutes = 5
    what = "a list of whole numbers: the used_len of each send, in order"

    def make(self, rng):
        message = rng.choice(MESSAGES).format(n=rng.randrange(1, 10 ** rng.randrange(1, 7)))
        text = (f"A running Guest's kernel calls printk({message!r}).\n"
                "Predict the used_len the Launcher writes back for each SEND_DMA this makes, in order.\n"
                "Answer with a list of whole numbers.")
        return dict(text=text, message=message)

    def answer(self, p):
        """Run it: printk on a booted Guest, and the Launcher's used_len for each send."""
        host = lguest.Host()
        g = host.launch(mem_mb=16, drivers=CONSOLE_ONLY)
        mark = host.trace.mark()
        g.kernel.printk(p.message)
        host.run()
        return [e.value for e in host.trace.filter("used_len", since=mark)
                if e.addr == g.kernel.console.stack_dma and getattr(e, "by", None) == "launcher"]

    def _chunks(self, n):
        return [min(N_OUTBUF, n - i) for i in range(0, n, N_OUTBUF)]

    def mistakes(self, p):
        size = len(p.message.encode())
        lines = p.message.count("\n") + 1
        return [(self._chunks(size + lines), "carriage return"),
                (self._chunks(size), "line end"),
                ([size + lines * 2], "16 bytes")]

    def judge(self, answer, p):
        if isinstance(answer, (str, bytes, dict)) or not hasattr(answer, "__iter__"):
            return "answer with a list of whole numbers, one per SEND_DMA"
        try:
            answer = [int(x) for x in answer]
        except (TypeError, ValueError):
            return "answer with a list of whole numbers, one per SEND_DMA"
        right = self.answer(p)
        if answer == right:
            return None
        if len(answer) == 1:
            return "early output goes through hvc's small buffer, 16 bytes at a time (D:320)"
        size = len(p.message.encode())
        if sum(answer) == size:
            return "printk adds a line end to the message, and hvc turns it into two bytes"
        if sum(answer) == size + p.message.count("\n") + 1:
            return "hvc turns every \\n into \\r\\n: a carriage return before each line feed"
        if sum(answer) != sum(right):
            return "count the bytes: the message, its line end, and what hvc does to each \\n"
        return "the bytes are right; cut them into sends the way hvc's early path does (D:320)"


fixme, chunks, stale, printk = Fixme(), Chunks(), Stale(), Printk()
EXERCISES = (fixme, chunks, stale, printk)
