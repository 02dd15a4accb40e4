"""D:200's checkable exercises, against the model: every right answer is what the Host does,
the typical wrong copies fail with their own hint, and the two repaired solutions hold."""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from lguest import abi
from lguest.classroom import BOOK_SEED, d200

ROOT = Path(__file__).resolve().parent.parent
SEEDS = (BOOK_SEED, 0, 1, 17, 424242, 999_999)


def answer_cell(label: str) -> str:
    cells = json.loads((ROOT / "book" / "d200_io.ipynb").read_text())["cells"]
    (cell,) = [c for c in cells if c.get("metadata", {}).get("nbgrader", {}).get("grade_id") == f"{label}-answer"]
    return "".join(cell["source"])


# --- d200-ex-lockstep ----------------------------------------------------------------------------
def real_pieces(src_lens, dst_lens, fixed=False):
    """A real send of bytes 0..N-1 of a stream; which runs of it the receiver holds, and used_len."""
    host, g0, g1, to_1, key_1 = d200._pair(fixed=fixed)
    dst = d200._sections(g1, dst_lens)
    ring = g1.dma_array([dst])
    g1.kernel.lguest_bind_dma(key_1, ring, 1, 1)
    stream = hashlib.shake_128(b"test").digest(sum(src_lens))
    msg = g0.dma(d200._sections(g0, src_lens, stream))
    g0.kernel.lguest_send_dma(to_1, msg)
    used = g0.memory.u32(msg)
    assert g1.memory.u32(ring) == used
    got = b"".join(g1.memory.read(a, n) for a, n in dst)[:used]
    pieces, at = [], 0
    for *_, n in d200.copy_steps(src_lens, dst_lens):
        first = stream.find(got[at:at + n])
        pieces.append((first, first + n))
        at += n
    return used, d200._merge(pieces)


@pytest.mark.parametrize("seed", SEEDS)
def test_lockstep_answer_is_what_a_real_send_delivers(seed):
    p = d200.lockstep.problem(seed)
    used, pieces = real_pieces(p.src, p.dst)
    assert d200.lockstep.answer(p) == {"used_len": used, "pieces": pieces}
    # the fixed Host delivers one run in order; that answer is refused with the bug's hint
    used_fixed, fixed = real_pieces(p.src, p.dst, fixed=True)
    assert used_fixed == used and fixed == [(0, used)]
    result = d200.lockstep.check({"used_len": used, "pieces": fixed}, seed)
    assert not result.passed and "start of its source section" in result.hint


def test_lockstep_accepts_touching_runs_unmerged_and_lists_for_tuples():
    p = d200.lockstep.problem(BOOK_SEED)
    right = d200.lockstep.answer(p)
    split = [[a, b] for first, end in right["pieces"] for a, b in ((first, first + 1), (first + 1, end))]
    assert d200.lockstep.check({"used_len": right["used_len"], "pieces": split}, BOOK_SEED).passed
    assert not d200.lockstep.check({"used_len": right["used_len"], "pieces": "0..10"}, BOOK_SEED).passed


def test_lockstep_solution_makes_the_real_send():
    """The fix of issue 12: the worked solution sends, as the exercise asks, not only plans."""
    text = answer_cell("d200-ex-lockstep")
    assert "show.lockstep_table(" in text and "lguest_send_dma(" in text and "write_dma(" in text


# --- d200-ex-deaf -------------------------------------------------------------------------------
@pytest.mark.parametrize("seed", range(25))
def test_deaf_simulation_agrees_with_the_model(seed):
    p = d200.deaf.problem(seed)
    assert d200._deaf_sim(p.deaf, p.sends) == d200.deaf.answer(p)


def test_a_deaf_entry_0_blocks_a_good_entry_1_until_a_ping():
    """The fix of issue 12: the deaf entry is not skipped. next_dma stays on it, so the good
    entry behind it never gets a frame, and no interrupt tells the receiver; a ping gets past."""
    host, g0, g1, to_1, key_1 = d200._pair()
    ring = g1.dma_array([[], d200._sections(g1, [200])])
    g1.kernel.lguest_bind_dma(key_1, ring, 2, 1)
    frame, ping = g0.dma(d200._sections(g0, [100])), g0.dma([])
    mark = host.trace.mark()
    for _ in range(3):
        g0.kernel.lguest_send_dma(to_1, frame)
        assert g0.memory.u32(frame) == 0
    (binding,) = host.bindings()
    assert g1.memory.u32(ring + abi.DMA_SIZE) == 0 and binding.next_dma == 0
    assert host.trace.counts(since=mark)["transfer_failed"] == 3 and not g1.pending_irqs
    assert "irq_raise" not in host.trace.counts(since=mark)
    g0.kernel.lguest_send_dma(to_1, ping)                 # delivered into entry 0: next_dma 1
    g0.kernel.lguest_send_dma(to_1, frame)
    assert binding.next_dma == 2 and g1.memory.u32(ring + abi.DMA_SIZE) == 100     # counts on; % num picks
    assert d200._deaf_sim([True, False], ["frame"] * 3 + ["ping", "frame"]) == [None, None, None, 0, 1]


def test_deaf_solution_says_the_good_entries_behind_are_blocked():
    text = answer_cell("d200-ex-deaf")
    assert "blocks the good entries behind it" in text and "does NOT move next_dma" in text
    assert "lan_pair(num=2" in text                       # the entry 0 deaf, entry 1 good case


def test_deaf_skipping_hint_names_next_dma():
    for seed in SEEDS:
        p = d200.deaf.problem(seed)
        result = d200.deaf.check(d200._deaf_sim(p.deaf, p.sends, skip_deaf=True), seed)
        assert not result.passed and "next_dma where it was" in result.hint


# --- d200-ex-fix ----------------------------------------------------------------------------------
def good(src, dst_lens):
    stream, out, at = b"".join(src), [], 0
    total = min(len(stream), sum(dst_lens))
    for n in dst_lens:
        out.append(stream[at:min(at + n, total)])
        at = min(at + n, total)
    return out


def raises(src, dst_lens):
    raise RuntimeError("not written yet")


@pytest.mark.parametrize("seed", SEEDS)
def test_fix_expected_bytes_are_the_fixed_hosts_and_an_independent_copy_passes(seed):
    p = d200.fix.problem(seed)
    assert d200.fix.expected(p) == [good(src, dst) for (_, dst), src in zip(p.cases, p.data)]
    assert d200.fix.check(good, seed).passed
    assert d200.fix.check(d200._copy_fixed_ref, seed).passed


@pytest.mark.parametrize("wrong, fragment", [
    (d200._copy_2007, "that is 2007's copy"),
    (d200._copy_padded, "only the bytes copied into it"),
    (d200._copy_unbounded, "more bytes than the receiver has room for"),
    (lambda src, dst_lens: [b"".join(src)] * (len(dst_lens) + 1), "one bytes object per receiver section"),
    (lambda src, dst_lens: [str(n) for n in dst_lens], "each item of the list is a bytes object"),
    (raises, "raised RuntimeError"),
    (d200._copy_fixed_ref([b"ab"], [2]), "the function itself"),
])
@pytest.mark.parametrize("seed", SEEDS)
def test_fix_refuses_the_usual_wrong_copies(wrong, fragment, seed):
    result = d200.fix.check(wrong, seed)
    assert not result.passed and fragment in result.hint, result


@pytest.mark.parametrize("seed", SEEDS)
def test_fix_cases_cover_the_bug_spare_room_and_a_drop(seed):
    p = d200.fix.problem(seed)
    assert sum(1 for src, dst in p.cases if d200._reread(src, dst)) >= 3
    assert any(sum(dst) > sum(src) for src, dst in p.cases)
    assert any(sum(dst) < sum(src) for src, dst in p.cases)


def test_fix_on_the_2007_host_is_the_buggy_copy():
    """The model's unfixed Host delivers exactly what _copy_2007 computes: the hint is honest."""
    p = d200.fix.problem(BOOK_SEED)
    for (src_lens, dst_lens), src in zip(p.cases, p.data):
        host, g0, g1, to_1, key_1 = d200._pair()
        dst = d200._sections(g1, dst_lens)
        ring = g1.dma_array([dst])
        g1.kernel.lguest_bind_dma(key_1, ring, 1, 1)
        g0.kernel.lguest_send_dma(to_1, g0.dma(d200._sections(g0, src_lens, b"".join(src))))
        got = b"".join(g1.memory.read(a, n) for a, n in dst)[:g1.memory.u32(ring)]
        assert got == b"".join(d200._copy_2007(src, dst_lens))


# --- d200-ex-reread -------------------------------------------------------------------------------
@pytest.mark.parametrize("seed", SEEDS)
def test_reread_is_the_round_robin_sum_and_zero_once_fixed(seed):
    p = d200.reread.problem(seed)
    right = d200.reread.answer(p)
    assert right == sum(d200._reread(s, p.ring[i % len(p.ring)]) for i, s in enumerate(p.sends)) > 0
    _host, copies = d200.reread.run(p, fixed=True)
    assert len(copies) == len(p.sends) and not any("reread" in e.fields for e in copies)
    result = d200.reread.check(0, seed)
    assert not result.passed and "copy_data_fixed" in result.hint
    assert not d200.reread.check("lots", seed).passed


# --- the essays' worked solutions ----------------------------------------------------------------
def chapter_cells() -> list[dict]:
    return json.loads((ROOT / "book" / "d200_io.ipynb").read_text())["cells"]


def solution_code_blocks() -> list[str]:
    """The `~~~python` blocks inside the chapter's markdown (the essays' worked solutions)."""
    blocks = []
    for cell in chapter_cells():
        if cell["cell_type"] == "markdown":
            text = "".join(cell["source"])
            blocks += [part.split("\n~~~", 1)[0] for part in text.split("~~~python\n")[1:]]
    return blocks


def test_every_essay_solution_prints_what_its_comments_say(capsys):
    """Each block runs after the chapter's imports and `lan_pair`, and each line it prints is
    written in the block as a `# ...` comment, in the same order."""
    code = [c for c in chapter_cells() if c["cell_type"] == "code"]
    setup = ["".join(code[0]["source"]),
             next("".join(c["source"]) for c in code if "def lan_pair(" in "".join(c["source"]))]
    blocks = solution_code_blocks()
    assert len(blocks) == 3, "the chapter's three essays with code: retry, top, zeros"
    for block in blocks:
        namespace: dict = {}
        for source in setup:
            exec(source, namespace)
        capsys.readouterr()
        exec(block, namespace)
        printed = capsys.readouterr().out.splitlines()
        assert printed, f"the block prints nothing:\n{block}"
        comments = [line.split("# ", 1)[1] for line in block.splitlines() if "# " in line]
        shown = [c for c in comments if c in printed]
        assert shown == printed, f"printed {printed}, the comments say {comments}"
