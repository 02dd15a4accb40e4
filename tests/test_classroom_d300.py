"""The console chapter's checkable exercises, beyond the generic contract of test_classroom.py.

put_chars_fixed is checked inside the model: the typical wrong fixes of the FIXME fail, each with
its own hint. The predicts' worked reasoning (as the chapter's solutions do it) agrees with the
model for many seeds. And the 4096-byte room of one poll, which d300-ex-stale needs, is stated in
the chapter where hvc's poll is described, with the model's own number.
"""
from __future__ import annotations

import json
import math
import time
from pathlib import Path

import pytest

from lguest import abi
from lguest.classroom import BOOK_SEED, d300
from lguest.guest.linux.hvc import TTY_FLIP_ROOM
from lguest.structs import write_dma

ROOT = Path(__file__).resolve().parent.parent
PAGE = abi.PAGE_SIZE
SEEDS = (BOOK_SEED, 0, 1, 17, 4242, 424242, 999_999)


def _send(kernel, sections, count):
    write_dma(kernel.memory, kernel.console.stack_dma, sections)
    kernel.lguest_send_dma(abi.LGUEST_CONSOLE_DMA_KEY, kernel.console.stack_dma)
    return count


def _cut(buf, count, room):
    sections, addr, left = [], buf, count
    while left:
        n = min(left, room(addr))
        sections.append((addr, n))
        addr, left = addr + n, left - n
    return sections


# --- d300-ex-fixme ------------------------------------------------------------------------------
def test_the_fixme_reference_passes_quickly_for_many_seeds():
    for seed in SEEDS:
        start = time.perf_counter()
        assert d300.fixme.check(d300.put_chars_fixed, seed).passed, seed
        assert time.perf_counter() - start < 1.0


@pytest.mark.parametrize("seed", SEEDS)
def test_every_instance_has_the_edge_cases(seed):
    cases = d300.fixme.problem(seed).cases
    touched = [(off + n - 1) // PAGE + 1 for off, n, _ in cases]      # pages, from a page start
    assert all(0 <= off < PAGE and n >= 1 for off, n, _ in cases)
    assert any(off + n == PAGE for off, n, _ in cases), "one ends exactly on a boundary"
    assert any(off == 0 for off, n, _ in cases), "one starts on a boundary"
    assert 2 in touched and 3 in touched and 4 in touched, "crosses one, two and three boundaries"
    assert all(t <= 4 for t in touched)                                # the receiver holds 4 pages


def test_the_2007_put_chars_gets_the_sender_killed_and_the_hint_says_where():
    result = d300.fixme.check(d300._put_chars_2007, BOOK_SEED)
    assert not result.passed and "case 4 (crosses one boundary)" in result.hint
    assert "crosses a page boundary" in result.hint


def test_splitting_once_fails_on_a_buffer_longer_than_a_page():
    for seed in SEEDS:
        result = d300.fixme.check(d300._put_chars_split_once, seed)
        assert not result.passed and "longer than a page" in result.hint
        assert "more than one boundary" in result.hint


@pytest.mark.parametrize("wrong, fragment", [
    (d300._put_chars_one_over, "one byte past"),
    (d300._put_chars_one_short, "more sections than pages"),
])
def test_off_by_one_cuts_fail_with_their_hint(wrong, fragment):
    for seed in SEEDS:
        result = d300.fixme.check(wrong, seed)
        assert not result.passed and fragment in result.hint, (seed, result.hint)


def test_other_wrong_fixes_fail_with_a_hint_that_names_the_fault():
    def one_send_per_page(kernel, buf, count):
        for section in _cut(buf, count, lambda a: PAGE - a % PAGE):
            _send(kernel, [section], section[1])
        return count

    def returns_nothing(kernel, buf, count):
        d300.put_chars_fixed(kernel, buf, count)

    def drops_the_last_byte(kernel, buf, count):
        return _send(kernel, _cut(buf, count - 1, lambda a: PAGE - a % PAGE), count)

    def cuts_every_16_bytes(kernel, buf, count):
        return _send(kernel, _cut(buf, min(count, 256), lambda a: 16), count)

    hints = {f.__name__: d300.fixme.check(f, BOOK_SEED).hint
             for f in (one_send_per_page, returns_nothing, drops_the_last_byte, cuts_every_16_bytes)}
    assert "exactly one SEND_DMA" in hints["one_send_per_page"]
    assert "return how many bytes" in hints["returns_nothing"]
    assert "did not print the buffer's bytes" in hints["drops_the_last_byte"]
    assert "more sections than pages" in hints["cuts_every_16_bytes"]
    assert d300.fixme.check(lambda kernel, buf: 0, BOOK_SEED).hint.startswith("checking your answer raised TypeError")
    assert "your function itself" in d300.fixme.check(42, BOOK_SEED).hint


# --- d300-ex-chunks -----------------------------------------------------------------------------
@pytest.mark.parametrize("seed", SEEDS)
def test_the_chunks_reasoning_matches_the_model(seed):
    n = d300.chunks.problem(seed).n
    reads = [min(256, n - start) for start in range(0, n, 256)]
    reasoned = {"used_len": reads, "interrupts": len(reads), "polls": len(reads),
                "get_chars": sum(math.ceil(k / 16) + 1 for k in reads), "sends": n}
    assert d300.chunks.solution(seed) == reasoned


def test_the_chunks_instances_include_whole_buffers_and_whole_chunks():
    sizes = [d300.chunks.problem(s).n for s in range(60)]
    assert any(n % 256 == 0 for n in sizes) and any(n % 16 == 0 and n % 256 for n in sizes)
    assert any(n > 256 for n in sizes) and any(n < 256 for n in sizes)


# --- d300-ex-stale ------------------------------------------------------------------------------
def test_the_stale_instances_cover_the_three_ways_and_each_behaves_as_the_solution_says():
    seen = {}
    for seed in range(80):
        p = d300.stale.problem(seed)
        seen.setdefault(p.regime, (seed, p))
    assert set(seen) == {"below", "equal", "above"}
    seed, p = seen["below"]                    # runs away: 16 a call, never handed back
    right = d300.stale.solution(seed)
    assert right == {"returns": [16] * 3, "cons_offset": 16 * p.by_hand + 48, "poll": TTY_FLIP_ROOM}
    seed, p = seen["equal"]                    # handed back at once: the new input is lost
    assert d300.stale.solution(seed) == {"returns": [0, 0, 0], "cons_offset": 0, "poll": 0}
    seed, p = seen["above"]                    # only the tail of the new input comes out
    right = d300.stale.solution(seed)
    assert sum(right["returns"]) == p.second - 16 * p.by_hand and right["poll"] == 0


def test_the_book_seed_shows_the_runaway():
    assert d300.stale.problem(BOOK_SEED).regime == "below"
    assert d300.stale.solution(BOOK_SEED)["poll"] == TTY_FLIP_ROOM


def test_the_chapter_states_the_poll_limit_the_stale_exercise_needs():
    """Issue: d300-ex-stale depended on a 4096-byte tty limit the chapter never mentioned."""
    cells = json.loads((ROOT / "book" / "d300_console.ipynb").read_text())["cells"]
    texts = ["".join(c["source"]) for c in cells]
    (d350,) = [t for t in texts if t.startswith("(d350)=")]
    assert f"{TTY_FLIP_ROOM} bytes" in d350 and "TTY_FLIP_ROOM" in d350
    (stale,) = [t for t in texts if ":label: d300-ex-stale" in t]
    assert "D:350 says what stops a poll" in stale
    exercises_at = texts.index(next(t for t in texts if t.startswith("## Exercises")))
    assert all("4096" not in t for t in texts[exercises_at:] if ":label:" in t), "the number is the chapter's"


# --- d300-ex-printk -----------------------------------------------------------------------------
@pytest.mark.parametrize("seed", SEEDS)
def test_the_printk_reasoning_matches_the_model(seed):
    message = d300.printk.problem(seed).message
    size = len((message + "\n").replace("\n", "\r\n").encode())
    assert d300.printk.solution(seed) == [min(16, size - start) for start in range(0, size, 16)]


def test_printk_hints():
    p = d300.printk.problem(BOOK_SEED)
    assert "no answer yet" in d300.printk.check(None, BOOK_SEED).hint
    assert "list of whole numbers" in d300.printk.check("16, 16", BOOK_SEED).hint
    assert "16 bytes at a time" in d300.printk.check([len(p.message) + 2], BOOK_SEED).hint
