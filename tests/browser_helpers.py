"""What the browser tests share: the built book on 127.0.0.1, Debian's chromium, request logs.

Used by tests/test_browser.py (every page), tests/test_browser_widgets.py (the widget views and
the TracePlayer in the static book) and tests/test_lab.py (the live views in JupyterLab).

A test module takes the fixtures by importing them by name:

    from browser_helpers import browser_context, built_html, server

Every browser test *fails* (it never skips) when ``_build/html`` is missing: run ``make book``
first (``make test`` does). Never run ``playwright install``: the browser is
``/usr/bin/chromium`` (``make test`` apt-gets it when it is missing).
"""
from __future__ import annotations

import contextlib
import functools
import http.server
import shutil
import tempfile
import threading
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from book_toc import toc_docnames

ROOT = Path(__file__).resolve().parents[1]
HTML = ROOT / "_build" / "html"
SHOTS = ROOT / "_build" / "screenshots"
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
KNOWN_NOISE = ("Identifier 'THEBE_JS_URL' has already been declared",)
LOCAL_HOST = "127.0.0.1"
PAGE_TIMEOUT_MS = 90_000          # a loaded 2-core machine can take a while over a page full of widgets
LOCAL_SCHEMES = {"data", "blob", "about"}


PAGES = toc_docnames()


def page_id(docname: str) -> str:
    return Path(docname).name


# ----------------------------------------------------------------------------------- fixtures

def require_built_html() -> Path:
    """Fail (never skip) when the book has not been built."""
    if not (HTML / "index.html").is_file():
        pytest.fail(f"{HTML.relative_to(ROOT)}/index.html is missing: run `make book` first "
                    "(`make test` builds the book before it runs the tests).", pytrace=False)
    return HTML


def require_chromium() -> Path:
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing: `make test` installs it (apt-get install -y chromium).",
                    pytrace=False)
    return CHROMIUM


@pytest.fixture(scope="module")
def built_html() -> Path:
    return require_built_html()


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):  # keep pytest's output clean
        pass


@pytest.fixture(scope="module")
def server(built_html: Path):
    handler = functools.partial(_QuietHandler, directory=str(built_html))
    httpd = http.server.ThreadingHTTPServer((LOCAL_HOST, 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://{LOCAL_HOST}:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=5)


@contextlib.contextmanager
def chromium_context(viewport=(1280, 900)):
    """A Playwright context on /usr/bin/chromium with a fresh --user-data-dir, closed after."""
    require_chromium()
    from playwright.sync_api import sync_playwright

    profile = tempfile.mkdtemp(prefix="lguest-chromium-")
    try:
        with sync_playwright() as p:
            # A persistent context is how Playwright takes a --user-data-dir: a fresh temp dir.
            context = p.chromium.launch_persistent_context(
                profile,
                executable_path=str(CHROMIUM),
                headless=True,
                args=CHROMIUM_ARGS,
                viewport={"width": viewport[0], "height": viewport[1]},
                service_workers="block",
            )
            try:
                yield context
            finally:
                context.close()
    finally:
        shutil.rmtree(profile, ignore_errors=True)


@pytest.fixture(scope="module")
def browser_context(server):
    with chromium_context() as context:
        yield context


# ------------------------------------------------------------------------------ page loading

class PageLog:
    """Everything one page load did: requests, failures, errors."""

    def __init__(self):
        self.requests: list[str] = []
        self.off_host: list[str] = []
        self.failed: list[str] = []
        self.bad_status: list[str] = []
        self.console_errors: list[str] = []
        self.page_errors: list[str] = []


def is_local(url: str) -> bool:
    parts = urlsplit(url)
    return parts.scheme in LOCAL_SCHEMES or (
        parts.scheme in ("http", "https") and parts.hostname == LOCAL_HOST)


def is_favicon_404(msg) -> bool:
    """The browser asks for /favicon.ico by itself (not a page request); the book has none."""
    return (msg.text.startswith("Failed to load resource")
            and urlsplit(msg.location.get("url", "")).path == "/favicon.ico")


def watch_page(page) -> PageLog:
    """Record every request of ``page`` (aborting off-host ones), failures and errors."""
    log = PageLog()

    def route(r):
        if is_local(r.request.url):
            r.continue_()
        else:
            log.off_host.append(r.request.url)
            r.abort()

    page.route("**/*", route)
    page.on("request", lambda req: log.requests.append(req.url))
    page.on("requestfailed", lambda req: log.failed.append(f"{req.url} ({req.failure})"))
    page.on("response", lambda resp: resp.status >= 400
            and log.bad_status.append(f"{resp.status} {resp.url}"))
    page.on("console", lambda msg: msg.type == "error" and not is_favicon_404(msg)
            and log.console_errors.append(msg.text))
    page.on("pageerror", lambda exc: log.page_errors.append(str(exc)))
    return log


def open_page(context, url: str, viewport: tuple[int, int] | None = None):
    """Load url with every request recorded and off-host ones aborted; return (page, log).
    ``viewport`` (width, height) sizes this page's window instead of the context's."""
    page = context.new_page()
    if viewport:
        page.set_viewport_size({"width": viewport[0], "height": viewport[1]})
    page.set_default_timeout(PAGE_TIMEOUT_MS)
    log = watch_page(page)
    page.goto(url, wait_until="networkidle")
    return page, log


def unexpected(messages: list[str]) -> list[str]:
    return [m for m in messages if not any(noise in m for noise in KNOWN_NOISE)]


def screenshot_path(name: str) -> Path:
    SHOTS.mkdir(parents=True, exist_ok=True)
    return SHOTS / name
