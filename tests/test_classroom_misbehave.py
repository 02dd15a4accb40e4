"""The exercises of "When Guests misbehave", held to the model: the poison stores land where the
chapter says for every Guest size, the blocked list follows the lock rule, and the fixed unbind
passes while the usual slips (2007's own search among them) fail for their own reasons.
Runs in about a second."""
from __future__ import annotations

import pytest

from lguest.classroom import misbehave as m


@pytest.mark.parametrize("mem_mb, debug, expect", [
    (1, False, ["descriptor page", "oops"]),
    (2, False, ["RAM", "descriptor page"]),
    (3, False, ["RAM", "RAM"]),
    (16, False, ["RAM", "RAM"]),
    (2, True, ["oops"]),
])
def test_poison_stores_land_by_guest_size(mem_mb, debug, expect):
    problem = m.poison.problem(2007)
    problem.mem_mb, problem.debug, problem.devices = mem_mb, debug, ["--sharenet=lan0", "--sharenet=lan1"]
    assert m.poison.answer(problem) == expect


def test_poison_device_pages_are_never_hit():
    """With whole-MiB RAM neither poison address can fall in a device page, whatever the devices."""
    for seed in range(40):
        assert "device page" not in m.poison.solution(seed)


def test_blocked_follows_the_lock_rule():
    """Recompute the answer from the rule the chapter states, for many seeds, and compare."""
    for seed in range(30):
        p = m.blocked.problem(seed)
        at = p.steps.index((p.bad, "unbind twice"))
        dead = {g for g, what in p.steps[:at] if what == "hypercall 99"}
        stuck = {p.bad}
        for g, what in p.steps[at + 1:]:
            if g not in stuck | dead and what in m.LOCKING:
                stuck.add(g)
        assert m.blocked.solution(seed) == sorted(stuck), seed


@pytest.mark.parametrize("wrong, fragment", [
    (m.unbind_2007, "already off its list"),
    (m.unbind_key_only, "both the key and the array"),
    (m.unbind_last, "first match in table order"),
    (lambda table, key, dmas: None, "did your search find"),
    (lambda table, key, dmas: 99, "IndexError"),
])
def test_unbind_slips_fail_for_their_own_reason(wrong, fragment):
    for seed in (2007, 3):
        result = m.unbind.check(wrong, seed)
        assert not result.passed and fragment in result.hint


def test_unbind_2007s_search_damages_the_host_and_the_fix_does_not():
    p = m.unbind.problem(2007)
    broken, fixed = m.unbind.run(m.unbind_2007, p), m.unbind.run(m.unbind_right, p)
    assert broken["poisoned"]
    assert not fixed["poisoned"] and not fixed["corruption"]
    assert fixed["returns"][-2:] == [1, 0]                  # the second unbind finds nothing
    assert broken["returns"][-2:] == [1, 1]                 # 2007's finds the stale entry again


def test_unbind_answer_must_be_a_function():
    assert "function itself" in m.unbind.check([1, 2], 2007).hint
