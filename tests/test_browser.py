"""The built book in a real browser: Debian's chromium, driven by Playwright.

`make test` builds the book first, so this module always sees a fresh `_build/html`. It serves
that folder on 127.0.0.1 and loads every page named in `_toc.yml` (new chapters are picked up
without touching this file). For each page it checks that:

- no request leaves 127.0.0.1 (every request URL is recorded; off-host ones are also aborted),
  no local request fails or answers >= 400, and the HTML names no off-host script, style,
  font or image;
- there are no page errors and no console errors, except the known
  ``Identifier 'THEBE_JS_URL' has already been declared`` noise (sphinx-thebe injects its
  config twice) and the browser's own 404 for ``/favicon.ico``;
- every <img> in the page body has loaded (naturalWidth > 0) and every visible <svg> figure
  has a size;
- widget views embedded in the page were rendered by the vendored widget manager;
- on pages with math, MathJax typeset it (mjx-container elements exist, every math element
  holds one, and no raw ``$$`` or ``\\[`` is left in the prose).

A second test loads every page again and checks that every ``pre`` (code cells, their outputs,
fenced blocks, the widgets' text) fits its box at 1280x900, the book's reference window: no
line is clipped or needs a horizontal scrollbar there. Folded cells and dropdowns are opened
first, so what a reader unfolds is checked too.

On a 390-px phone screen, a third test checks that no page scrolls sideways and that the
pictures (the views' SVG, the players' frames, the figures) keep the size they were drawn at,
in a box of their own that scrolls sideways, rather than shrink until their labels are 4 px.

A full-page screenshot of each page goes to ``_build/screenshots/<page>.png``.

The server, the browser and the request log live in ``tests/browser_helpers.py``, shared with
the widget and JupyterLab tests. Never run ``playwright install``: the browser is
``/usr/bin/chromium`` (``make test`` apt-gets it when it is missing).
"""
from __future__ import annotations

import re
from pathlib import Path

import pytest

from browser_helpers import (PAGES, ROOT, SHOTS, browser_context, built_html, is_local,  # noqa: F401
                             open_page, page_id, server, unexpected)

pytestmark = pytest.mark.browser


# ------------------------------------------------------------------------------ page checks

# Scripts, styles, fonts, images and frames the browser would fetch by itself (links are fine).
FETCHED_ATTR = re.compile(
    r"<(?:script|img|iframe|source|audio|video|embed)\b[^>]*\bsrc=[\"']((?:https?:)?//[^\"']+)"
    r"|<link\b(?=[^>]*\brel=[\"'](?:stylesheet|preload|modulepreload|icon|shortcut icon|"
    r"preconnect|dns-prefetch|prefetch)[\"'])[^>]*\bhref=[\"']((?:https?:)?//[^\"']+)"
    r"|@import\s+url\([\"']?((?:https?:)?//[^)\"']+)", re.I)

FIGURES_JS = """
async () => {
  const body = document.querySelector('main') || document.body;
  const imgs = Array.from(body.querySelectorAll('img'));
  for (const img of imgs) { img.loading = 'eager'; }
  await Promise.all(imgs.map(img => img.complete ? null : new Promise(ok => {
    img.addEventListener('load', ok, {once: true});
    img.addEventListener('error', ok, {once: true});
    setTimeout(ok, 10000);
  })));
  const svgs = Array.from(body.querySelectorAll('svg'))
    .filter(s => !s.parentElement.closest('svg'))            // outermost <svg> only
    .filter(s => s.closest('.cell_output, figure, .output, .figure, .jupyter-widgets'));
  return {
    imgs: imgs.map(i => ({src: i.currentSrc || i.src, w: i.naturalWidth, ok: i.complete})),
    svgs: svgs.map(s => {
      const r = s.getBoundingClientRect();
      return {visible: s.checkVisibility(), w: r.width, h: r.height,
              children: s.childElementCount,
              where: (s.closest('[id]') || {}).id || ''};
    }),
  };
}
"""

MATH_JS = """
async () => {
  if (window.MathJax && MathJax.startup && MathJax.startup.promise) {
    await MathJax.startup.promise;
  }
  const maths = Array.from(document.querySelectorAll('.math'));
  const prose = Array.from(document.querySelectorAll('main p, main li, main .math, main td'))
    .filter(e => !e.closest('pre, code, .cell_output, .highlight'));
  return {
    mathjax: !!(window.MathJax && MathJax.version),
    containers: document.querySelectorAll('mjx-container').length,
    untypeset: maths.filter(m => !m.querySelector('mjx-container')).map(m => m.textContent.trim()),
    raw: prose.map(e => e.textContent)
              .filter(t => t.includes('$$') || t.includes('\\\\[') || t.includes('\\\\(')),
  };
}
"""

WIDGETS_JS = """
async () => {
  // the widget manager renders after the load event, asynchronously: wait for it (up to 10 s)
  const count = () => ({
    views: document.querySelectorAll('script[type="application/vnd.jupyter.widget-view+json"]').length,
    rendered: document.querySelectorAll('.jupyter-widgets, .widget-subarea').length,
    state: !!document.querySelector('script[type="application/vnd.jupyter.widget-state+json"]'),
  });
  for (let i = 0; i < 100 && count().rendered < count().views; i++) {
    await new Promise(ok => setTimeout(ok, 100));
  }
  return count();
}
"""


PRE_OVERFLOW_JS = """
async () => {
  for (let i = 0; i < 100; i++) {          // the widget manager renders after the load event
    const views = document.querySelectorAll(
      'script[type="application/vnd.jupyter.widget-view+json"]').length;
    if (document.querySelectorAll('.jupyter-widgets, .widget-subarea').length >= views) break;
    await new Promise(ok => setTimeout(ok, 100));
  }
  // What a reader can unfold is checked too: folded cells (<details>) and dropdowns.
  document.querySelectorAll('details').forEach(d => { d.open = true; });
  document.querySelectorAll('.toggle-hidden').forEach(e => e.classList.remove('toggle-hidden'));
  await new Promise(ok => requestAnimationFrame(() => requestAnimationFrame(ok)));
  return Array.from(document.querySelectorAll('pre'))
    .filter(pre => pre.scrollWidth > pre.clientWidth)
    .map(pre => ({
      where: pre.closest('.cell_input') ? 'code cell'
           : pre.closest('.cell_output') ? 'output' : 'markdown',
      first: pre.textContent.split('\\n').find(line => line.trim()) || '',
      scroll: pre.scrollWidth, client: pre.clientWidth,
    }));
}
"""

@pytest.mark.parametrize("docname", PAGES, ids=page_id)
def test_every_pre_fits_the_column(docname: str, browser_context, server, built_html: Path):
    """At 1280x900 every pre shows its longest line: scrollWidth <= clientWidth."""
    page, _ = open_page(browser_context, f"{server}/{docname}.html")
    try:
        assert page.viewport_size == {"width": 1280, "height": 900}
        wide = page.evaluate(PRE_OVERFLOW_JS)
    finally:
        page.close()
    assert not wide, f"{docname}: {len(wide)} pre wider than their box at 1280x900:\n  " + \
        "\n  ".join(f"{w['where']}: {w['first'][:72]!r} scrollWidth {w['scroll']} > "
                     f"clientWidth {w['client']}" for w in wide)


PHONE = (390, 844)

PHONE_JS = """
async () => {
  for (let i = 0; i < 100; i++) {
    const views = document.querySelectorAll(
      'script[type="application/vnd.jupyter.widget-view+json"]').length;
    if (document.querySelectorAll('.jupyter-widgets, .widget-subarea').length >= views) break;
    await new Promise(ok => setTimeout(ok, 100));
  }
  const screen = document.documentElement.clientWidth;
  // the nearest box around e that scrolls sideways, if it lies within the screen
  const scroller = e => {
    for (let a = e.parentElement; a && a !== document.body; a = a.parentElement) {
      if (['auto', 'scroll'].includes(getComputedStyle(a).overflowX)) {
        return a.getBoundingClientRect().right <= screen + 1;
      }
    }
    return false;
  };
  const drawn = Array.from(document.querySelectorAll('main svg.lguest-view, main figure img'))
    .filter(e => e.checkVisibility())
    .map(e => ({what: e.tagName.toLowerCase() === 'img' ? e.getAttribute('src') : 'svg.lguest-view',
                shown: Math.round(e.getBoundingClientRect().width),
                drawn: e.tagName.toLowerCase() === 'img' ? e.naturalWidth : e.width.baseVal.value,
                scrolls: e.getBoundingClientRect().width <= screen || scroller(e)}));
  return {page: document.documentElement.scrollWidth, screen, drawn};
}
"""


@pytest.mark.parametrize("docname", PAGES, ids=page_id)
def test_on_a_phone_pages_stay_in_the_screen_and_pictures_keep_their_size(docname: str, browser_context,
                                                                          server, built_html: Path):
    page, _ = open_page(browser_context, f"{server}/{docname}.html", viewport=PHONE)
    try:
        got = page.evaluate(PHONE_JS)
    finally:
        page.close()
    assert got["screen"] == PHONE[0]
    assert got["page"] <= got["screen"], \
        f"{docname}: on a {PHONE[0]}-px screen the page is {got['page']} px wide: it scrolls sideways"
    shrunk = [d for d in got["drawn"] if d["shown"] < d["drawn"] - 1]
    assert not shrunk, f"{docname}: pictures shrunk below the size they were drawn at: {shrunk}"
    stuck = [d for d in got["drawn"] if not d["scrolls"]]
    assert not stuck, f"{docname}: pictures wider than the screen in no box that scrolls: {stuck}"


@pytest.mark.parametrize("docname", PAGES, ids=page_id)
def test_page(docname: str, browser_context, server, built_html: Path):
    html_file = built_html / f"{docname}.html"
    assert html_file.is_file(), f"{docname} is in _toc.yml but {html_file.relative_to(ROOT)} was not built"
    source = html_file.read_text(encoding="utf-8")

    fetched = [next(g for g in m.groups() if g) for m in FETCHED_ATTR.finditer(source)]
    assert not fetched, f"{docname}: the HTML loads assets from off this machine: {fetched}"

    page, log = open_page(browser_context, f"{server}/{docname}.html")
    try:
        figures = page.evaluate(FIGURES_JS)
        math = page.evaluate(MATH_JS)
        widgets = page.evaluate(WIDGETS_JS)
        page.wait_for_load_state("networkidle")   # fonts MathJax asked for while typesetting
        SHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SHOTS / f"{page_id(docname)}.png"), full_page=True)
    finally:
        page.close()

    problems: list[str] = []

    def check(ok, message: str):
        if not ok:
            problems.append(message)

    # No request off 127.0.0.1, nothing missing, nothing broken.
    check(log.requests, "no request was recorded at all")
    check(not log.off_host, f"requests left 127.0.0.1 (aborted): {log.off_host}")
    check(all(is_local(u) for u in log.requests),
          f"off-host requests: {[u for u in log.requests if not is_local(u)]}")
    check(not log.bad_status, f"local requests answered with errors: {log.bad_status}")
    check(not log.failed, f"requests failed: {log.failed}")
    check(not unexpected(log.page_errors), f"page errors: {unexpected(log.page_errors)}")
    check(not unexpected(log.console_errors), f"console errors: {unexpected(log.console_errors)}")

    # Figures: every image loaded, every visible SVG figure has a size and content.
    broken = [i["src"] for i in figures["imgs"] if not (i["ok"] and i["w"] > 0)]
    check(not broken, f"images that did not load: {broken}")
    empty = [s for s in figures["svgs"]
             if s["visible"] and not (s["w"] > 0 and s["h"] > 0 and s["children"] > 0)]
    check(not empty, f"SVG figures with no size or content: {empty}")
    n_static_imgs = len(re.findall(r"<img\b", source.split("<main", 1)[-1]))
    check(len(figures["imgs"]) >= n_static_imgs,
          f"{n_static_imgs} <img> in the HTML but {len(figures['imgs'])} in the page")

    # Widgets: each embedded view was rendered by the vendored html-manager.
    if widgets["views"]:
        check(widgets["state"], "widget views but no widget state embedded")
        check(widgets["rendered"] >= widgets["views"],
              f"{widgets['views']} widget views, only {widgets['rendered']} rendered")

    # Math: typeset by the vendored MathJax, nothing left raw.
    if 'class="math' in source:
        check(math["mathjax"], "the page has math but MathJax did not load")
        check(math["containers"] > 0, "MathJax produced no mjx-container")
        check(not math["untypeset"], f"math left untypeset: {math['untypeset']}")
        check(not math["raw"], f"raw TeX left in the prose: {math['raw']}")

    assert not problems, f"{docname} ({SHOTS.name}/{page_id(docname)}.png):\n  " + "\n  ".join(problems)


def test_index_redirects_to_the_root_page(browser_context, server):
    """_build/html/index.html is the path `make book` prints: it must land on the ToC's root."""
    page, log = open_page(browser_context, f"{server}/index.html")
    try:
        page.wait_for_url(re.compile(re.escape(PAGES[0]) + r"\.html"), timeout=10000)
        title = page.title()
    finally:
        page.close()
    assert not log.off_host, f"index.html: requests left 127.0.0.1: {log.off_host}"
    assert "lguest" in title.lower(), f"unexpected title on the root page: {title!r}"


def test_toc_lists_chapters():
    assert len(PAGES) >= 2, f"_toc.yml names too few pages: {PAGES}"
    assert len({page_id(p) for p in PAGES}) == len(PAGES), \
        f"two ToC pages share a file name (their screenshots would collide): {PAGES}"
