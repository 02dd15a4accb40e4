"""D:380's checkable exercises, against the chapter's rules worked out independently of the model.

The exercises take their answers from the model (a fresh Host, host.run()); here the same
answers are derived from the rules the chapter teaches (lowest unblocked line first, one per
trip round the loop; a halted Guest woken with interrupts on; handle_level_irq masking and
counting), so a drift in either shows up.
"""
from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from lguest import abi
from lguest.classroom import BOOK_SEED, d380

ROOT = Path(__file__).resolve().parent.parent
SEEDS = range(40)


def test_the_chapter_holds_these_exercises_and_no_other():
    cells = json.loads((ROOT / "book" / "d380_interrupts.ipynb").read_text())["cells"]
    text = "".join("".join(c["source"]) for c in cells)
    labels = {e.label for e in d380.EXERCISES}
    assert labels == {"d380-ex-starve", "d380-ex-halt", "d380-ex-nobody", "d380-ex-cascade"}
    for label in labels:
        assert f":label: {label}" in text
    assert "d380-ex-sixteen" not in text, "the devices count is D:010's exercise (d010-ex-fifteen)"
    assert "{ref}`d380-ex-halt`" in text
    assert {e.kind for e in d380.EXERCISES} == {"predict", "explore"}


# --- starve: lowest line first, a re-raise waits for the unmask ------------------------------------
@pytest.mark.parametrize("seed", SEEDS)
def test_starve_the_chatty_line_runs_back_to_back_and_blocks_the_lines_above(seed):
    p = d380.starve.problem(seed)
    below = [line for line in p.lines if line < p.chatty]
    above = [line for line in p.lines if line > p.chatty]
    assert d380.starve.solution(seed) == below + [p.chatty] * (p.repeats + 1) + above
    assert p.raised != sorted(p.raised), "the raise order must differ from the delivery order"


def test_starve_hints():
    p = d380.starve.problem(BOOK_SEED)
    right = d380.starve.solution(BOOK_SEED)
    assert "wrong order" in d380.starve.check(list(reversed(right)), BOOK_SEED).hint
    assert "count the runs" in d380.starve.check(right + [p.chatty], BOOK_SEED).hint
    assert "list of irq numbers" in d380.starve.check("2, 2, 5", BOOK_SEED).hint
    assert d380.starve.check(tuple(right), BOOK_SEED).passed


# --- halt: blocked lines wait, irq_enabled 0 stops all, a halt wakes with interrupts on -------------
def halt_by_the_rules(p):
    unblocked = sorted(line for line in p.raised if line not in p.blocked)
    delivered = unblocked if (p.enabled or p.halted) else []
    pending = sorted(line for line in p.raised if line not in delivered)
    enabled = abi.X86_EFLAGS_IF if p.enabled or (p.halted and delivered) else 0
    return {"delivered": delivered, "pending": pending, "irq_enabled": enabled}


@pytest.mark.parametrize("seed", SEEDS)
def test_halt_follows_the_rules(seed):
    p = d380.halt.problem(seed)
    assert d380.halt.solution(seed) == halt_by_the_rules(p)


def test_halt_instances_cover_every_case():
    cases = {(d380.halt.problem(s).enabled, d380.halt.problem(s).halted) for s in range(60)}
    assert cases == {(0, True), (0, False), (abi.X86_EFLAGS_IF, True), (abi.X86_EFLAGS_IF, False)}
    woken = [s for s in range(60) if not d380.halt.problem(s).enabled and d380.halt.problem(s).halted
             and d380.halt.solution(s)["delivered"]]
    assert len(woken) >= 15, "most instances should need the halt rule"


def test_halt_a_halted_guest_with_interrupts_off_is_still_woken():
    seed = next(s for s in range(100) if not d380.halt.problem(s).enabled and d380.halt.problem(s).halted
                and d380.halt.solution(s)["delivered"])
    right = d380.halt.solution(seed)
    assert right["irq_enabled"] == abi.X86_EFLAGS_IF
    slept = {**right, "delivered": [], "pending": sorted(right["delivered"] + right["pending"]), "irq_enabled": 0}
    assert "halted Guest" in d380.halt.check(slept, seed).hint
    assert "three keys" in d380.halt.check({"delivered": []}, seed).hint
    assert "lists of irq numbers" in d380.halt.check({**right, "pending": None}, seed).hint


# --- nobody: handle_level_irq's bookkeeping, simulated from the chapter's rules -----------------------
def nobody_by_the_rules(p):
    answer = {p.busy: 1, p.idle: 0}                     # IRQ_HANDLED = 1, IRQ_NONE = 0
    handler = {p.busy: True, p.idle: True}
    depth = {line: (0 if line in handler else 1) for line in p.pool}
    masked, pending = set(), set()
    counts = dict.fromkeys(p.pool, 0)
    unhandled = dict.fromkeys(p.pool, 0)
    for action, raises in p.rounds:
        if action and action[0] == "request_irq":
            handler[action[1]], answer[action[1]] = True, 1
            depth[action[1]] = 0
            unhandled[action[1]] = 0                    # setup_irq() resets the count
            masked.discard(action[1])
        elif action and action[0] == "free_irq":
            del handler[action[1]]                      # the depth stays as it was
        elif action:
            depth[action[1]] += 1
        pending |= set(raises)
        while pending - masked:
            line = min(pending - masked)
            pending.discard(line)
            masked.add(line)
            counts[line] += 1
            if line not in handler or depth[line]:
                continue                                # left masked, nobody asked
            if answer[line] == 0:
                unhandled[line] += 1
            masked.discard(line)
    return {"proc": {line: counts[line] for line in sorted(handler)}, "unhandled": unhandled,
            "pending": sorted(pending)}


@pytest.mark.parametrize("seed", SEEDS)
def test_nobody_follows_the_rules(seed):
    p = d380.nobody.problem(seed)
    assert d380.nobody.solution(seed) == nobody_by_the_rules(p)
    assert any(action and action[0] == "free_irq" for action, _ in p.rounds), "a line always loses its handler"


def test_nobody_instances_often_hold_an_interrupt_for_a_line_nobody_serves():
    held = [s for s in range(40) if d380.nobody.solution(s)["pending"]]
    assert len(held) >= 10


# --- cascade: every fresh raise is delivered, so merges = raises - deliveries ----------------------------
@pytest.mark.parametrize("seed", SEEDS)
def test_cascade_merges_are_the_raises_never_delivered(seed):
    p = d380.cascade.problem(seed)
    counts = d380.cascade._run(p)
    assert counts["merged"] == counts["raises"] - counts["delivered"] == d380.cascade.solution(seed)


def test_cascade_usually_has_something_to_count():
    assert sum(d380.cascade.solution(s) > 0 for s in range(40)) >= 30


# --- odd answers never crash a check; checks are quick -------------------------------------------------------
@pytest.mark.parametrize("exercise", d380.EXERCISES, ids=lambda e: e.label)
@pytest.mark.parametrize("odd", ["3", 3.5, True, [None], {}, {"proc": 1, "unhandled": 2, "pending": 3},
                                 {"delivered": "x", "pending": [], "irq_enabled": 0}, object()])
def test_odd_answers_get_a_hint(exercise, odd):
    result = exercise.check(odd, BOOK_SEED)
    assert not result.passed and result.hint


@pytest.mark.parametrize("exercise", d380.EXERCISES, ids=lambda e: e.label)
def test_checks_are_quick(exercise):
    start = time.perf_counter()
    for seed in range(5):
        assert exercise.check(exercise.solution(seed), seed).passed
    assert time.perf_counter() - start < 2.5
