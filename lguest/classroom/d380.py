"""D:380's checkable exercises: the order the Host delivers in, a halted Guest, what is counted.

Every answer comes from the model itself: a fresh Host, a Guest built with ``drivers=()`` (so
no line has a handler until the exercise gives it one), the instance set up as its text says,
then ``host.run()``.
"""
from __future__ import annotations

from .. import abi
from ..guest.kernel import IRQ_HANDLED, IRQ_NONE, IRQF_SHARED
from . import Exercise, Explore


def _fresh():
    """A fresh Host and a Guest with the bus only: no handler on any line."""
    from ..machine import Host                      # late: the classroom loads without the model
    host = Host()
    guest = host.launch(mem_mb=4, drivers=())
    return host, guest, guest.kernel


def _lines(rng, n, top=12):
    return sorted(rng.sample(range(1, top + 1), n))


def _is_int_list(x) -> bool:
    return isinstance(x, (list, tuple)) and all(isinstance(i, int) and not isinstance(i, bool) for i in x)


# --- the order of delivery ---------------------------------------------------------------------
class Starve(Exercise):
    """A line whose handler raises it again, beside quiet lines: in what order does the Host deliver?"""

    label = "d380-ex-starve"
    kind = "predict"
    minutes = 10
    what = "a list of irq numbers, in the order the Host delivers them"

    def make(self, rng):
        lines = _lines(rng, 3)
        chatty = rng.choice(lines)
        repeats = rng.randrange(2, 6)
        raised = lines[:]
        while raised == sorted(raised):
            rng.shuffle(raised)
        text = (f"A fresh Guest (drivers=()) gets a handler on each of lines {lines}. The handler on line\n"
                f"{chatty} raises line {chatty} again (g.launcher.trigger_irq({chatty})) the first {repeats} times it runs;\n"
                "the other handlers only return IRQ_HANDLED. The Launcher raises the lines in the order\n"
                f"{raised}, then the Host runs (host.run()) until nothing is left.\n"
                "Answer with a list: every irq the Host delivers, in order (repeats included).")
        return dict(text=text, lines=lines, chatty=chatty, repeats=repeats, raised=raised)

    def answer(self, p):
        host, guest, k = _fresh()
        order = []

        def handler(irq, dev_id):
            order.append(irq)
            if irq == p.chatty and order.count(irq) <= p.repeats:
                guest.launcher.trigger_irq(irq)          # the device interrupts again
            return IRQ_HANDLED

        for line in p.lines:
            k.request_irq(line, handler, IRQF_SHARED, f"dev{line}", None)
        for line in p.raised:
            guest.launcher.trigger_irq(line)
        host.run()
        return order

    def _wrongs(self, p):
        again = [p.chatty] * p.repeats
        return [(sorted(p.lines) + again,
                 "a line raised again does not queue behind the others: on each trip round the loop the "
                 "Host takes the lowest line pending"),
                (sorted(p.lines),
                 "a raise that comes while the line is masked is not lost: its pending bit waits at the Host"),
                ([line for r in p.raised for line in ([r] + again if r == p.chatty else [r])],
                 "the lines are not delivered in the order they were raised")]

    def mistakes(self, p):
        right = self.answer(p)
        short = sorted(p.lines + [p.chatty] * (p.repeats - 1))
        return [(w, h) for w, h in self._wrongs(p) + [(short, "count the runs")] if w != right]

    def judge(self, answer, p):
        if not _is_int_list(answer):
            return "answer with a list of irq numbers (whole numbers), one per delivery"
        right = self.answer(p)
        answer = list(answer)
        if answer == right:
            return None
        for wrong, hint in self._wrongs(p):
            if answer == wrong:
                return hint
        if sorted(answer) == sorted(right):
            return "the right deliveries, in the wrong order: on each trip round the loop, which line does the Host take?"
        if answer.count(p.chatty) != right.count(p.chatty):
            return (f"count the runs of line {p.chatty}'s handler: its first raise, plus one for each "
                    "time it raised its line again")
        return "not yet: which lines are delivered, and how many times? Replay the instance on a fresh Host"


# --- a halted Guest ------------------------------------------------------------------------------
class Halt(Exercise):
    """irq_enabled, blocked_interrupts, pending bits and LHCALL_HALT: what does host.run() deliver?"""

    label = "d380-ex-halt"
    kind = "predict"
    minutes = 10
    what = 'a dict: {"delivered": [...], "pending": [...], "irq_enabled": ...}'

    def make(self, rng):
        enabled, halted = rng.choice([(0, True), (0, True), (0, True), (0, False),
                                      (abi.X86_EFLAGS_IF, True), (abi.X86_EFLAGS_IF, False)])
        handlers = _lines(rng, rng.randrange(4, 6))
        raised = rng.sample(handlers, rng.randrange(3, len(handlers) + 1))
        blocked = sorted(rng.sample(handlers, rng.choice([0, 1, 1, 2])))
        mask = 1 | sum(1 << b for b in blocked)          # bit 0: the timer's line, always blocked here
        text = (f"A fresh Guest (drivers=()) has a handler on each of lines {handlers}; each returns IRQ_HANDLED.\n"
                f"Then its lguest_data.blocked_interrupts is set to {mask:#010x}, the Launcher raises lines\n"
                f"{raised} (in that order), the Guest sets irq_enabled to {enabled:#x}"
                + (" and halts (LHCALL_HALT)" if halted else " and does not halt") + ", and the Host runs.\n"
                'Answer with a dict: {"delivered": the lines delivered, in order, "pending": the lines\n'
                'still pending afterwards, ascending, "irq_enabled": its value afterwards}.')
        return dict(text=text, handlers=handlers, raised=raised, blocked=blocked, mask=mask,
                    enabled=enabled, halted=halted)

    def answer(self, p):
        host, guest, k = _fresh()
        delivered = []
        record = lambda irq, dev_id: delivered.append(irq) or IRQ_HANDLED
        for line in p.handlers:
            k.request_irq(line, record, IRQF_SHARED, f"dev{line}", None)
        k.lguest_data_fields()["blocked_interrupts"] = p.mask
        for line in p.raised:
            guest.launcher.trigger_irq(line)
        k.lguest_data_fields()["irq_enabled"] = p.enabled
        if p.halted:
            guest.hypercall(abi.LHCALL_HALT)
        host.run()
        return {"delivered": delivered, "pending": guest.pending_irqs,
                "irq_enabled": int(k.lguest_data_fields()["irq_enabled"])}

    def _wrongs(self, p):
        free = sorted(line for line in p.raised if line not in p.blocked)
        held = sorted(line for line in p.raised if line in p.blocked)
        on = abi.X86_EFLAGS_IF
        wrongs = []
        if p.halted and not p.enabled and free:
            wrongs += [({"delivered": [], "pending": sorted(p.raised), "irq_enabled": 0},
                        "a halted Guest is waiting for an interrupt"),
                       ({"delivered": free[:1], "pending": sorted(held + free[1:]), "irq_enabled": 0},
                        "what does the Host write into irq_enabled when it wakes"),
                       ({"delivered": free, "pending": held, "irq_enabled": 0},
                        "what does the Host write into irq_enabled when it wakes")]
        if (p.enabled or p.halted) and held:
            wrongs.append(({"delivered": sorted(p.raised), "pending": [], "irq_enabled": on},
                           "a blocked line is not delivered"))
        if (p.enabled or p.halted) and len(free) > 1:
            wrongs.append(({"delivered": [line for line in p.raised if line in free], "pending": held,
                            "irq_enabled": on}, "lowest"))
        if not p.enabled and not p.halted and free:
            wrongs.append(({"delivered": free, "pending": held, "irq_enabled": on},
                           "with irq_enabled 0, and no halt"))
        return wrongs

    def mistakes(self, p):
        right = self.answer(p)
        return [(w, h) for w, h in self._wrongs(p) if w != right]

    def judge(self, answer, p):
        if not isinstance(answer, dict) or set(answer) != {"delivered", "pending", "irq_enabled"}:
            return 'answer with a dict of exactly three keys: "delivered", "pending", "irq_enabled"'
        if not _is_int_list(answer["delivered"]) or not _is_int_list(answer["pending"]):
            return '"delivered" and "pending" are lists of irq numbers'
        right = self.answer(p)
        answer = {"delivered": list(answer["delivered"]), "pending": sorted(answer["pending"]),
                  "irq_enabled": answer["irq_enabled"]}
        if answer == right:
            return None
        if not p.enabled and not p.halted and answer["delivered"]:
            return "with irq_enabled 0, and no halt to wake it, the Host delivers nothing"
        if p.halted and not p.enabled and right["delivered"] and not answer["delivered"]:
            return ("a halted Guest is waiting for an interrupt: the Host wakes it whatever irq_enabled "
                    "says (else a Guest that halted with interrupts off would sleep for ever)")
        if any(line in p.blocked for line in answer["delivered"]):
            return "a blocked line is not delivered: its pending bit waits at the Host"
        if answer["irq_enabled"] != right["irq_enabled"]:
            return ("what does the Host write into irq_enabled when it wakes a halted Guest, and does "
                    "anything change it otherwise?")
        if sorted(answer["delivered"]) == sorted(right["delivered"]):
            return "the right lines, in the wrong order: the Host takes the lowest line pending each time"
        if sorted(answer["pending"]) != right["pending"]:
            return "every line raised is either delivered or still pending: check the two lists together"
        return "not yet: replay the instance on a fresh Host and compare"


# --- what the kernel counts ----------------------------------------------------------------------
class Nobody(Exercise):
    """Handlers come and go between rounds of raises: what /proc/interrupts counts, and unhandled."""

    label = "d380-ex-nobody"
    kind = "predict"
    points = 2
    minutes = 15
    what = 'a dict: {"proc": {irq: count, ...}, "unhandled": {irq: count, ...}, "pending": [...]}'

    def make(self, rng):
        busy, idle, bare = rng.sample(range(1, 10), 3)
        gone = rng.choice(["busy", "idle"])
        line_of = {"busy": busy, "idle": idle}
        other = "idle" if gone == "busy" else "busy"
        third = rng.choice([("request_irq", bare, "late"), ("request_irq", line_of[gone], "late"),
                            ("disable_irq", line_of[other], None), None])
        actions = [None, ("free_irq", line_of[gone], gone), third]
        pool = [busy, idle, bare]
        rounds = [(action, [rng.choice(pool) for _ in range(rng.randrange(2, 5))]) for action in actions]
        for action, raises in rounds:                 # the freed line is raised right after the free
            if action and action[0] == "free_irq" and action[1] not in raises:
                raises.insert(rng.randrange(len(raises) + 1), action[1])
        script = [f'k.request_irq({busy}, busy, IRQF_SHARED, "busy", "busy")    # returns IRQ_HANDLED',
                  f'k.request_irq({idle}, idle, IRQF_SHARED, "idle", "idle")    # returns IRQ_NONE']
        for action, raises in rounds:
            if action and action[0] == "request_irq":
                script.append(f'k.request_irq({action[1]}, late, IRQF_SHARED, "late", "late")    # returns IRQ_HANDLED')
            elif action and action[0] == "free_irq":
                script.append(f'k.free_irq({action[1]}, "{action[2]}")')
            elif action:
                script.append(f"k.disable_irq({action[1]})")
            script.append(f"for line in {raises}: g.launcher.trigger_irq(line)")
            script.append("host.run()")
        text = (f"A fresh Guest (drivers=()) runs this script (line {bare} has no handler to begin with):\n"
                + "".join(f"    {line}\n" for line in script)
                + 'Answer with a dict: {"proc": the rows /proc/interrupts shows at the end, as {irq: count},\n'
                f'"unhandled": k.irqs_unhandled for lines {sorted(pool)}, as {{irq: count}}, "pending": the lines\n'
                "still pending at the Host, ascending}.")
        return dict(text=text, busy=busy, idle=idle, bare=bare, rounds=rounds, pool=sorted(pool))

    def _run(self, p):
        host, guest, k = _fresh()
        runs = {line: 0 for line in p.pool}

        def handler(answer):
            def run(irq, dev_id):
                runs[irq] += 1
                return answer
            return run

        handlers = {"busy": handler(IRQ_HANDLED), "idle": handler(IRQ_NONE), "late": handler(IRQ_HANDLED)}
        names = {"busy": "busy", "idle": "idle", "late": "late"}       # the dev_ids, by identity
        k.request_irq(p.busy, handlers["busy"], IRQF_SHARED, "busy", names["busy"])
        k.request_irq(p.idle, handlers["idle"], IRQF_SHARED, "idle", names["idle"])
        for action, raises in p.rounds:
            if action and action[0] == "request_irq":
                k.request_irq(action[1], handlers["late"], IRQF_SHARED, "late", names["late"])
            elif action and action[0] == "free_irq":
                k.free_irq(action[1], names[action[2]])
            elif action:
                k.disable_irq(action[1])
            for line in raises:
                guest.launcher.trigger_irq(line)
            host.run()
        proc = {irq: k.irq_counts[irq] for irq, actions in sorted(k.irq_actions.items()) if actions}
        right = {"proc": proc, "unhandled": {line: k.irqs_unhandled[line] for line in p.pool},
                 "pending": guest.pending_irqs}
        swallowed = {line: k.irq_counts[line] - runs[line] for line in p.pool}
        return right, swallowed, k

    def answer(self, p):
        return self._run(p)[0]

    def _wrongs(self, p):
        right, swallowed, k = self._run(p)
        raised = {line: sum(r.count(line) for _, r in p.rounds) for line in p.pool}
        listed = dict(sorted({**right["proc"], **{line: k.irq_counts[line] for line in p.pool
                                                   if k.irq_counts[line]}}.items()))
        return [({**right, "proc": {irq: raised[irq] for irq in right["proc"]}}, "merge into one pending bit"),
                ({**right, "proc": listed}, "only lines that have a handler"),
                ({**right, "unhandled": {line: right["unhandled"][line] + swallowed[line] for line in p.pool}},
                 "whose handlers all said no"),
                ({**right, "proc": {irq: n - swallowed[irq] for irq, n in right["proc"].items()}},
                 "every interrupt taken is counted")]

    def mistakes(self, p):
        right = self.answer(p)
        seen, out = [], []
        for wrong, hint in self._wrongs(p):
            if wrong != right and wrong not in seen:
                seen.append(wrong)
                out.append((wrong, hint))
        return out

    def judge(self, answer, p):
        if not isinstance(answer, dict) or set(answer) != {"proc", "unhandled", "pending"}:
            return 'answer with a dict of exactly three keys: "proc", "unhandled", "pending"'
        if not isinstance(answer["proc"], dict) or not isinstance(answer["unhandled"], dict):
            return '"proc" and "unhandled" are dicts {irq: count}'
        if not _is_int_list(answer["pending"]):
            return '"pending" is a list of irq numbers'
        right = self.answer(p)
        answer = {"proc": dict(answer["proc"]), "unhandled": dict(answer["unhandled"]),
                  "pending": sorted(answer["pending"])}
        if answer == right:
            return None
        hints = {"merge into one pending bit": "raises on a masked line are not each delivered: they merge "
                                               "into one pending bit at the Host",
                 "only lines that have a handler": "/proc/interrupts lists only lines that have a handler at "
                                                   "the end, whatever was counted on the others",
                 "whose handlers all said no": "unhandled counts only deliveries whose handlers all said no; "
                                               "a delivery nobody was asked about is not one",
                 "every interrupt taken is counted": "every interrupt taken is counted, even one whose handlers "
                                                     "do not run (no handler, or the line disabled)"}
        for wrong, key in self._wrongs(p):
            if answer == wrong:
                return hints[key]
        if set(answer["proc"]) != set(right["proc"]):
            return "which lines have a handler at the end of the script? Those are the rows"
        if answer["proc"] != right["proc"]:
            return ("a count is off: follow each line's mask round by round (a line left masked holds its "
                    "raises as one pending bit until something unmasks it)")
        if answer["unhandled"] != right["unhandled"]:
            return ("an unhandled count is off: which deliveries since the line's last request_irq() ran "
                    "handlers that all said IRQ_NONE?")
        return "the pending lines are off: which lines end the script masked, with a raise held?"


# --- an explore: count with the trace --------------------------------------------------------------
class Cascade(Explore):
    """Handlers that raise other lines: how many raises find their line already pending?"""

    label = "d380-ex-cascade"
    minutes = 15
    tolerance = 0.05

    def make(self, rng):
        lines = _lines(rng, 4, top=10)
        wiring = {line: sorted(rng.sample(lines, rng.randrange(1, 3))) for line in lines}
        budget = {line: rng.randrange(1, 4) for line in lines}
        raised = rng.sample(lines, 3)
        table = "".join(f"    line {line}: raises {wiring[line]} the first {budget[line]} time(s) it runs\n"
                        for line in lines)
        text = ("A fresh Guest (drivers=()) has a handler on each line below; each returns IRQ_HANDLED, but\n"
                "first raises (g.launcher.trigger_irq) the lines listed, in that order:\n" + table
                + f"The Launcher raises {raised}, then the Host runs until nothing is left. Measure with the\n"
                "trace: how many of ALL the raises (the Launcher's first ones included) found their line\n"
                "already pending (irq_raise events with already_pending=True)? Answer with a number.")
        return dict(text=text, lines=lines, wiring=wiring, budget=budget, raised=raised)

    def _run(self, p):
        host, guest, k = _fresh()
        runs = {line: 0 for line in p.lines}

        def handler(irq, dev_id):
            runs[irq] += 1
            if runs[irq] <= p.budget[irq]:
                for line in p.wiring[irq]:
                    guest.launcher.trigger_irq(line)
            return IRQ_HANDLED

        for line in p.lines:
            k.request_irq(line, handler, IRQF_SHARED, f"dev{line}", None)
        mark = host.trace.mark()
        for line in p.raised:
            guest.launcher.trigger_irq(line)
        host.run()
        raises = host.trace.filter("irq_raise", since=mark)
        return {"merged": sum(bool(e.already_pending) for e in raises), "raises": len(raises),
                "delivered": len(host.trace.filter("irq_deliver", since=mark))}

    def answer(self, p):
        return self._run(p)["merged"]

    def mistakes(self, p):
        counts = self._run(p)
        right = counts["merged"]
        wrong = [(counts["raises"], "that counts every raise: count only the raises that found their "
                                    "line's bit already set"),
                 (counts["delivered"], "that counts deliveries, not raises: a raise that merges into a "
                                       "pending bit is never delivered on its own")]
        return [(w, h) for w, h in wrong if not self.same(w, right)]

    def judge(self, answer, p):
        if isinstance(answer, bool) or not isinstance(answer, (int, float)):
            return "answer with a number: how many irq_raise events had already_pending=True"
        return super().judge(answer, p)

    def generic_hint(self, answer, p):
        return ("not that many: replay the instance on a fresh Host, take host.trace.mark() before the "
                "Launcher's raises, and count the irq_raise events since the mark whose already_pending is True")


starve, halt, nobody, cascade = Starve(), Halt(), Nobody(), Cascade()
EXERCISES = (starve, halt, nobody, cascade)
