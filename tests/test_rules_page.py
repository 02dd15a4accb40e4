"""book/rules.md and book/glossary.md against the model and the book.

The rules page states each rule once; these tests fail when it drifts:

- every kill message on the page is produced by the model, by running the case it names, and
  every case the model has is on the page;
- the hypercall and /dev/lguest tables name lguest.abi's numbers, and the wrappers return what
  the page says;
- the worked examples and the soft failures behave as the page says;
- every {ref}, {doc} and [text](page.ipynb#heading) on the two pages names a target that
  exists in the book;
- the glossary's terms are unique, each entry links somewhere, and every {term} anywhere in the
  book names one of them;
- tables and fenced blocks fit the book's 76-column width, and the ToC puts the two pages where
  they belong.
"""
from __future__ import annotations

import errno
import json
import os
import re
from pathlib import Path

import pytest
from markdown_it import MarkdownIt

import lguest
from lguest import abi
from lguest.guest.net import NUM_SKBS, RX_BUF_LEN, _page_pieces
from lguest.host.dma import route
from lguest.show import dma_sections
from myst_parser.mdit_to_docutils.base import default_slugify

from book_toc import toc_docnames

ROOT = Path(__file__).resolve().parents[1]
BOOK = ROOT / "book"
RULES = BOOK / "rules.md"
GLOSSARY = BOOK / "glossary.md"
WIDTH = 76
PAGE = abi.PAGE_SIZE
HEADING_ANCHOR_LEVELS = 3          # _config.yml: myst_heading_anchors


# ----------------------------------------------------------------------------- reading pages

def markdown_of(path: Path) -> str:
    """A page's Markdown: the .md file, or a notebook's markdown cells joined."""
    if path.suffix == ".md":
        return path.read_text(encoding="utf-8")
    cells = json.loads(path.read_text(encoding="utf-8"))["cells"]
    return "\n\n".join("".join(c["source"]) for c in cells if c["cell_type"] == "markdown")


def book_pages() -> dict[str, Path]:
    """Every page of the ToC, by its file name under book/ (e.g. 'd200_io.ipynb')."""
    pages = {}
    for stem in toc_docnames():
        for ext in (".md", ".ipynb"):
            if (ROOT / f"{stem}{ext}").is_file():
                pages[f"{Path(stem).name}{ext}"] = ROOT / f"{stem}{ext}"
    return pages


def prose(text: str) -> str:
    """Text with every run of white space as one space, so a check does not depend on wrapping."""
    return " ".join(text.split())


def section(text: str, label: str) -> str:
    """The text from the target line `(label)=` to the next target line of the page."""
    start = text.index(f"({label})=")
    rest = text[start + len(label) + 3:]
    following = re.search(r"^\([\w-]+\)=\s*$", rest, re.M)
    return rest[:following.start()] if following else rest


def table_rows(text: str) -> list[list[str]]:
    """The body rows of every pipe table in text, as lists of stripped cells."""
    rows = []
    for line in text.splitlines():
        if not line.startswith("|") or re.fullmatch(r"\|[\s:|-]+\|", line):
            continue
        cells = [c.strip() for c in re.split(r"(?<!\\)\|", line.strip())[1:-1]]
        rows.append(cells)
    return rows


def code(cell: str) -> str | None:
    """The text of a cell that is one inline code span, else None."""
    m = re.fullmatch(r"`([^`]+)`", cell)
    return m.group(1) if m else None


# --------------------------------------------------------------------------- the kill table

# The page writes a message with these placeholders for the numbers and text of the case.
PLACEHOLDERS = {"KEY": r"0x[0-9a-f]+", "ADDR": r"0x[0-9a-f]+", "HEX8": r"[0-9a-f]{8}", "LEN": r"\d+", "N": r"-?\d+",
                "TEXT": r".*", "OFF": r"\d+", "SIZE": r"\d+",
                "ERRNO": re.escape(os.strerror(errno.ENOENT))}


def message_pattern(template: str) -> re.Pattern:
    """The page's message, placeholders and a written `\\n` included, as a regex."""
    parts = re.split(r"\b(" + "|".join(PLACEHOLDERS) + r")\b", template.replace("\\n", "\n"))
    return re.compile("".join(PLACEHOLDERS.get(p, re.escape(p)) for p in parts), re.S)


def page_kill_messages() -> list[str]:
    """Every message of the kill section: the tables' last cells and the bullets' last code spans."""
    kills = section(RULES.read_text(encoding="utf-8"), "rules-kills")
    messages = [code(row[-1]) for row in table_rows(kills) if code(row[-1])]
    messages += re.findall(r"^- .*?: `([^`]+)`$", kills, re.M)
    return messages


def launcher_messages() -> list[str]:
    """The bullets: the Launcher's own checks, whose death message gets a prefix."""
    kills = section(RULES.read_text(encoding="utf-8"), "rules-kills")
    return re.findall(r"^- .*?: `([^`]+)`$", kills, re.M)


class Recorder:
    """A fresh Host that records every message kill_guest() is called with, first or not."""

    def __init__(self):
        self.host = lguest.Host()
        self.messages: list[str] = []
        kill = self.host.kill_guest

        def recording(lg, msg):
            self.messages.append(msg)
            kill(lg, msg)

        self.host.kill_guest = recording

    def lan(self, n: int = 2, **kw) -> list:
        return [self.host.launch(mem_mb=1, sharenet=["lan0"], drivers=(), **kw) for _ in range(n)]


def slot(g, n: int) -> int:
    """peer_key(n) in Guest g: its LAN page (device 0) plus 4 * n."""
    return (int(g.devices[0]["pfn"]) << abi.PAGE_SHIFT) + 4 * n


def bound_receiver(r: Recorder):
    """Two Guests on lan0; the second has one 64-byte receive entry bound at slot 1."""
    a, b = r.lan()
    ring = b.dma([(b.alloc(64, align=64), 64)])
    assert b.hypercall(abi.LHCALL_BIND_DMA, slot(b, 1), ring, (1 << 8) | 1) == 1
    return a, b


def case_bad_bind_key(r):
    a, = r.lan(1)
    a.hypercall(abi.LHCALL_BIND_DMA, slot(a, 1) + 2, a.dma([(a.alloc(8), 8)]), (1 << 8) | 1)


def case_bad_send_key(r):
    a, b = bound_receiver(r)
    a.hypercall(abi.LHCALL_SEND_DMA, slot(a, 1) + 2, a.dma([(a.alloc(8), 8)]))


def case_bad_getdma_key(r):
    a, = r.lan(1)
    a.launcher.get_dma_buffer(slot(a, 1) + 3)


def case_bad_section(r):
    a, b = bound_receiver(r)
    across = a.alloc(2 * PAGE, align=PAGE) + PAGE - 8
    a.hypercall(abi.LHCALL_SEND_DMA, slot(a, 1), a.dma([(across, 16)]))


def case_bad_bound_array(r):
    a, b = r.lan()
    b.hypercall(abi.LHCALL_BIND_DMA, slot(b, 1), b.memory.top + PAGE, (1 << 8) | 1)
    a.hypercall(abi.LHCALL_SEND_DMA, slot(a, 1), a.dma([(a.alloc(8), 8)]))


def case_bad_send_descriptor(r):
    a, b = bound_receiver(r)
    a.hypercall(abi.LHCALL_SEND_DMA, slot(a, 1), a.memory.top + PAGE)


def case_before_init(r):
    a, = r.lan(1, boot=False)
    a.hypercall(abi.LHCALL_SEND_DMA, 0, 0)


def case_unknown_hypercall(r):
    a, = r.lan(1)
    a.hypercall(99)


def case_init_again(r):
    a, = r.lan(1)
    a.hypercall(abi.LHCALL_LGUEST_INIT, a.kernel.lguest_data)


def case_bad_init(r):
    a, = r.lan(1, boot=False)
    a.hypercall(abi.LHCALL_LGUEST_INIT, a.memory.top + PAGE)


def case_crash(r):
    a, = r.lan(1)
    text = a.alloc(64)
    a.memory.write(text, b"Kernel panic\0")
    a.hypercall(abi.LHCALL_CRASH, text)


def case_launcher_pointer(r):
    a, = r.lan(1)
    a.kernel.lguest_send_dma(abi.LGUEST_CONSOLE_DMA_KEY, a.dma([(a.memory.top - 16, 16)]))


def disk_guest(r, tmp_path, sectors: int = 4):
    """A driverless Guest with one disk: (guest, its block page's key, the page's fields)."""
    image = tmp_path / f"disk{len(r.host.lgs)}.img"
    image.write_bytes(bytes(sectors * abi.SECTOR_SIZE))
    g = r.host.launch(mem_mb=1, block=[str(image)], drivers=())
    key = int(g.devices[0]["pfn"]) << abi.PAGE_SHIFT
    return g, key, g.memory.struct_at(key, abi.lguest_block_page)


def case_bad_offset(r, tmp_path):
    g, key, page = disk_guest(r, tmp_path)
    page["sector"] = 4
    g.kernel.lguest_send_dma(key, g.dma([]))


def case_no_reply(r, tmp_path):
    g, key, page = disk_guest(r, tmp_path)
    page["sector"] = 0
    g.kernel.lguest_send_dma(key, g.dma([]))


def case_write_past_end(r, tmp_path):
    g, key, page = disk_guest(r, tmp_path)
    reply = g.dma([(g.alloc(512, align=512), 512)])
    assert g.hypercall(abi.LHCALL_BIND_DMA, key, reply, (1 << 8) | 1) == 1
    page["type"], page["sector"], page["bytes"] = 1, 3, 1024
    g.kernel.lguest_send_dma(key, g.dma([(g.alloc(1024, align=1024), 1024)]))


# The page's message -> the case that produces it. Two messages come from one case (the second
# kill of a bad send descriptor never wins, but kill_guest is called with it).
KILL_CASES = {
    "bad dma key KEY": case_bad_bind_key,
    "bad sending DMA key": case_bad_send_key,
    "bad registered DMA buffer": case_bad_getdma_key,
    "bad DMA entry: LEN@ADDR": case_bad_section,
    "bad address in registered DMA struct": case_bad_bound_array,
    "bad read address ADDR len 100": case_bad_send_descriptor,
    "bad write address ADDR": case_bad_send_descriptor,
    "hypercall N before LGUEST_INIT": case_before_init,
    "Bad hypercall N\\n": case_unknown_hypercall,
    "already have lguest_data": case_init_again,
    "bad guest page HEX8": case_bad_init,
    "CRASH: TEXT": case_crash,
    "Invalid address N": case_launcher_pointer,
    "Bad offset OFF vs SIZE": case_bad_offset,
    "Block request didn't give us a dma buffer: ERRNO": case_no_reply,
    "Write past end OFF+LEN": case_write_past_end,
}


def test_every_kill_message_on_the_page_has_a_case_and_back():
    on_page = page_kill_messages()
    assert len(on_page) == len(set(on_page)), f"a message is listed twice: {on_page}"
    assert set(on_page) == set(KILL_CASES), (
        f"on the page, not run here: {sorted(set(on_page) - set(KILL_CASES))}; "
        f"run here, not on the page: {sorted(set(KILL_CASES) - set(on_page))}")


@pytest.mark.parametrize("template", sorted(KILL_CASES))
def test_the_model_kills_with_the_page_message(template, tmp_path):
    r = Recorder()
    case = KILL_CASES[template]
    case(r, tmp_path) if "tmp_path" in case.__code__.co_varnames else case(r)
    if template in launcher_messages():
        said = [m.removeprefix("Launcher exited: ") for m in r.messages
                if m.startswith("Launcher exited: ")]
    else:
        said = r.messages
    pattern = message_pattern(template)
    assert any(pattern.fullmatch(m) for m in said), (
        f"the page says {template!r}; the model said {r.messages}")


def test_only_the_liar_dies_and_the_first_message_wins():
    r = Recorder()
    case_bad_send_descriptor(r)
    a, b = r.host.guests
    assert len(r.messages) == 2 and a.dead == r.messages[0] and b.dead is None
    assert message_pattern("bad read address ADDR len 100").fullmatch(a.dead)


# ------------------------------------------------------------------------ hypercall tables

def hypercall_rows() -> list[list[str]]:
    return table_rows(section(RULES.read_text(encoding="utf-8"), "rules-hypercalls"))


def test_hypercall_and_request_numbers_are_the_abi():
    numbered = [(int(row[0]), code(row[1])) for row in hypercall_rows() if row[0].isdigit()]
    names = [name for _, name in numbered]
    assert {"LHCALL_BIND_DMA", "LHCALL_SEND_DMA", "LHREQ_GETDMA", "LHREQ_IRQ"} <= set(names)
    for number, name in numbered:
        assert name and hasattr(abi, name), f"{name!r} is not a name in lguest.abi"
        assert getattr(abi, name) == number, f"the page gives {name} as {number}, abi as {getattr(abi, name)}"


def test_the_wrappers_on_the_page_exist_and_return_what_it_says():
    rows = {code(row[0]).split("(")[0]: row for row in hypercall_rows() if code(row[0] or "")}
    assert set(rows) == {"lguest_send_dma", "lguest_bind_dma", "lguest_unbind_dma"}
    assert rows["lguest_bind_dma"][-1] == "0 or `-ENOMEM`"
    g = lguest.Host().launch(mem_mb=1, sharenet=["lan0"], drivers=())
    ring = g.dma([(g.alloc(8), 8)])
    assert g.kernel.lguest_bind_dma(slot(g, 0), ring, 1, 1) == 0
    assert g.kernel.lguest_bind_dma(slot(g, 0), ring, 1, abi.LGUEST_IRQS) == -errno.ENOMEM
    assert g.hypercall(abi.LHCALL_BIND_DMA, slot(g, 0), ring, (1 << 8) | 1) == 1
    assert g.hypercall(abi.LHCALL_SEND_DMA, slot(g, 5), ring) == abi.LHCALL_SEND_DMA   # eax as it came
    assert g.kernel.lguest_unbind_dma(slot(g, 0), ring) is None
    stale = g.dma([(g.alloc(8), 8)], used_len=0xDEAD)
    assert g.kernel.lguest_send_dma(slot(g, 5), stale) is None
    assert g.memory.u32(stale) == 0                   # the wrapper zeroed it; nobody wrote it


# ------------------------------------------------------------------ rules that are examples

def test_next_dma_steps_from_its_old_value():
    """The page's example: a ring of three, entry 0 busy."""
    text = prose(section(RULES.read_text(encoding="utf-8"), "rules-next-dma"))
    assert "a send lands in entry 1 and the cursor becomes 1, not 2" in text
    h = lguest.Host()
    a, b = (h.launch(mem_mb=1, sharenet=["lan0"], drivers=()) for _ in range(2))
    ring = b.dma_array([[(b.alloc(64), 64)] for _ in range(3)])
    b.kernel.lguest_bind_dma(slot(b, 1), ring, 3, 1)
    b.memory.set_u32(ring, 1)                          # entry 0 is still busy
    (binding,) = h.bindings()
    msg = a.dma([(a.alloc(8), 8)])
    filled = []
    for _ in range(2):
        a.kernel.lguest_send_dma(slot(a, 1), msg)
        filled.append([i for i in range(3) if b.memory.u32(ring + i * abi.DMA_SIZE) == 8])
        filled.append(binding.next_dma)
    assert filled == [[1], 1, [1, 2], 2]


def test_routing_a_private_key_never_reaches_a_binding():
    """Console output (key 0) goes to the Launcher, not the console's own input entry at key 0."""
    g = lguest.Host().launch(mem_mb=4)
    host_lg = g.host.lgs[g.id]
    assert route(g.host, host_lg, abi.LGUEST_CONSOLE_DMA_KEY)[1] == "launcher"
    entry = next(b.dmas for b in g.host.bindings() if b.ukey == 0)
    before = g.memory.u32(entry)
    printed = len(g.console.output)
    g.kernel.printk("hello")
    assert "hello" in g.console.output[printed:]
    assert g.memory.u32(entry) == before


def test_bind_with_a_big_irq_fails_before_the_key_is_looked_at():
    g = lguest.Host().launch(mem_mb=1, drivers=())
    assert g.hypercall(abi.LHCALL_BIND_DMA, 2, 0, (1 << 8) | 32) == 0   # a bad key, unharmed
    assert g.dead is None
    assert "before the key is looked at" in prose(section(RULES.read_text(encoding="utf-8"), "rules-bind"))


SOFT_WARNING = "Pending dma ADDR, key KEY"


def test_soft_failures_kill_nobody():
    r = Recorder()
    a, b = bound_receiver(r)
    msg = a.dma([(a.alloc(8), 8)])
    full = [a.hypercall(abi.LHCALL_BIND_DMA, slot(a, 10 + n), msg, (1 << 8) | 5) for n in range(33)]
    assert full[:32] == [1] * 32 and full[32] == 0
    assert a.hypercall(abi.LHCALL_BIND_DMA, slot(a, 1), msg, (1 << 8) | 32) == 0
    assert a.hypercall(abi.LHCALL_BIND_DMA, slot(a, 2), msg + 4, 0) == 0       # not bound
    a.kernel.lguest_send_dma(slot(a, 9), msg)                                 # nobody there
    assert a.memory.u32(msg) == 0
    a.kernel.lguest_send_dma(slot(a, 1), msg)                                 # fills the one entry
    a.kernel.lguest_send_dma(slot(a, 1), msg)                                 # full, retried
    assert a.memory.u32(msg) == 0 and b.pending_irqs == [1]
    a.kernel.lguest_send_dma(0x4000, msg)                                     # no device there
    assert message_pattern("lguest: " + SOFT_WARNING).fullmatch(a.launcher.log[-1])
    assert a.memory.u32(msg) == 0
    with pytest.raises(OSError) as e:
        a.launcher.lguest.getdma(slot(a, 60))
    assert e.value.errno == errno.ENOENT
    with pytest.raises(OSError) as e:
        a.launcher.lguest.irq(abi.LGUEST_IRQS)
    assert e.value.errno == errno.EINVAL
    assert r.messages == [] and a.dead is None and b.dead is None
    assert f"`{SOFT_WARNING}`" in section(RULES.read_text(encoding="utf-8"), "rules-soft")


def test_an_skb_head_takes_one_section_per_page_it_touches():
    worst = max(len(list(_page_pieces(at, RX_BUF_LEN))) for at in range(PAGE - RX_BUF_LEN, PAGE + 1))
    assert worst == 2
    g = lguest.Host().launch(mem_mb=4, sharenet=["lan0"])
    info = g.kernel.net.devices[0].priv
    assert [len(dma_sections(g.memory, info.dma_addr(i))) for i in range(NUM_SKBS)] == [1] * NUM_SKBS
    assert "takes one section or two" in prose(section(RULES.read_text(encoding="utf-8"), "rules-sections"))


# ----------------------------------------------------------------------------- the links

def labels_in_book() -> set[str]:
    """Every target a {ref} can name: (label)= lines, exercise and figure labels."""
    found = set()
    for path in book_pages().values():
        text = markdown_of(path)
        found |= set(re.findall(r"^\(([\w-]+)\)=\s*$", text, re.M))
        found |= set(re.findall(r"^:(?:label|name): *([\w-]+)\s*$", text, re.M))
    return found


def heading_slugs(path: Path) -> set[str]:
    """The anchors myst_heading_anchors gives a page's headings (down to ###), as MyST makes them."""
    slugs: set[str] = set()
    tokens = MarkdownIt("commonmark").parse(markdown_of(path))
    for opening, inline in zip(tokens, tokens[1:]):
        if opening.type == "heading_open" and int(opening.tag[1]) <= HEADING_ANCHOR_LEVELS:
            title = "".join(c.content for c in inline.children or [] if c.type in ("text", "code_inline"))
            slug, n = default_slugify(title), 1
            while slug in slugs:
                slug, n = f"{default_slugify(title)}-{n}", n + 1
            slugs.add(slug)
    return slugs


def role_targets(text: str, role: str) -> list[str]:
    """The targets of {role}`...` in text: `target` or `title <target>`."""
    return [m.group(2) or m.group(1) for m in re.finditer(r"\{%s\}`([^`<]*?)\s*(?:<([^`>]+)>)?`" % role, text)]


@pytest.mark.parametrize("page", [RULES, GLOSSARY], ids=lambda p: p.name)
def test_every_ref_on_the_page_exists(page):
    text = page.read_text(encoding="utf-8")
    refs = role_targets(text, "ref")
    assert refs, f"{page.name} links nowhere"
    missing = sorted(set(refs) - labels_in_book())
    assert not missing, f"{page.name}: {{ref}} targets that are not labels in the book: {missing}"


@pytest.mark.parametrize("page", [RULES, GLOSSARY], ids=lambda p: p.name)
def test_every_doc_and_anchor_link_on_the_page_exists(page):
    text = page.read_text(encoding="utf-8")
    pages = book_pages()
    for doc in role_targets(text, "doc"):
        assert any(name.rsplit(".", 1)[0] == doc for name in pages), f"{{doc}}`{doc}`: no such page"
    for target, anchor in re.findall(r"\]\(([\w.-]+\.(?:ipynb|md))#([\w-]+)\)", text):
        assert target in pages, f"{page.name} links to {target}, which is not in the book"
        assert anchor in heading_slugs(pages[target]), (
            f"{page.name} links to {target}#{anchor}; that page's heading anchors are "
            f"{sorted(heading_slugs(pages[target]))}")


def test_the_misbehave_chapter_is_linked_section_by_section():
    text = RULES.read_text(encoding="utf-8")
    for anchor in ("the-promise-path-by-path", "the-soft-failures",
                   "where-2007-broke-the-promise-unbinding-twice"):
        assert f"misbehave_guests.ipynb#{anchor})" in text


def test_every_rule_section_has_a_label_and_a_link():
    text = RULES.read_text(encoding="utf-8")
    labels = re.findall(r"^\((rules[\w-]*)\)=\s*\n#+ ", text, re.M)
    assert labels[0] == "rules" and len(labels) == len(set(labels)) >= 10
    for label in labels[1:]:
        body = section(text, label)
        assert re.search(r"\{ref\}|\.ipynb#", body), f"section ({label}) links to no chapter"


# ----------------------------------------------------------------------------- the glossary

def glossary_entries() -> list[tuple[list[str], str]]:
    """(terms, definition) for each entry of the {glossary} block."""
    block = re.search(r"^```\{glossary\}\n(.*?)^```", GLOSSARY.read_text(encoding="utf-8"), re.M | re.S)
    assert block, "book/glossary.md has no ```{glossary} block"
    entries, terms, definition = [], [], []
    for line in block.group(1).splitlines() + [""]:
        if line and not line[0].isspace():
            if definition:
                entries.append((terms, " ".join(definition)))
                terms, definition = [], []
            terms.append(line.strip())
        elif line.strip():
            definition.append(line.strip())
    if terms:
        entries.append((terms, " ".join(definition)))
    return entries


def glossary_terms() -> list[str]:
    return [term for terms, _ in glossary_entries() for term in terms]


def test_glossary_terms_are_unique():
    lowered = [t.lower() for t in glossary_terms()]        # Sphinx matches terms case-insensitively
    assert len(lowered) == len(set(lowered)), sorted(t for t in lowered if lowered.count(t) > 1)


def test_glossary_has_the_books_terms():
    wanted = {"key", "futex key", "shared key", "private key", "binding", "entry", "section",
              "used_len", "ring", "slot", "peer", "MAC", "Host", "Launcher", "Guest", "pfn limit",
              "top", "device descriptor", "device page", "status bits", "irq", "pending bitmap",
              "hypercall", "SEND_DMA", "BIND_DMA", "GETDMA", "kill", "kill_guest", "skb", "Waker"}
    assert wanted <= set(glossary_terms()), sorted(wanted - set(glossary_terms()))


def test_every_glossary_entry_is_short_and_links_to_where_it_is_shown():
    for terms, definition in glossary_entries():
        assert definition, f"{terms}: no definition"
        assert re.search(r"\{(ref|doc)\}`", definition), f"{terms}: the definition links nowhere"
        unquoted = re.sub(r'"[^"]*"', "QUOTE", definition.strip())      # a quote is not a sentence
        sentences = re.split(r"(?<=[.!?])\s+(?=[A-Z`(])", unquoted)
        assert len(sentences) <= 2, f"{terms}: {len(sentences)} sentences; keep it to one or two"


def test_every_term_role_in_the_book_names_a_glossary_term():
    terms = {t.lower() for t in glossary_terms()}
    used = {}
    for name, path in book_pages().items():
        for target in role_targets(markdown_of(path), "term"):
            used.setdefault(target, name)
    assert role_targets(RULES.read_text(encoding="utf-8"), "term"), "the rules page uses no {term}"
    unknown = {t: page for t, page in used.items() if t.lower() not in terms}
    assert not unknown, f"{{term}} roles naming no glossary term (term: page): {unknown}"


# ------------------------------------------------------------------------ width and order

@pytest.mark.parametrize("page", [RULES, GLOSSARY], ids=lambda p: p.name)
def test_tables_and_fenced_blocks_fit_the_column(page):
    too_wide, fence = [], None
    for number, line in enumerate(page.read_text(encoding="utf-8").splitlines(), 1):
        marker = re.match(r"\s*(```+|~~~+)", line)
        if marker and (fence is None or marker.group(1).startswith(fence)):
            fence = None if fence else marker.group(1)
            continue
        if (fence or line.startswith("|")) and len(line) > WIDTH:
            too_wide.append(f"line {number}: {len(line)} columns")
    assert not too_wide, f"{page.name}: lines over {WIDTH} columns in a table or fence: {too_wide}"


def test_rules_and_glossary_follow_the_chapters_in_the_toc():
    names = [Path(n).name for n in toc_docnames()]
    at = names.index("rules")
    assert names[at - 1] == "misbehave_guests" and names[at + 1:at + 3] == ["glossary", "differences"]
