"""The exercises of "The Launcher's side", held to the model: the routing answers agree with real
SEND_DMA hypercalls, the block outcomes with the Launcher's order of steps, the three-^C answers
with the rule in whole seconds (and the reads happen at the times the problem states), and the
usual slips fail for their own reasons.
Runs in a few seconds."""
from __future__ import annotations

import pytest

from lguest import abi
from lguest.classroom import launcher as m

C = m.CTRL_C


def test_route_answers_match_real_sends():
    """For each seed, every key is sent for real on a fresh world: a kill, a copy to another Guest,
    the Launcher, or nothing, as the answer says."""
    for seed in range(12):
        p = m.route.problem(seed)
        for key, said in zip(p.keys, m.route.solution(seed)):
            host, guests = m.route.world(p)
            sender = guests[p.sender]
            buf = sender.alloc(16)
            msg = sender.dma([(buf, 16)])
            mark = host.trace.mark()
            sender.hypercall(abi.LHCALL_SEND_DMA, key, msg)
            sends = host.trace.filter("send_dma", since=mark)
            if said == "killed":
                assert sender.dead == "bad sending DMA key" and not sends, (seed, key)
                continue
            assert sender.dead is None and len(sends) == 1, (seed, key)
            to = sends[0].to
            assert said == ("launcher" if to == "launcher" else "nowhere" if to is None else f"g{to}"), \
                (seed, key, said, to)
            if said.startswith("g"):
                assert host.trace.filter("copy", since=mark)[0].to == int(said[1:])


def test_route_private_keys_go_to_the_launcher_even_when_bound():
    p = m.route.problem(2007)
    p.keys = [0, 0x2000]                         # the console's own key is bound by its driver
    assert m.route.answer(p) == ["launcher", "launcher"]


@pytest.mark.parametrize("write, sector, nbytes, outcome, image", [
    (False, 1, 512, (1, 512), "abcd"),
    (True, 2, 512, (1, 0), "abWd"),
    (False, 3, 1024, (2, 512), "abcd"),
    (True, 3, 1024, (0, 2), "abcW"),             # GETDMA's irq (the disk is slot 1) is left behind
    (False, 4, 512, (0, 0), "abcd"),
    (True, 9, 512, (0, 0), "abcd"),
])
def test_block_outcomes_follow_the_launchers_order(write, sector, nbytes, outcome, image):
    out = m.block_request(4, ["--sharenet=lan0", "--block=disk.img"], write, sector, nbytes)
    assert out["outcome"] == outcome
    assert out["image"] == image
    if outcome[0] == 0:
        assert out["dead"].startswith("Launcher exited: ")
    else:
        assert out["dead"] is None


def test_block_irq_in_the_problem_is_the_disks_line():
    for seed in range(20):
        p = m.block.problem(seed)
        assert p.irq == p.devices.index("--block=disk.img") + 1


@pytest.mark.parametrize("reads, exits", [
    ([(1000, C), (1500, C), (1999, C)], 3),
    ([(999, C), (1500, C), (2000, C)], 0),       # 1001 ms, but seconds 0 and 2
    ([(1000, C), (2000, C), (2999, C)], 3),      # 1999 ms, seconds 1 and 2
    ([(1000, C * 2), (1100, C), (1200, C)], 0),  # a read of two ^C is not a ^C alone
    ([(1000, C), (1100, "x"), (1200, C), (1300, C)], 0),
    ([(1000, C), (1100, C), (3000, C), (3100, C), (3200, C)], 0),   # the count restarts after a third
    ([(1000, C), (1100, C), (3000, C), (3100, C), (3200, C), (3300, C)], 6),
])
def test_ctrl_c_cases(reads, exits):
    assert m.ctrl_c_run(reads)[0] == exits
    assert m.ctrl_c_rule(reads) == exits


def test_ctrl_c_reads_happen_when_the_problem_says():
    for seed in range(25):
        p = m.ctrlc.problem(seed)
        n, ticks = m.ctrl_c_run(p.reads)
        assert ticks == [ms for ms, _ in p.reads][:len(ticks)], seed
        assert n == m.ctrl_c_rule(p.reads), seed


def test_ctrl_c_exit_is_quiet_with_status_2():
    import lguest
    host = lguest.Host()
    guest = host.launch(mem_mb=1)
    for ms in (1000, 1200, 1400):
        host.idle(ms - host.tick)
        guest.console.type(C)
        host.run()
    assert guest.launcher.status == 2 and guest.launcher.log == []
    assert guest.dead == "Launcher exited: three ^C (status 2)"


@pytest.mark.parametrize("exercise, wrong, fragment", [
    (m.route, ["launcher"], "one item per key"),
    (m.route, "launcher", "list of strings"),
    (m.block, (1,), "pair of whole numbers"),
    (m.ctrlc, "3", "whole number"),
])
def test_malformed_answers_say_what_is_expected(exercise, wrong, fragment):
    result = exercise.check(wrong, 2007)
    assert not result.passed and fragment in result.hint


def test_every_exercise_names_some_mistake_over_many_seeds():
    for exercise in m.EXERCISES:
        assert any(exercise.mistakes(exercise.problem(seed)) for seed in range(10)), exercise.label
