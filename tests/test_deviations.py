"""Every deliberate difference from 2007 is marked in the code and listed in the book, one for one.

The code marks each with a comment ``2007-DIFF(name)``; book/differences.md has one entry per
name, labelled ``(diff-name)=`` over a heading that names it. Neither list may drift."""
import re
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PAGE = ROOT / "book" / "differences.md"
MARK = re.compile(r"2007-DIFF\(([a-z0-9-]+)\)")
ENTRY = re.compile(r"^\(diff-([a-z0-9-]+)\)=\n### `([a-z0-9-]+)`", re.M)


def code_marks() -> Counter:
    marks = Counter()
    for path in sorted((ROOT / "lguest").rglob("*.py")):
        marks.update(MARK.findall(path.read_text(encoding="utf-8")))
    return marks


def page_entries() -> Counter:
    text = PAGE.read_text(encoding="utf-8")
    entries = ENTRY.findall(text)
    assert all(label == name for label, name in entries), f"a label and its heading disagree: {entries}"
    return Counter(label for label, _ in entries)


def test_each_difference_is_marked_once_in_the_code():
    twice = [name for name, n in code_marks().items() if n > 1]
    assert not twice, f"marked more than once (one mark per entry): {twice}"


def test_each_difference_has_one_entry_on_the_page():
    twice = [name for name, n in page_entries().items() if n > 1]
    assert not twice, f"listed more than once on {PAGE.name}: {twice}"


def test_the_code_and_the_page_name_the_same_differences():
    code, page = set(code_marks()), set(page_entries())
    assert code, "no 2007-DIFF marks found in lguest/"
    assert not code - page, f"marked in the code but not on {PAGE.name}: {sorted(code - page)}"
    assert not page - code, f"on {PAGE.name} but marked nowhere in the code: {sorted(page - code)}"


def test_the_page_is_in_the_book_and_the_intro_links_to_it():
    assert "book/differences" in (ROOT / "_toc.yml").read_text(encoding="utf-8")
    assert "{doc}`differences`" in (ROOT / "book" / "intro.md").read_text(encoding="utf-8")
