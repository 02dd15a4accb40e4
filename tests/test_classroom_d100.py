"""D:100's checkable exercises, held against the model.

Each answer() works the instance out by the chapter's rules; these tests run the same instance in
the model (the problem text's own code, where it is code) and ask for the same statuses, probes
and return values. They also pin the fix of d100-ex-too-early: it stands on what the chapter shows.
"""
from __future__ import annotations

import ast
import errno
import inspect
import json
import textwrap
from pathlib import Path

import pytest

import lguest
from lguest import abi
from lguest.classroom import d100
from lguest.guest.bus import LguestDriver

ROOT = Path(__file__).resolve().parent.parent
SEEDS = [2007, 1, 2, 3, 424242] + list(range(100, 130))
ACK, DRV, OK, FAILED = 1, 2, 4, 0x80


def script(problem) -> str:
    """The code of a problem's text: its indented lines."""
    return textwrap.dedent("\n".join(line for line in problem.text.splitlines() if line.startswith("    ")))


def run_script(problem, tmp_path, monkeypatch, **names):
    """Run the problem text's code on a fresh Host, in a directory that holds disk.img; the value
    of every top-level expression (the register_lguest_driver() calls) is collected."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "disk.img").write_bytes(bytes(512))
    env = {"host": lguest.Host(), "abi": abi, "LguestDriver": LguestDriver, **names}
    values = []
    for node in ast.parse(script(problem)).body:
        if isinstance(node, ast.Expr) and "register_lguest_driver" in ast.unparse(node):
            values.append(eval(compile(ast.Expression(node.value), "<problem>", "eval"), env))
        else:
            exec(compile(ast.Module([node], []), "<problem>", "exec"), env)
    return env["g"], values


def statuses(guest, n):
    return [int(s) for s in guest.devices["status"][:n]]


# --- the answers are the model's ---------------------------------------------------------------------
@pytest.mark.parametrize("seed", SEEDS)
def test_status_answer_is_what_the_model_boots_to(seed, tmp_path, monkeypatch):
    p = d100.status.problem(seed)
    g, _ = run_script(p, tmp_path, monkeypatch)
    assert statuses(g, len(p.types)) == d100.status.answer(p)
    assert int(g.devices[len(p.types)]["type"]) == 0            # every descriptor in use is counted


def test_status_instances_mix_claimed_and_unclaimed_devices():
    for seed in SEEDS:
        right = d100.status.solution(seed)
        assert ACK | DRV | OK in right and (ACK in right or ACK | FAILED in right), (seed, right)
    assert {d100.status.problem(s).fail is None for s in SEEDS} == {True, False}


@pytest.mark.parametrize("seed", SEEDS)
def test_second_chance_answer_is_what_the_model_probes(seed):
    p = d100.second_chance.problem(seed)
    g = lguest.Host().launch(mem_mb=16, sharenet=[f"lan{i}" for i in range(p.lans)], drivers=())
    probed = {}
    answers = {"takes every device": lambda i: 0, "refuses every device": lambda i: -errno.ENODEV,
               "takes only even-numbered devices": lambda i: 0 if i % 2 == 0 else -errno.ENODEV}
    for name, type_, behaviour in p.drivers:
        probed[name] = []

        def probe(dev, name=name, behaviour=behaviour):
            probed[name].append(dev.index)
            return answers[behaviour](dev.index)
        g.kernel.bus.register_lguest_driver(LguestDriver(name, type_, probe))
    assert {"probed": probed, "status": statuses(g, len(p.types))} == d100.second_chance.answer(p)


def test_second_chance_always_gives_a_refused_device_a_second_offer():
    for seed in SEEDS:
        p = d100.second_chance.problem(seed)
        probed = d100.second_chance.answer(p)["probed"]
        offered_twice = [i for i in range(len(p.types)) if sum(i in v for v in probed.values()) > 1]
        assert offered_twice, (seed, probed)


@pytest.mark.parametrize("seed", SEEDS)
def test_too_early_answer_is_what_the_model_does(seed, tmp_path, monkeypatch):
    p = d100.too_early.problem(seed)
    g, returned = run_script(p, tmp_path, monkeypatch)
    assert {"returned": returned, "registered": len(g.kernel.bus.drivers),
            "status": statuses(g, len(p.types))} == d100.too_early.answer(p)
    built = {"console": "lguestcons", "block": "lguestblk", "net": "lguestnet"}
    late = [f"extra{n}" for n in range(len(p.early) + 1, len(p.early) + len(p.late) + 1)]
    assert [d.name for d in g.kernel.bus.drivers] == [built[d] for d in p.drivers] + late


@pytest.mark.parametrize("seed", SEEDS)
def test_hotplug_answer_is_what_the_model_does(seed, tmp_path, monkeypatch):
    p = d100.hotplug.problem(seed)
    caller_of = {}

    def probe(dev):
        caller_of[dev.index] = inspect.stack(0)[2].function
        return 0
    g, _ = run_script(p, tmp_path, monkeypatch, probe=probe)
    got = {slot: [caller_of.get(slot), int(g.devices[slot]["status"])]
           for kind, _, slot in p.steps if kind == "plug"}
    assert got == d100.hotplug.answer(p)


def test_hotplug_instances_show_both_callers():
    callers = {c for s in SEEDS for c, _ in d100.hotplug.solution(s).values()}
    assert callers == {"add_lguest_device", "register_lguest_driver", None}
    for seed in SEEDS:                  # every instance has a device that arrives after its driver
        assert "add_lguest_device" in [c for c, _ in d100.hotplug.solution(seed).values()], seed


# --- odd answers get a hint, never a crash -------------------------------------------------------------
ODD = [0, "7", b"x", [None], [True, 1], {"probed": 3, "status": 1}, {1: "x"}, [[1, 2, 3]], float("nan"),
       {"returned": None, "registered": "two", "status": "777"}, {"probed": {"A": 5}, "status": []}]


@pytest.mark.parametrize("exercise", d100.EXERCISES, ids=lambda e: e.label)
def test_odd_answers_get_a_hint(exercise):
    for seed in (2007, 1):
        for odd in ODD:
            result = exercise.check(odd, seed)
            assert not result.passed and "raised" not in result.hint, (odd, result.hint)


def test_numpy_and_tuple_answers_count():
    import numpy as np
    right = d100.status.solution(2007)
    assert d100.status.check(np.array(right, dtype=np.uint16), 2007).passed
    assert d100.status.check(tuple(right), 2007).passed
    hot = {slot: tuple(v) for slot, v in d100.hotplug.solution(2007).items()}
    assert d100.hotplug.check(hot, 2007).passed


def test_hints_name_the_mistake_without_the_answer():
    p = d100.too_early.problem(2007)
    right = d100.too_early.answer(p)
    wrong = {**right, "registered": right["registered"] + len(p.early)}
    assert "not-a-Guest exit" in d100.too_early.check(wrong, 2007).hint
    assert d100.hotplug.problem(2007).fail == 4                 # slot 3 arrives after x1; slot 4 fails
    assert "never joined the bus" in d100.hotplug.check({3: ["add_lguest_device", 7], 4: [None, 1]}, 2007).hint
    assert "arrives second" in d100.hotplug.check({3: ["register_lguest_driver", 7], 4: [None, 0x81]}, 2007).hint


# --- the fix: d100-ex-too-early stands on what the chapter shows ------------------------------------------
def chapter_cells():
    return ["".join(c["source"]) for c in json.loads((ROOT / "book" / "d100_bus.ipynb").read_text())["cells"]]


def test_too_early_points_only_at_what_the_chapter_shows():
    cells = chapter_cells()
    (text,) = [c for c in cells if ":label: d100-ex-too-early" in c]
    assert "by hand" not in text and "Read `register_lguest_driver()`" not in text
    # the section it names is a heading of the chapter, and that section says what the early call tests
    assert "*register_lguest_driver on a kernel that is not a Guest*" in text
    (section,) = [c for c in cells if "### register_lguest_driver on a kernel that is not a Guest" in c]
    assert "`lguest_devices` is still NULL" in section
    # D:100 and D:120 show what it leans on: lguest_devices left None, and boot=False then kernel.boot()
    assert any('print("lguest_devices:", bare.bus.lguest_devices)' in c for c in cells)
    d120 = next(k for k, c in enumerate(cells) if c.startswith("(d120)="))
    d130 = next(k for k, c in enumerate(cells) if c.startswith("(d130)="))
    assert any("boot=False" in c and "kernel.boot()" in c for c in cells[d120:d130])
    for section_ref in ("D:100", "D:120"):
        assert section_ref in text and any(c.startswith(f"(d{section_ref[2:]})=") for c in cells)


def test_too_early_registration_before_boot_is_forgotten():
    g = lguest.Host().launch(mem_mb=16, sharenet=["lan0"], drivers=("console",), boot=False)
    assert g.kernel.bus.lguest_devices is None
    assert g.kernel.bus.register_lguest_driver(LguestDriver("early", abi.LGUEST_DEVICE_T_NET, lambda d: 0)) == 0
    g.kernel.boot()
    assert [d.name for d in g.kernel.bus.drivers] == ["lguestcons"]
    assert statuses(g, 2) == [ACK, ACK | DRV | OK]


def test_the_chapter_sends_the_reader_to_the_hotplug_exercise_by_name():
    cells = chapter_cells()
    assert not any("The first exercise below tries it" in c for c in cells)
    assert any("The hotplug exercise at the end of the" in c for c in cells)
