"""The book as an nbgrader course: grading a folder of submissions, and the student edition.

Grading runs nbgrader's autograde for real, on D:010 only (the others work the same way and
would only make this slower): one student right everywhere, one with a wrong answer, one whose
answer raises, one whose answer loops forever. The student edition is built once for the module
and searched for every line of every solution.
"""
from __future__ import annotations

import csv
import json
import re
from pathlib import Path

import nbformat
import pytest

from lguest.classroom import seed_for
from lguest.classroom.course import ASSIGNMENT, build_student_edition, chapter_notebooks, grade

ROOT = Path(__file__).resolve().parent.parent
SECRET = "test-secret"
D010 = ROOT / "book" / "d010_devices.ipynb"


def submission(tmp: Path, student: str, answers: dict[str, str]) -> None:
    """The chapter as a student hands it in: the teacher's notebook, some answer cells rewritten."""
    nb = nbformat.read(D010, as_version=4)
    for cell in nb.cells:
        grade_id = cell.metadata.get("nbgrader", {}).get("grade_id", "")
        if grade_id.removesuffix("-answer") in answers and grade_id.endswith("-answer"):
            cell.source = answers[grade_id.removesuffix("-answer")]
    folder = tmp / student
    folder.mkdir(parents=True)
    nbformat.write(nb, folder / D010.name)


def test_grading_a_folder_gives_points_per_exercise_and_survives_crashes_and_loops(tmp_path):
    subs = tmp_path / "submitted"
    submission(subs, "alice", {})                                                   # the worked solutions
    submission(subs, "bob", {"d010-ex-decode": 'decode_answer = {"type": "console", "status": set(), '
                                               '"pages_at": 0, "irq": 0}'})
    submission(subs, "carol", {"d010-ex-layout": "layout_answer = 1 / 0"})
    submission(subs, "dave", {"d010-ex-fifteen": "while True:\n    pass"})
    out = tmp_path / "grades.csv"
    rows = grade(subs, SECRET, out, timeout=8, course=tmp_path / "course", chapters=("d010",))
    with open(out) as f:
        table = list(csv.DictReader(f))
    assert table == [{k: str(v) for k, v in row.items()} for row in rows]
    points = {r["student"]: (r["d010-ex-decode"], r["d010-ex-layout"], r["d010-ex-fifteen"], r["autograded"])
              for r in table}
    assert points == {"alice": ("1.0", "1.0", "1.0", "3.0"),
                      "bob": ("0.0", "1.0", "1.0", "2.0"),
                      "carol": ("1.0", "0.0", "1.0", "2.0"),
                      "dave": ("1.0", "1.0", "0.0", "2.0")}
    assert {r["seed"] for r in table} == {str(seed_for(s, SECRET)) for s in ("alice", "bob", "carol", "dave")}
    assert all(r["d010-ex-unplug"] == "" and r["autograded_max"] == "3.0" for r in table)   # the essay awaits the teacher
    graded = nbformat.read(tmp_path / "course" / "autograded" / "alice" / ASSIGNMENT / D010.name, as_version=4)
    checks = [c for c in graded.cells if c.metadata.get("nbgrader", {}).get("grade_id") == "d010-ex-decode"]
    shown = "".join(o.get("text", "") + o.get("data", {}).get("text/plain", "") for o in checks[0].outputs)
    assert shown == "d010-ex-decode: right", "graded with alice's own seed, not the book's"


def test_grading_refuses_an_empty_folder(tmp_path):
    with pytest.raises(FileNotFoundError, match="no student folders"):
        grade(tmp_path, SECRET, tmp_path / "g.csv", course=tmp_path / "course", chapters=("d010",))


# --- the student edition ----------------------------------------------------------------------------
def solution_lines() -> list[str]:
    """Every distinctive line of every solution in the book (code between BEGIN and END
    SOLUTION, and each essay answer cell) that the chapter does not also show elsewhere."""
    lines, public = [], []
    for path in chapter_notebooks():
        for cell in json.loads(path.read_text())["cells"]:
            text = "".join(cell["source"])
            if not cell.get("metadata", {}).get("nbgrader", {}).get("solution"):
                public.append(text)
                continue
            if cell["cell_type"] == "code":
                before, rest = text.split("### BEGIN SOLUTION", 1)
                text, after = rest.split("### END SOLUTION", 1)
                public += [before, after]
            lines += [line.strip() for line in text.splitlines()
                      if len(line.strip()) >= 24 and not line.strip().startswith("```")]
    shown = "\n".join(public)
    return [line for line in lines if line not in shown]


@pytest.fixture(scope="module")
def edition(tmp_path_factory):
    return build_student_edition(tmp_path_factory.mktemp("student"))


def test_the_student_notebooks_hold_no_solution(edition):
    lines = solution_lines()
    assert len(lines) > 50
    notebooks = sorted(edition["notebooks"].glob("*.ipynb"))
    assert [p.name for p in notebooks] == sorted(p.name for p in chapter_notebooks())
    for path in notebooks:
        nb = nbformat.read(path, as_version=4)
        text = "\n".join(c.source for c in nb.cells)
        left = [line for line in lines if line in text]
        assert not left, f"{path.name} still holds solution lines: {left[:3]}"
        assert "{solution" not in text and "### BEGIN SOLUTION" not in text
        answers = [c for c in nb.cells if c.metadata.get("nbgrader", {}).get("solution")]
        assert answers and all("YOUR ANSWER HERE" in c.source for c in answers)
        assert all("hide-cell" not in c.metadata.get("tags", []) for c in answers), "answer cells are shown"
        assert all(not c.get("outputs") for c in nb.cells if c.cell_type == "code"), "outputs are cleared"


def test_the_student_book_builds_and_holds_no_solution(edition):
    html = edition["html"]
    pages = sorted(html.rglob("*.html"))
    assert any(p.name == "d010_devices.html" for p in pages)
    assert not any(p.name == "teachers.html" for p in pages), "the teacher's guide stays out"
    text = "\n".join(re.sub(r"<[^>]+>", "", p.read_text()) for p in pages)
    import html as htmllib
    text = htmllib.unescape(text)
    left = [line for line in solution_lines() if line in text]
    assert not left, f"the student book still holds solution lines: {left[:3]}"
    assert "YOUR ANSWER HERE" in text
