"""D:400's checkable exercises, against the model: the names, two in flight, the old end_request, ticks."""
from __future__ import annotations

import pytest

import lguest
from lguest import abi
from lguest.classroom import BOOK_SEED, d400

SEEDS = (BOOK_SEED, 0, 1, 77, 424242, 999_999)


# --- names ----------------------------------------------------------------------------------
def test_linux_names_are_sds_scheme():
    assert [d400.linux_name(n) for n in (0, 25, 26, 27, 51, 52, 701, 702, 18277, 18278)] == \
        ["lgba", "lgbz", "lgbaa", "lgbab", "lgbaz", "lgbba", "lgbzz", "lgbaaa", "lgbzzz", "lgbaaaa"]
    names = [d400.linux_name(n) for n in range(20_000)]
    assert len(set(names)) == len(names)
    assert all(n[3:].isalpha() and n[3:].islower() for n in names)
    assert names == sorted(names, key=lambda n: (len(n), n))        # shortlex: all one-letter first


def boot_with_index(tmp_path, first_index: int, disks: int):
    """Names a Guest's probe gives when ``first_index`` disks were probed before it."""
    path = tmp_path / "tiny.img"
    path.write_bytes(bytes(abi.SECTOR_SIZE))
    guest = lguest.Host().launch(mem_mb=4, block=[str(path)] * disks, boot=False)
    guest.kernel.block.next_block_index = chr(ord("a") + first_index)
    guest.kernel.boot()
    return [bd.disk.disk_name for bd in guest.kernel.block.disks]


def test_what_the_exercise_says_2007_did_is_what_the_model_does(tmp_path):
    assert boot_with_index(tmp_path, 0, 15) == [d400.name_2007(n) for n in range(15)]
    assert boot_with_index(tmp_path, 15, 14) == [d400.name_2007(n) for n in range(15, 29)]
    assert d400.name_2007(26) == "lgb{" and d400.linux_name(26) == "lgbaa"


@pytest.mark.parametrize("seed", SEEDS)
def test_the_names_cases_cover_where_2007_was_right_and_wrong(seed):
    cases = d400.names.problem(seed).cases
    assert 26 in cases and 25 in cases
    assert any(n < 26 for n in cases) and sum(n > 26 for n in cases) >= 4
    right = [n for n in cases if d400.name_2007(n) == d400.linux_name(n)]
    assert right and all(n < 26 for n in right)


@pytest.mark.parametrize("seed", SEEDS)
def test_every_wrong_namer_fails_and_odd_answers_get_a_hint(seed):
    for wrong, fragment in d400.names.WRONG:
        result = d400.names.check(wrong, seed)
        assert not result.passed and fragment in result.hint
    for odd, says in ((lambda n: None, "NoneType"), (lambda n: n, "int"), ("lgbaa", "function itself"),
                      (lambda n: "lgb" + "a" * (n + 1), "one letter each"),
                      (lambda n: d400.linux_name(n) if n < 26 else "lgb" + "z" * 3, "not sd's name"), (lambda n: 1 / 0, "ZeroDivisionError"),
                      (lambda n: "LGB" + d400.linux_name(n)[3:], "lower-case")):
        result = d400.names.check(odd, seed)
        assert not result.passed and says in result.hint, (says, result.hint)


# --- two in flight ---------------------------------------------------------------------------
@pytest.mark.parametrize("seed", SEEDS)
def test_the_solution_behaves_as_the_models_own_driver_with_two(seed):
    p = d400.inflight.problem(seed)
    mine, model = d400.run_requests(p, d400.driver_two), d400.run_requests(p)
    assert mine == model and mine["error"] is None and mine["dead"] is None
    assert max(len(s[3]) for s in mine["steps"]) == 2                 # two really were out at once
    assert mine["steps"][1][2] and mine["steps"][-1][1:] == (0, False, ())
    assert mine["sends"] == [1] * len(p.requests) and all(mine["uptodate"])
    assert mine["irqs"] < len(p.requests)                           # one interrupt ended two
    one = d400.run_requests(p, d400.driver_2007)
    assert one["reads"] == mine["reads"] and one["image"] == mine["image"]   # the same data either way
    assert one["irqs"] == len(p.requests) and max(len(s[3]) for s in one["steps"]) == 1


@pytest.mark.parametrize("seed", SEEDS)
def test_the_requests_stay_inside_the_disk_and_first_is_a_read(seed):
    p = d400.inflight.problem(seed)
    assert 4 <= len(p.requests) <= 6 and not p.requests[0][0]
    for write, sector, nbytes in p.requests:
        assert nbytes % abi.SECTOR_SIZE == 0 and 0 < nbytes <= 4 * abi.PAGE_SIZE
        assert sector * abi.SECTOR_SIZE + nbytes <= p.sectors * abi.SECTOR_SIZE


@pytest.mark.parametrize("seed", SEEDS)
def test_every_wrong_driver_fails_with_its_hint(seed):
    for wrong, fragment in d400.inflight.WRONG:
        result = d400.inflight.check(wrong, seed)
        assert not result.passed and fragment in result.hint, (wrong.__name__, result.hint)


def test_a_driver_that_breaks_or_does_nothing_gets_a_hint():
    def raises(blk, q):
        raise RuntimeError("oops")

    def nothing(blk, q):
        pass

    def stops_at_once(blk, q):                        # two in flight, but stops after the first send too
        d400.driver_two(blk, q)
        if q.queue and not q.stopped:
            q.blk_stop_queue()

    assert "RuntimeError: oops" in d400.inflight.check(raises, BOOK_SEED).hint
    assert "never had two" in d400.inflight.check(nothing, BOOK_SEED).hint
    assert "never had two" in d400.inflight.check(stops_at_once, BOOK_SEED).hint
    assert "function itself" in d400.inflight.check(42, BOOK_SEED).hint


# --- the old end_request --------------------------------------------------------------------
def dd_old(tmp_path, bs: int, count: int) -> dict:
    path = tmp_path / "disk.img"
    path.write_bytes(bytes(3 * 65536))
    host = lguest.Host()
    guest = host.launch(mem_mb=16, block=[str(path)])
    guest.kernel.block.end_entire = False
    guest.shell(f"dd if=/dev/lgba of=/dev/null bs={bs // 1024}k count={count}")
    ios = host.trace.filter("block_io")
    return {"sends": len(ios), "interrupts": guest.kernel.irq_counts[guest.kernel.block.disks[0].irq],
            "bytes": sum(e.bytes for e in ios)}


@pytest.mark.parametrize("bs_k", range(4, 65, 2))
def test_the_old_way_formula_is_what_the_model_does(tmp_path, bs_k):
    for count in ((1, 3) if bs_k % 10 == 0 else (1,)):
        assert d400.old_way(bs_k * 1024, count) == dd_old(tmp_path, bs_k * 1024, count)


def test_the_old_instances_stay_within_one_request_per_record():
    for seed in range(200):
        p = d400.old.problem(seed)
        assert 4 * 1024 <= p.bs <= 64 * 1024 and p.bs % 2048 == 0 and 1 <= p.count <= 3


def test_old_hints_do_not_crash_on_odd_answers():
    for odd in ({"sends": "many", "interrupts": None, "bytes": []}, {"sends": 1}, 12, "x"):
        result = d400.old.check(odd, BOOK_SEED)
        assert not result.passed and result.hint


# --- ticks --------------------------------------------------------------------------------------
@pytest.mark.parametrize("seed", SEEDS)
def test_the_ticks_saved_are_interrupts_saved(seed):
    p = d400.ticks.problem(seed)
    requests = -(-p.sectors * abi.SECTOR_SIZE // d400.REQUEST)
    assert d400.read_ticks(p.sectors, 1, p.n) == 2 * requests          # a SEND and an interrupt each
    assert d400.ticks.answer(p) == requests - -(-requests // p.n)      # N share one interrupt
    for wrong, fragment in d400.ticks.mistakes(p):
        assert not d400.ticks.same(wrong, d400.ticks.answer(p))


def test_ticks_mistakes_never_pass_for_any_instance():
    for seed in range(500):
        p = d400.ticks.problem(seed)
        requests = -(-p.sectors * abi.SECTOR_SIZE // d400.REQUEST)
        right = requests - -(-requests // p.n)
        assert right >= 4
        for wrong, _ in d400.ticks.mistakes(p):
            assert not d400.ticks.same(wrong, right), (seed, wrong, right)


def test_ticks_hints_for_odd_answers():
    assert "a number" in d400.ticks.check("ten", BOOK_SEED).hint
    assert "a number" in d400.ticks.check(True, BOOK_SEED).hint
    assert "host.tick" in d400.ticks.check(10_000, BOOK_SEED).hint
