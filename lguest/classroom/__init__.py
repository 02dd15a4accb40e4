"""Exercises a machine can check: a seed makes the problem, ``check`` grades it, ``solution`` tells.

This is the contract of OSTEP's homework simulators, kept for every checkable exercise of the
book: ``problem(seed)`` draws the student's own instance (descriptor bytes, section lengths,
how many Guests, ...); ``check(answer, seed)`` says right, or wrong with a hint that does not
give the answer away; ``solution(seed)`` is the switch that reveals it. Three kinds:

* **predict**: a number, a list or a table worked out before running anything;
* **implement**: a function with a given signature, run inside the model against many cases;
* **explore**: a measurement with the trace or the benchmarks, right within a tolerance.

Seeds: the rendered book uses ``BOOK_SEED``. A student's seed comes from their id and the
course secret (``seed_for``); the teacher hands it out, the student passes it to
``course_seed()``, and at grading time the grader sets ``LGUEST_SEED`` itself, which wins.
Under grading (``LGUEST_GRADING=1``) a wrong answer raises, so nbgrader scores the cell 0.
The teacher's guide (book/teachers.md) tells the whole routine.
"""
from __future__ import annotations

import hashlib
import hmac
import importlib
import os
import random
import textwrap

from ..errors import LguestError

BOOK_SEED = 2007
SEED_ENV = "LGUEST_SEED"             # set by the grader to the student's own seed
GRADING_ENV = "LGUEST_GRADING"       # "1" while grading: a wrong answer raises
KINDS = ("predict", "implement", "explore")
CHAPTERS = ("d010", "d100", "d200", "d300", "d380", "d400", "d500", "launcher", "misbehave")
MAX_SEED = 1_000_000
WIDTH = 76                           # what the book's column shows of a line of output


def wrap(text: str) -> str:
    """Fit the book's column: runs of plain prose lines are refilled as one paragraph; indented
    or column-aligned lines (tables, cases) keep their breaks and are only cut if too long."""
    out, prose = [], []

    def flush():
        if prose:
            out.extend(textwrap.wrap(" ".join(prose), WIDTH, break_long_words=False, break_on_hyphens=False))
            prose.clear()

    for line in text.splitlines():
        if line and not line[0].isspace() and "  " not in line:
            prose.append(line)
            continue
        flush()
        indent = line[:len(line) - len(line.lstrip())]
        out += textwrap.wrap(line, WIDTH, subsequent_indent=indent + "    ", drop_whitespace=False,
                             break_long_words=False, break_on_hyphens=False) or [""]
    flush()
    return "\n".join(out)


def seed_for(student_id: str, secret: str) -> int:
    """A student's seed: HMAC-SHA256 of their id under the course secret, as six digits."""
    if not student_id or not secret:
        raise LguestError("a seed needs a student id and the course secret, both non-empty")
    digest = hmac.new(secret.encode(), student_id.encode(), hashlib.sha256).digest()
    return int.from_bytes(digest[:8], "big") % MAX_SEED


def course_seed(seed: int | None = None) -> int:
    """The seed this notebook's exercises use: the grader's, else yours, else the book's."""
    if os.environ.get(SEED_ENV):
        return _valid_seed(int(os.environ[SEED_ENV]))
    return BOOK_SEED if seed is None else _valid_seed(seed)


def _valid_seed(seed) -> int:
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed < MAX_SEED:
        raise LguestError(f"a seed is a whole number 0..{MAX_SEED - 1} (your teacher gives you yours), got {seed!r}")
    return seed


def grading() -> bool:
    return os.environ.get(GRADING_ENV) == "1"


class Problem:
    """One instance of an exercise: ``text`` says it; the other attributes hold its data."""

    def __init__(self, label: str, seed: int, text: str, **data):
        self.label, self.seed, self.text = label, seed, text
        self.__dict__.update(data)

    def __repr__(self):
        return f"{self.label} (seed {self.seed}):\n{wrap(self.text)}"


class Result:
    """What check() says: right, or not yet with a hint."""

    def __init__(self, label: str, hint: str | None):
        self.label, self.hint, self.passed = label, hint, hint is None

    def __bool__(self):
        return self.passed

    def __repr__(self):
        return f"{self.label}: right" if self.passed else wrap(f"{self.label}: not yet. {self.hint}")


class Exercise:
    """A checkable exercise. Subclasses give ``make(rng)`` (the instance as a dict, with a
    ``text``), ``answer(problem)`` (the solution) and, if a plain comparison will not do,
    ``judge(answer, problem)``, which returns None when right, else a hint.

    ``mistakes(problem)`` lists typical wrong answers with the hint each deserves; the default
    judge gives those hints, and the tests make sure each mistake fails."""

    label = ""
    kind = "predict"
    points = 1
    minutes = 10
    what = "an answer"                      # said when the answer cell is still empty

    # --- the contract -----------------------------------------------------------------------
    def problem(self, seed: int) -> Problem:
        seed = _valid_seed(seed)
        data = self.make(random.Random(f"{self.label}:{seed}"))
        return Problem(self.label, seed, **data)

    def solution(self, seed: int):
        return self.answer(self.problem(seed))

    def check(self, answer, seed: int) -> Result:
        """Right, or not yet with a hint. Under grading the grader's seed is the one checked,
        whatever the notebook's SEED says."""
        if grading():
            seed = course_seed()
        problem = self.problem(seed)
        if answer is None or answer is Ellipsis:
            hint = f"no answer yet: put {self.what} in the answer cell above"
        else:
            try:
                hint = self.judge(answer, problem)
            except Exception as e:                       # the student's code raised: say so, no more
                hint = f"checking your answer raised {type(e).__name__}: {e}"
        result = Result(self.label, hint)
        if grading() and not result.passed:
            raise AssertionError(repr(result))
        return result

    # --- what a subclass gives --------------------------------------------------------------
    def make(self, rng: random.Random) -> dict:
        raise NotImplementedError

    def answer(self, problem: Problem):
        raise NotImplementedError

    def mistakes(self, problem: Problem) -> list[tuple[object, str]]:
        return []

    def judge(self, answer, problem: Problem) -> str | None:
        right = self.answer(problem)
        if self.same(answer, right):
            return None
        for wrong, hint in self.mistakes(problem):
            if self.same(answer, wrong):
                return hint
        return self.generic_hint(answer, problem)

    def same(self, answer, right) -> bool:
        return answer == right

    def generic_hint(self, answer, problem: Problem) -> str:
        return "that is not it; work through the problem again from the chapter's rules"

    def __repr__(self):
        return f"<{self.kind} exercise {self.label}, {self.points} point(s), about {self.minutes} min>"


class Explore(Exercise):
    """An exercise answered with a measurement: right within ``tolerance`` (relative)."""

    kind = "explore"
    tolerance = 0.1
    what = "your measurement (a number)"

    def same(self, answer, right) -> bool:
        if isinstance(answer, bool) or not isinstance(answer, (int, float)):
            return False
        return abs(answer - right) <= self.tolerance * max(abs(right), 1e-12)


def chapter(name: str):
    """The module of one chapter's exercises (``chapter("d010")``)."""
    if name not in CHAPTERS:
        raise LguestError(f"the chapters with exercises are {list(CHAPTERS)}, not {name!r}")
    return importlib.import_module(f"{__name__}.{name}")


def exercises() -> dict[str, Exercise]:
    """Every checkable exercise of the book, by label, in chapter order."""
    found = {}
    for name in CHAPTERS:
        module = chapter(name)
        for exercise in getattr(module, "EXERCISES", ()):
            found[exercise.label] = exercise
    return found
