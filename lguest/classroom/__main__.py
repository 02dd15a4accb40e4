"""python -m lguest.classroom: seeds for a class, the student edition, grading.

  python -m lguest.classroom seeds --secret S ID [ID ...]     one "id,seed" line per student
  python -m lguest.classroom student [--no-book]              _build/student/{notebooks,_build/html}
  python -m lguest.classroom grade DIR --secret S [--out F] [--timeout SECONDS]
                                                              grade DIR/<id>/*.ipynb into a CSV
  python -m lguest.classroom table                            rewrite the table of book/teachers.md
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from . import seed_for
from .course import CELL_TIMEOUT, ROOT, TABLE_MARK, build_student_edition, exercise_table, grade


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m lguest.classroom", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    seeds = sub.add_parser("seeds", help="each student's seed, from their id and the course secret")
    seeds.add_argument("--secret", required=True)
    seeds.add_argument("ids", nargs="+")
    student = sub.add_parser("student", help="the student edition: chapters without solutions, and its book")
    student.add_argument("--no-book", action="store_true", help="only the notebooks, not the HTML book")
    grading = sub.add_parser("grade", help="grade a folder of submissions into a CSV")
    grading.add_argument("submissions", type=Path, help="a folder holding one folder per student id")
    grading.add_argument("--secret", required=True)
    grading.add_argument("--out", type=Path, default=ROOT / "_build" / "grades.csv")
    grading.add_argument("--timeout", type=int, default=CELL_TIMEOUT, help="seconds per cell (default %(default)s)")
    sub.add_parser("table", help="rewrite the table of exercises at the end of book/teachers.md")
    args = parser.parse_args(argv)
    if args.command == "seeds":
        print("student,seed")
        for student_id in args.ids:
            print(f"{student_id},{seed_for(student_id, args.secret)}")
    elif args.command == "student":
        for what, where in build_student_edition(book=not args.no_book).items():
            print(f"==> student {what}: {where}")
    elif args.command == "table":
        page = ROOT / "book" / "teachers.md"
        head = page.read_text().split(TABLE_MARK)[0]
        page.write_text(f"{head}{TABLE_MARK}\n\n{exercise_table()}")
        print(f"==> {page}")
    else:
        rows = grade(args.submissions, args.secret, args.out, args.timeout)
        print(f"==> graded {len(rows)} student(s): {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
