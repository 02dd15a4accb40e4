"""The book as an nbgrader course: the student edition, and grading a folder of submissions.

nbgrader does the work. The chapters are the *source* of one assignment, ``lguest``: in each,
an answer cell (``### BEGIN SOLUTION`` ... ``### END SOLUTION``) is an autograded answer, a
check cell is a locked, graded test, and an essay's solution cell is a manually graded answer.
``nbgrader generate_assignment`` writes the student edition (solutions and essay answers
replaced by "YOUR ANSWER HERE", outputs cleared), and ``nbgrader autograde`` runs each
submission with a timeout per cell and records a score per check cell in its gradebook.
This module only sets the course up around them, sets each student's seed while their work
is graded, and writes the gradebook out as one CSV row per student.
"""
from __future__ import annotations

import csv
import os
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat

from . import CHAPTERS, GRADING_ENV, SEED_ENV, seed_for

ASSIGNMENT = "lguest"
CELL_TIMEOUT = 60                      # seconds per cell under autograde: a loop costs one exercise
ROOT = Path(__file__).resolve().parents[2]


def chapter_notebooks(book: Path = ROOT / "book", chapters=CHAPTERS) -> list[Path]:
    """The chapters with exercises, in book order: ``book/NAME.ipynb`` or ``book/NAME_*.ipynb``."""
    found = []
    for name in chapters:
        matches = sorted(book.glob(f"{name}.ipynb")) + sorted(book.glob(f"{name}_*.ipynb"))
        if len(matches) != 1:
            raise FileNotFoundError(f"expected one notebook book/{name}.ipynb or book/{name}_*.ipynb, "
                                    f"found {matches}")
        found.append(matches[0])
    return found


def make_course(course: Path, timeout: int = CELL_TIMEOUT, book: Path = ROOT / "book", chapters=CHAPTERS) -> Path:
    """A fresh nbgrader course directory whose one assignment's source is the book's chapters."""
    if course.exists():
        shutil.rmtree(course)
    source = course / "source" / ASSIGNMENT
    source.mkdir(parents=True)
    for notebook in chapter_notebooks(book, chapters):
        shutil.copy(notebook, source / notebook.name)
    (course / "nbgrader_config.py").write_text(f"""c = get_config()
c.CourseDirectory.course_id = "lguest-drivers"
c.CourseDirectory.root = {str(course)!r}
c.ClearSolutions.code_stub = {{"python": "# YOUR ANSWER HERE"}}
c.ClearSolutions.text_stub = "YOUR ANSWER HERE"
c.Execute.timeout = {int(timeout)}
c.Execute.interrupt_on_timeout = True
c.ExecutePreprocessor.timeout = {int(timeout)}
""")
    nbgrader(course, "generate_assignment", ASSIGNMENT, "--force")
    return course


def nbgrader(course: Path, *args: str, env: dict | None = None) -> None:
    """Run one nbgrader command in the course; fail loudly with its output if it fails."""
    bin_dir = str(Path(sys.executable).parent)          # nbgrader runs `alembic` from PATH
    path = os.pathsep.join([bin_dir, os.environ.get("PATH", "")])
    run = subprocess.run([sys.executable, "-m", "nbgrader", *args], cwd=course, capture_output=True, text=True,
                         env={**os.environ, "PATH": path, **(env or {})})
    if run.returncode:
        raise RuntimeError(f"nbgrader {' '.join(args)} failed ({run.returncode}):\n{run.stdout[-3000:]}{run.stderr[-3000:]}")


# --- the teacher's table -----------------------------------------------------------------------
ESSAY_MINUTES = 20
TABLE_MARK = "<!-- the table below is written by `python -m lguest.classroom table` -->"


def essays(book: Path = ROOT / "book") -> list[tuple[str, int]]:
    """(label, points) of every essay: the manually graded answer cells of the chapters."""
    found = []
    for notebook in chapter_notebooks(book):
        for cell in nbformat.read(notebook, as_version=4).cells:
            meta = cell.metadata.get("nbgrader", {})
            if cell.cell_type == "markdown" and meta.get("solution") and meta.get("grade"):
                found.append((meta["grade_id"], meta["points"]))
    return found


def exercise_table(book: Path = ROOT / "book") -> str:
    """The teacher's table of exercises, as Markdown."""
    from . import exercises
    rows = ["| Exercise | Kind | Points | Minutes |", "|---|---|---|---|"]
    rows += [f"| {{ref}}`{label}` | {e.kind} | {e.points} | {e.minutes} |" for label, e in exercises().items()]
    rows += [f"| {{ref}}`{label}` | essay | {points} | {ESSAY_MINUTES} |" for label, points in essays(book)]
    return "\n".join(rows) + "\n"


# --- the student edition ---------------------------------------------------------------------
def student_notebooks(course: Path, out: Path) -> list[Path]:
    """The released chapters, with the answer cells shown (the book hides its solutions)."""
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for released in sorted((course / "release" / ASSIGNMENT).glob("*.ipynb")):
        nb = nbformat.read(released, as_version=4)
        for cell in nb.cells:
            tags = cell.metadata.get("tags")
            if tags and cell.metadata.get("nbgrader", {}).get("solution"):
                cell.metadata["tags"] = [t for t in tags if t != "hide-cell"]
        nbformat.write(nb, out / released.name)
        written.append(out / released.name)
    return written


def student_book_source(notebooks: list[Path], out: Path) -> Path:
    """The book's source with the student chapters in place of the teacher's, and no teacher's guide."""
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    for name in ("_config.yml", "README.md"):
        if (ROOT / name).exists():
            shutil.copy(ROOT / name, out / name)
    toc = (ROOT / "_toc.yml").read_text()
    (out / "_toc.yml").write_text("\n".join(line for line in toc.splitlines() if "book/teachers" not in line) + "\n")
    shutil.copytree(ROOT / "book", out / "book", ignore=shutil.ignore_patterns("*.ipynb", "teachers.md",
                                                                              ".ipynb_checkpoints"))
    for notebook in notebooks:
        shutil.copy(notebook, out / "book" / notebook.name)
    vendored = ROOT / "_static_vendor"
    if vendored.exists():
        os.symlink(vendored, out / "_static_vendor")
    return out


def build_student_edition(build: Path = ROOT / "_build" / "student", book: bool = True) -> dict:
    """``make student``: the student chapters for JupyterLab and, if ``book``, the student book."""
    course = make_course(build / "course")
    notebooks = student_notebooks(course, build / "notebooks")
    result = {"notebooks": build / "notebooks"}
    if book:
        source = student_book_source(notebooks, build / "source")
        run = subprocess.run([str(Path(sys.executable).parent / "jupyter-book"), "build", "-W", "--keep-going", "--all",
                              str(source), "--path-output", str(build)], capture_output=True, text=True)
        if run.returncode:
            raise RuntimeError(f"the student book failed to build:\n{run.stdout[-4000:]}{run.stderr[-2000:]}")
        result["html"] = build / "_build" / "html"
    return result


# --- grading -----------------------------------------------------------------------------------
def grade(submissions: Path, secret: str, out_csv: Path, timeout: int = CELL_TIMEOUT,
          course: Path = ROOT / "_build" / "grading", chapters=CHAPTERS) -> list[dict]:
    """Grade ``submissions/<student id>/<chapter>.ipynb`` against each student's own seed.

    Writes one CSV row per student: id, seed, the points of every checkable exercise and
    essay (by label; an essay waits for the teacher in nbgrader's formgrader and shows empty
    here until graded), the autograded total and the autogradable maximum."""
    submissions = Path(submissions)
    students = sorted(p.name for p in submissions.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not students:
        raise FileNotFoundError(f"no student folders in {submissions}: expected {submissions}/<student id>/*.ipynb")
    course = make_course(Path(course), timeout, chapters=chapters)
    for student in students:
        nbgrader(course, "db", "student", "add", student)
        target = course / "submitted" / student / ASSIGNMENT
        target.mkdir(parents=True)
        for notebook in sorted((submissions / student).glob("*.ipynb")):
            shutil.copy(notebook, target / notebook.name)
        seed = seed_for(student, secret)
        nbgrader(course, "autograde", ASSIGNMENT, "--student", student, "--force",
                 env={SEED_ENV: str(seed), GRADING_ENV: "1"})
    rows = gradebook_rows(course, students, secret)
    write_csv(rows, Path(out_csv))
    return rows


def gradebook_rows(course: Path, students: list[str], secret: str) -> list[dict]:
    """Points per graded cell and student, read from nbgrader's gradebook."""
    from nbgrader.api import Gradebook, MissingEntry
    rows = []
    with Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gb:
        assignment = gb.find_assignment(ASSIGNMENT)
        cells = [(nb.name, cell.name, cell.cell_type) for nb in assignment.notebooks for cell in nb.grade_cells]
        for student in students:
            row = {"student": student, "seed": seed_for(student, secret)}
            auto_total = auto_max = 0.0
            for notebook, name, cell_type in cells:
                try:
                    grade = gb.find_grade(name, notebook, ASSIGNMENT, student)
                except MissingEntry:                     # the chapter was not handed in
                    row[name] = 0.0 if cell_type == "code" else ""
                    if cell_type == "code":
                        auto_max += gb.find_grade_cell(name, notebook, ASSIGNMENT).max_score
                    continue
                if cell_type == "code":
                    row[name] = grade.score
                    auto_total += grade.score
                    auto_max += grade.max_score
                else:
                    row[name] = "" if grade.needs_manual_grade else grade.score
            row["autograded"], row["autograded_max"] = auto_total, auto_max
            rows.append(row)
    return rows


def write_csv(rows: list[dict], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
