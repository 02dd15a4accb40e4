"""Static checks of the chapters: what nbval and the book build rely on but do not check.

- Every notebook under book/ uses the `python3` kernel (nbval and the build both run it).
- Every notebook carries stored outputs, run top to bottom in one fresh kernel: nbval compares
  only cells that have stored outputs, so a notebook saved without them is silently untested.
- No stored output shows an object address (`<... at 0x7f...>`): it changes every run.
- The book's column: every line of every code cell, and every output line the page shows
  (streams, errors, and a result's text when nothing richer stands in for it), is at most 76
  characters (`lguest.classroom.WIDTH`). tests/test_browser.py checks the rendered pages.
- The D-marker labels. A chapter marks each D:NNN it covers with a MyST target line `(d010)=`
  directly before a heading that names `D:010` (several labels may stand stacked before one
  heading that names several numbers). Read in _toc.yml order, the labels strictly
  increase, each label's heading names the same number, none repeats, a chapter file
  `dNNN_*.ipynb` carries its own label `(dNNN)=`, and every label is a seed marker
  (`/*D:NNN` in the seed patch, read from ../shared when it is there).
"""
from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from book_toc import toc_docnames
from lguest import classroom

ROOT = Path(__file__).resolve().parents[1]
BOOK = ROOT / "book"
TOC = ROOT / "_toc.yml"
# CI has the shared folder beside the repo, read-only; elsewhere it may be absent.
SEED = ROOT.parent / "shared" / "seed" / "documentation-the-drivers.patch.txt"

LABEL_LINE = re.compile(r"^\((d\d{3})\)=\s*$")
D_LIKE_LABEL = re.compile(r"^\(\s*[dD]\s*:?\s*\d+\s*\)=")   # (D010)= (d:010)= (d10)= ...
HEADING = re.compile(r"^#{1,6}\s+\S")
D_NUMBER = re.compile(r"D:(\d{3})\b")
ADDRESS = re.compile(r"\bat 0x[0-9a-fA-F]{6,}")
CHAPTER_FILE = re.compile(r"^d(\d{3})_")


def notebooks() -> list[Path]:
    return sorted(p for p in BOOK.rglob("*.ipynb") if ".ipynb_checkpoints" not in p.parts)


def load(path: Path) -> dict:
    return json.loads(path.read_text(encoding="utf-8"))


def rel(path: Path) -> str:
    return path.relative_to(ROOT).as_posix()


def toc_files() -> list[Path]:
    """The ToC's files in reading order, resolved to .ipynb or .md."""
    files = []
    for stem in toc_docnames(TOC):
        found = [ROOT / f"{stem}{ext}" for ext in (".ipynb", ".md") if (ROOT / f"{stem}{ext}").is_file()]
        assert found, f"_toc.yml names {stem!r} but neither {stem}.ipynb nor {stem}.md exists"
        files.append(found[0])
    return files


def markdown_lines(path: Path) -> list[str]:
    """The Markdown of a chapter: all markdown cells of a notebook, or the whole .md file.
    Code cells are left out (a `# comment` there is not a heading)."""
    if path.suffix == ".md":
        return path.read_text(encoding="utf-8").splitlines()
    lines: list[str] = []
    for cell in load(path)["cells"]:
        if cell["cell_type"] == "markdown":
            lines.extend("".join(cell["source"]).splitlines())
            lines.append("")   # a cell boundary ends a block
    return lines


def d_labels(path: Path) -> list[tuple[int, str, str]]:
    """[(number, label, heading)] for each `(dNNN)=` in the file, in order; asserts the form."""
    lines = markdown_lines(path)
    found = []
    in_fence = False
    for i, line in enumerate(lines):
        if line.lstrip().startswith(("```", "~~~")):
            in_fence = not in_fence
        if in_fence:
            continue
        m = LABEL_LINE.match(line)
        if not m:
            assert not D_LIKE_LABEL.match(line), (
                f"{rel(path)}: malformed D label {line.strip()!r}; write it as `(d010)=`: "
                "lower-case d, three digits")
            continue
        label = m.group(1)
        # the next line that is neither blank nor another label (labels may be stacked)
        heading = next((h for h in lines[i + 1:] if h.strip() and not LABEL_LINE.match(h)), "")
        assert HEADING.match(heading), (
            f"{rel(path)}: label ({label})= must stand directly before a heading, "
            f"not before {heading.strip()!r}")
        numbers = D_NUMBER.findall(heading)
        assert int(label[1:]) in {int(n) for n in numbers}, (
            f"{rel(path)}: label ({label})= stands before heading {heading.strip()!r}, "
            f"which does not name D:{label[1:]}")
        found.append((int(label[1:]), label, heading.strip()))
    return found


def book_labels() -> list[tuple[int, str, str, Path]]:
    return [(n, label, heading, path) for path in toc_files() for n, label, heading in d_labels(path)]


def seed_markers() -> set[int]:
    return {int(n) for n in re.findall(r"/\*D:(\d{3})", SEED.read_text(encoding="utf-8"))}


# ------------------------------------------------------------------------------------- tests

NOTEBOOKS = notebooks()


def test_book_has_notebooks():
    assert NOTEBOOKS, "no notebooks under book/"


def test_every_toc_notebook_is_under_book():
    for path in toc_files():
        assert BOOK in path.parents, f"{rel(path)}: chapters live under book/"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=rel)
def test_kernelspec_is_python3(path: Path):
    spec = load(path).get("metadata", {}).get("kernelspec", {})
    assert spec.get("name") == "python3", (
        f"{rel(path)}: kernelspec name is {spec.get('name')!r}; it must be 'python3' "
        "(`make outputs` re-runs the chapters with the venv's python3 kernel)")


@pytest.mark.parametrize("path", NOTEBOOKS, ids=rel)
def test_outputs_are_stored(path: Path):
    """nbval compares only cells that have stored outputs: a chapter saved without them would
    pass untested. Every code cell ran, in order, in one fresh kernel (as `make outputs` does)."""
    cells = [c for c in load(path)["cells"] if c["cell_type"] == "code" and "".join(c["source"]).strip()]
    assert cells, f"{rel(path)}: no code cells"
    skipped = {"nbval-skip", "skip-execution"}
    ran = [c for c in cells if not skipped & set(c.get("metadata", {}).get("tags", []))]
    counts = [c.get("execution_count") for c in ran]
    assert None not in counts, (
        f"{rel(path)}: {counts.count(None)} of {len(ran)} code cells were never run: "
        "run `make outputs` to store the outputs")
    assert counts == list(range(1, len(ran) + 1)), (
        f"{rel(path)}: execution counts {counts} are not 1..{len(ran)}: the stored outputs "
        "are not from one top-to-bottom run in a fresh kernel; run `make outputs`")
    with_outputs = sum(1 for c in ran if c.get("outputs"))
    assert with_outputs, f"{rel(path)}: no code cell has a stored output, so nbval checks nothing"


def _output_texts(output: dict):
    if "text" in output:
        yield "".join(output["text"]) if isinstance(output["text"], list) else output["text"]
    for value in (output.get("data") or {}).values():
        if isinstance(value, list):
            yield "".join(value)
        elif isinstance(value, str):
            yield value
        else:
            yield json.dumps(value)
    for line in output.get("traceback") or []:
        yield line


@pytest.mark.parametrize("path", NOTEBOOKS, ids=rel)
def test_no_object_addresses_in_outputs(path: Path):
    bad = []
    for index, cell in enumerate(load(path)["cells"]):
        for output in cell.get("outputs") or []:
            for text in _output_texts(output):
                for m in ADDRESS.finditer(text):
                    bad.append(f"cell {index}: ...{text[max(0, m.start() - 40):m.end() + 10]!r}")
    assert not bad, (f"{rel(path)}: stored outputs show object addresses, which change every "
                     f"run (give the class a stable __repr__): {bad}")


RICH = ("text/html", "image/svg+xml", "image/png", "text/markdown",
        "application/vnd.jupyter.widget-view+json")


def shown_output_lines(cell: dict):
    """The output lines the page shows in a pre: streams (one print can arrive as several
    stream outputs, merged as the book merges them), errors, and a result's text/plain when
    it has no richer form (a widget view, HTML or a picture shows instead)."""
    text = ""
    for output in cell.get("outputs") or []:
        kind = output.get("output_type")
        if kind == "stream":
            text += "".join(output["text"]) if isinstance(output["text"], list) else output["text"]
            continue
        text += "\n"
        if kind == "error":
            text += f"{output['ename']}: {output['evalue']}\n"
        elif not has_rich_form(output):
            plain = (output.get("data") or {}).get("text/plain", "")
            text += ("".join(plain) if isinstance(plain, list) else plain) + "\n"
    return text.splitlines()


def has_rich_form(output: dict) -> bool:
    return any(kind in (output.get("data") or {}) for kind in RICH)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=rel)
def test_code_and_outputs_fit_the_books_column(path: Path):
    width = classroom.WIDTH
    wide = []
    for index, cell in enumerate(load(path)["cells"]):
        if cell["cell_type"] != "code":
            continue
        source = "".join(cell["source"]).splitlines()
        wide += [f"cell {index} code ({len(line)}): {line}" for line in source if len(line) > width]
        wide += [f"cell {index} output ({len(line)}): {line}"
                 for line in shown_output_lines(cell) if len(line) > width]
    assert not wide, (f"{rel(path)}: {len(wide)} lines wider than the book's {width} columns "
                      "(break the code inside brackets; print long results over more lines):\n  "
                      + "\n  ".join(w[:120] for w in wide))


@pytest.mark.parametrize("path", toc_files(), ids=rel)
def test_a_ref_to_an_exercise_is_not_preceded_by_the_word_exercise(path: Path):
    """{ref}`label` to an exercise already renders as "Exercise 24"; a word before it doubles it."""
    text = " ".join(markdown_lines(path))
    doubled = re.findall(r"\b[Ee]xercise\s+\{ref\}`[\w-]+-ex-[\w-]+`", text)
    assert not doubled, f"{rel(path)}: {doubled} render as 'Exercise Exercise N'"


def test_d_labels_strictly_increase_through_the_book():
    labels = book_labels()
    seen: dict[str, Path] = {}
    for n, label, heading, path in labels:
        assert label not in seen, (
            f"label ({label})= appears twice: in {rel(seen[label])} and in {rel(path)}")
        seen[label] = path
    order = [(label, rel(path)) for _, label, _, path in labels]
    numbers = [n for n, *_ in labels]
    for (a, b), (la, lb) in zip(zip(numbers, numbers[1:]), zip(order, order[1:])):
        assert a < b, (f"D labels must strictly increase in _toc.yml order, but {la[0]} "
                       f"({la[1]}) comes before {lb[0]} ({lb[1]})")


@pytest.mark.parametrize("path", [p for p in toc_files() if CHAPTER_FILE.match(p.name)],
                         ids=lambda p: p.name)
def test_chapter_carries_its_own_label(path: Path):
    number = int(CHAPTER_FILE.match(path.name).group(1))
    labels = [n for n, *_ in d_labels(path)]
    assert number in labels, (
        f"{rel(path)}: the chapter of D:{number:03d} has no `(d{number:03d})=` label "
        f"before a heading naming D:{number:03d} (labels found: {labels})")


def test_every_label_is_a_seed_marker():
    if not SEED.is_file():
        pytest.skip("the seed patch (../shared/seed/documentation-the-drivers.patch.txt beside "
                    "the repo) is not here, so labels cannot be checked against its markers")
    markers = seed_markers()
    assert markers, f"no /*D:NNN markers found in {SEED.name}"
    unknown = [f"({label})= in {rel(path)}" for n, label, _, path in book_labels() if n not in markers]
    assert not unknown, (f"labels that are not D markers of the seed: {unknown}; "
                         f"the seed's markers are {', '.join(f'D:{m:03d}' for m in sorted(markers))}")
