"""The classroom contract, for every checkable exercise of the book.

problem(seed) makes the instance; solution(seed) passes check for any seed; the typical
mistakes fail with their own hint, which does not give the answer away; an empty answer
cell says so; under grading a wrong answer raises. And each chapter holds its exercises in
the cells nbgrader needs: an answer cell (solution) and a locked check cell (grade).
"""
from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lguest import classroom
from lguest.classroom import BOOK_SEED, CHAPTERS, KINDS, course_seed, exercises, seed_for

ROOT = Path(__file__).resolve().parent.parent
EXERCISES = exercises()
LABELS = sorted(EXERCISES)
seeds = st.integers(0, classroom.MAX_SEED - 1)


def notebook_cells(chapter: str) -> list[dict]:
    path, = [*(ROOT / "book").glob(f"{chapter}.ipynb"), *(ROOT / "book").glob(f"{chapter}_*.ipynb")]
    return json.loads(path.read_text())["cells"]


def source(cell) -> str:
    return "".join(cell["source"])


# --- the book has them ----------------------------------------------------------------------
@pytest.mark.parametrize("chapter", CHAPTERS)
def test_every_chapter_has_at_least_three_checkable_exercises(chapter):
    labels = [label for label in LABELS if label.startswith(chapter + "-")]
    assert len(labels) >= 3, f"{chapter} has {labels}"


def test_the_three_kinds_are_all_in_the_book():
    assert {e.kind for e in EXERCISES.values()} == set(KINDS)


@pytest.mark.parametrize("label", LABELS)
def test_each_exercise_sits_in_its_chapter_as_answer_and_locked_check_cells(label):
    exercise = EXERCISES[label]
    cells = notebook_cells(label.split("-")[0])
    texts = [source(c) for c in cells]
    assert any(f":label: {label}" in t for t in texts), f"no {{exercise}} labelled {label}"
    checks = [c for c in cells if c.get("metadata", {}).get("nbgrader", {}).get("grade_id") == label]
    assert len(checks) == 1, f"one check cell with grade_id {label}"
    meta = checks[0]["metadata"]["nbgrader"]
    assert meta["grade"] and meta["locked"] and not meta["solution"] and meta["points"] == exercise.points
    assert ".check(" in source(checks[0])
    answers = [c for c in cells if c.get("metadata", {}).get("nbgrader", {}).get("grade_id") == f"{label}-answer"]
    assert len(answers) == 1 and answers[0]["metadata"]["nbgrader"]["solution"]
    text = source(answers[0])
    assert "### BEGIN SOLUTION" in text and "### END SOLUTION" in text
    assert "hide-cell" in answers[0]["metadata"].get("tags", []), \
        "the book folds a solution away whole, its code and what it prints"
    prompt = answers[0]["metadata"].get("mystnb", {}).get("code_prompt_show")
    assert prompt == "Show the worked solution", f"the fold says {prompt!r}"
    stored = "".join("".join(o.get("text", "")) + "".join(o.get("data", {}).get("text/plain", ""))
                     for o in checks[0].get("outputs", []))
    assert stored.strip() == f"{label}: right", f"the book's stored check says {stored!r}"


@pytest.mark.parametrize("chapter", CHAPTERS)
def test_no_chapter_keeps_a_solution_outside_nbgrader_cells(chapter):
    """solution-start/solution-end wrap plain cells nbgrader cannot strip; every solution is an
    answer cell or an essay's answer cell instead."""
    for cell in notebook_cells(chapter):
        text = source(cell)
        assert "{solution-start}" not in text and "{solution-end}" not in text
        if "```{solution}" in text:
            meta = cell.get("metadata", {}).get("nbgrader", {})
            assert meta.get("solution") and meta.get("grade"), "an essay's solution is a manually graded answer cell"
            assert text.lstrip().startswith("```{solution}"), "the solution cell holds the solution only"
            assert "**Rubric" in text, "every essay has a rubric for the teacher"


# --- the contract ----------------------------------------------------------------------------------
@pytest.mark.parametrize("label", LABELS)
@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(seed=seeds)
def test_every_solution_passes_its_check(label, seed):
    exercise = EXERCISES[label]
    assert exercise.check(exercise.solution(seed), seed).passed


@pytest.mark.parametrize("label", LABELS)
def test_typical_mistakes_fail_with_their_own_hint(label):
    exercise = EXERCISES[label]
    for seed in (BOOK_SEED, 1, 424242):
        problem = exercise.problem(seed)
        right = exercise.answer(problem)
        for wrong, fragment in exercise.mistakes(problem):
            result = exercise.check(wrong, seed)
            assert not result.passed, (seed, wrong)
            assert fragment in result.hint, (seed, result.hint, fragment)
            if not callable(right) and len(repr(right)) > 3:
                assert repr(right) not in result.hint, "a hint must not give the answer away"


def test_the_book_lists_mistakes_for_most_exercises():
    with_mistakes = [label for label, e in EXERCISES.items() if e.mistakes(e.problem(BOOK_SEED))]
    assert len(with_mistakes) >= len(EXERCISES) * 2 // 3, with_mistakes


@pytest.mark.parametrize("label", LABELS)
def test_an_empty_answer_cell_says_so(label):
    result = EXERCISES[label].check(None, BOOK_SEED)
    assert not result.passed and "no answer yet" in result.hint


@pytest.mark.parametrize("label", LABELS)
def test_problems_are_deterministic_and_vary_with_the_seed(label):
    exercise = EXERCISES[label]
    assert repr(exercise.problem(7)) == repr(exercise.problem(7))
    assert len({repr(exercise.problem(s)).split("\n", 1)[1] for s in range(12)}) > 1, "every seed gives the same problem"


def test_under_grading_a_wrong_answer_raises(monkeypatch):
    exercise = EXERCISES[LABELS[0]]
    monkeypatch.setenv(classroom.GRADING_ENV, "1")
    with pytest.raises(AssertionError, match="not yet"):
        exercise.check(None, BOOK_SEED)
    assert exercise.check(exercise.solution(BOOK_SEED), BOOK_SEED).passed


# --- seeds -------------------------------------------------------------------------------------------
def test_a_students_seed_comes_from_their_id_and_the_secret():
    assert seed_for("alice", "s3cret") == seed_for("alice", "s3cret")
    assert len({seed_for(sid, "s3cret") for sid in ("alice", "bob", "carol", "dave")}) == 4
    assert seed_for("alice", "s3cret") != seed_for("alice", "other")
    assert 0 <= seed_for("alice", "s3cret") < classroom.MAX_SEED
    with pytest.raises(classroom.LguestError, match="non-empty"):
        seed_for("alice", "")


def test_the_graders_seed_wins_then_the_students_then_the_books(monkeypatch):
    monkeypatch.delenv(classroom.SEED_ENV, raising=False)
    assert course_seed() == BOOK_SEED and course_seed(123) == 123
    with pytest.raises(classroom.LguestError, match="your teacher gives you yours"):
        course_seed(-1)
    monkeypatch.setenv(classroom.SEED_ENV, "555")
    assert course_seed(123) == 555


def test_the_teachers_table_lists_every_exercise_as_it_is():
    from lguest.classroom.course import TABLE_MARK, exercise_table
    page = (ROOT / "book" / "teachers.md").read_text()
    assert page.split(TABLE_MARK, 1)[1].strip() == exercise_table().strip(), \
        "book/teachers.md is stale: run python -m lguest.classroom table"
