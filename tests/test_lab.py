"""The live views in JupyterLab (issue 3): run the D:200 chapter, SEND_DMA, watch them change.

The module starts ``jupyter lab`` from the venv on a free port with a random token, on a
*copy* of ``book/`` in a temp dir (so JupyterLab can never save a notebook back over the stored
outputs that nbval compares), with its own settings, workspaces and runtime dirs. It opens
``d200_io.ipynb`` in Debian's chromium, runs Run -> Run All Cells and waits for the kernel to go
idle. Then, in the "Watching it live" section:

- clicking **SEND_DMA to slot 1** must change both live views: one more KeyTable entry gauge
  reads ``used_len 64 of 64`` and one more BufferMap section is filled;
- new cells run after it (re-arming the receive ring, then calling ``send_once()``) must change
  them again: the views redraw after every cell.

Screenshots go to ``_build/screenshots/lab_*.png``. The server is stopped at the end, always.
Like every browser test, it fails (never skips) when ``_build/html`` is missing: run
``make book`` first.
"""
from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import pytest

from browser_helpers import ROOT, chromium_context, require_built_html, screenshot_path, watch_page

pytestmark = pytest.mark.browser

NOTEBOOK = "d200_io.ipynb"
BUTTON = "SEND_DMA to slot 1"
BIN = Path(sys.executable).parent          # the venv's bin/: jupyter and the python3 kernel
START_TIMEOUT = 30
RUN_ALL_TIMEOUT = 60_000                   # ms
SETTINGS = {
    # every cell in the DOM, so the live section can be found without scrolling the window
    "@jupyterlab/notebook-extension/tracker.jupyterlab-settings": {"windowingMode": "none"},
    # no news or update checks: nothing asks the web for anything
    "@jupyterlab/apputils-extension/notification.jupyterlab-settings": {"fetchNews": "false",
                                                                        "checkForUpdates": False},
}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def stop(proc: subprocess.Popen) -> None:
    """SIGTERM the server (it shuts its kernels down), then SIGKILL its process group if needed."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            pass
    try:
        os.killpg(proc.pid, signal.SIGKILL)     # the session we started: a kernel left behind, if any
    except (ProcessLookupError, PermissionError):
        pass
    proc.wait(timeout=5)


@pytest.fixture(scope="module")
def lab_server():
    require_built_html()
    tmp = Path(tempfile.mkdtemp(prefix="lguest-lab-"))
    book = tmp / "book"
    shutil.copytree(ROOT / "book", book, ignore=shutil.ignore_patterns(".ipynb_checkpoints", "__pycache__"))
    for name, content in SETTINGS.items():
        path = tmp / "settings" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(content))
    port, token = free_port(), secrets.token_hex(16)
    env = dict(os.environ, PATH=f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
               JUPYTER_PREFER_ENV_PATH="1", JUPYTER_RUNTIME_DIR=str(tmp / "runtime"),
               PYDEVD_DISABLE_FILE_VALIDATION="1")
    log_path = tmp / "lab.log"
    log = open(log_path, "w")
    proc = subprocess.Popen(
        [str(BIN / "jupyter"), "lab", "--allow-root", "--no-browser", "--ip=127.0.0.1", f"--port={port}",
         f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={book}",
         f"--LabApp.user_settings_dir={tmp / 'settings'}", f"--LabApp.workspaces_dir={tmp / 'workspaces'}",
         "--LabApp.news_url=", "--ServerApp.port_retries=0"],
        cwd=book, env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
        start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            if proc.poll() is not None:
                pytest.fail(f"jupyter lab exited with {proc.returncode}:\n{log_path.read_text()[-3000:]}",
                            pytrace=False)
            try:
                with urllib.request.urlopen(f"{base}/api/status?token={token}", timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"jupyter lab did not answer in {START_TIMEOUT} s:\n{log_path.read_text()[-3000:]}",
                            pytrace=False)
            time.sleep(0.25)
        yield {"base": base, "token": token, "book": book, "log": log_path}
    finally:
        stop(proc)
        log.close()
        shutil.rmtree(tmp, ignore_errors=True)


# --- reading the live views out of the page ------------------------------------------------------
LIVE_JS = """
label => {
  const button = Array.from(document.querySelectorAll('button')).find(b => b.textContent.trim() === label);
  if (!button) return null;
  const out = button.closest('.jp-OutputArea-output') || button.closest('.jp-OutputArea');
  const live = Array.from(out.querySelectorAll('.lguest-live'));
  const read = el => {
    const svg = el.querySelector('svg');
    if (!svg) return null;
    const rects = Array.from(svg.querySelectorAll('rect')).map(r => ({
      fill: r.getAttribute('fill'), w: parseFloat(r.getAttribute('width')),
      title: (r.querySelector('title') || {}).textContent || ''}));
    return {title: (svg.querySelector(':scope > title') || {}).textContent || '', rects};
  };
  return live.map(read);
}
"""

BLUE = "#0072B2"


def live_views(page) -> tuple[dict, dict]:
    views = page.evaluate(LIVE_JS, BUTTON)
    assert views is not None, f"no {BUTTON!r} button in the notebook after Run All"
    assert len(views) == 2 and all(views), f"expected the live KeyTable and BufferMap next to the button: {views}"
    keys, bmap = views
    assert keys["title"].startswith("KeyTable") and bmap["title"].startswith("BufferMap"), views
    return keys, bmap


def gauges(keys: dict) -> list[str]:
    """The KeyTable's entry gauges: 'entry @ 0x..: used_len N of M', one per entry."""
    return sorted({r["title"] for r in keys["rects"] if r["title"].startswith("entry @")})


def filled_bars(bmap: dict) -> list[str]:
    """The BufferMap's filled bars (blue, drawn over a bound section), by their labels."""
    return sorted(r["title"] for r in bmap["rects"] if r["fill"] == BLUE and r["title"])


def wait_for_change(page, g_before, f_before, timeout_s: float = 10) -> tuple[dict, dict]:
    """Poll the live views until both the KeyTable's gauges and the BufferMap's bars changed."""
    deadline = time.monotonic() + timeout_s
    while True:
        keys, bmap = live_views(page)
        if (gauges(keys) != g_before and filled_bars(bmap) != f_before) or time.monotonic() > deadline:
            return keys, bmap
        page.wait_for_timeout(100)


def used(gauge_titles: list[str], value: int, capacity: int) -> int:
    return sum(t.endswith(f"used_len {value} of {capacity}") for t in gauge_titles)


def kernel_state(server, notebook: str = NOTEBOOK) -> str | None:
    """The execution_state of the notebook's kernel, as the server reports it (None: no kernel)."""
    url = f"{server['base']}/api/sessions?token={server['token']}"
    with urllib.request.urlopen(url, timeout=5) as r:
        sessions = json.load(r)
    for s in sessions:
        if s.get("path", "").endswith(notebook) and s.get("kernel"):
            return s["kernel"].get("execution_state")
    return None


def wait_kernel(page, server, timeout_s: float = 30, notebook: str = NOTEBOOK) -> None:
    """Until the notebook has a kernel and it is idle."""
    deadline = time.monotonic() + timeout_s
    while kernel_state(server, notebook) != "idle":
        if time.monotonic() > deadline:
            page.screenshot(path=str(screenshot_path("lab_no_kernel.png")))
            pytest.fail(f"the notebook's kernel is not idle after {timeout_s} s (state "
                        f"{kernel_state(server, notebook)!r}); see _build/screenshots/lab_no_kernel.png", pytrace=False)
        time.sleep(0.25)


def select_kernel(page) -> None:
    """JupyterLab asks which kernel to start for a notebook it does not trust: pick the preferred one."""
    dialog = page.locator(".jp-Dialog", has_text="Select Kernel")
    try:
        dialog.wait_for(timeout=5000)
    except Exception:
        return                                   # no dialog: it started the kernel by itself
    dialog.get_by_role("button", name="Select", exact=True).click()
    dialog.wait_for(state="detached", timeout=5000)


def wait_idle(page, timeout=RUN_ALL_TIMEOUT) -> None:
    """Until no cell is queued or running ([*]) and the kernel says idle."""
    page.wait_for_function(
        """() => {
             const ind = document.querySelector('.jp-Notebook-ExecutionIndicator');
             const prompts = Array.from(document.querySelectorAll('.jp-InputPrompt'));
             return ind && ind.getAttribute('data-status') === 'idle'
                    && !prompts.some(p => p.textContent.includes('*'));
           }""", timeout=timeout, polling=200)


def run_new_cell(page, code: str) -> None:
    """Add a cell at the end of the notebook, type code into it and run it."""
    page.locator(".jp-Notebook .jp-Cell").last.click()
    page.keyboard.press("Escape")               # command mode
    page.keyboard.press("b")                    # a new cell below, selected
    page.keyboard.press("Enter")                # edit it
    page.keyboard.insert_text(code)
    page.keyboard.press("Shift+Enter")
    page.wait_for_timeout(300)
    wait_idle(page, 20_000)


def shot(page, locator, name: str) -> None:
    locator.scroll_into_view_if_needed()
    page.screenshot(path=str(screenshot_path(f"lab_{name}.png")))


def open_and_run_all(page, server, notebook: str) -> list[str]:
    """Open a notebook, clear its stored outputs, Run All Cells, wait; return the prompts left unrun."""
    page.goto(f"{server['base']}/lab/tree/{notebook}?token={server['token']}")
    page.locator(".jp-Notebook .jp-Cell").first.wait_for(timeout=30_000)
    select_kernel(page)
    wait_kernel(page, server, notebook=notebook)
    # clear the stored outputs first, so that every prompt left numbered after Run All ran now
    page.get_by_role("menuitem", name="Edit", exact=True).click()
    page.get_by_role("menuitem", name="Clear Outputs of All Cells", exact=True).click()
    page.get_by_role("menuitem", name="Run", exact=True).click()
    page.get_by_role("menuitem", name="Run All Cells", exact=True).click()
    page.wait_for_timeout(500)
    wait_idle(page)
    wait_kernel(page, server, notebook=notebook)
    # every code cell ran (a cell tagged raises-exception must not stop Run All)
    return page.evaluate("""() => Array.from(document.querySelectorAll('.jp-CodeCell .jp-InputPrompt'))
                             .map(p => p.textContent.trim()).filter(t => !/^\\[\\d+\\]:$/.test(t))""")


VISIBLE_FRAME_JS = """() => (Array.from(document.querySelectorAll('.lguest-player .lguest-frame'))
                               .filter(f => f.checkVisibility()).map(f => f.querySelector('p').textContent)[0] || '')"""


def visible_frame(page) -> str:
    """The caption of the frame the (first) TracePlayer shows: 'N/total: event'."""
    return page.evaluate(VISIBLE_FRAME_JS)


def error_outputs(page) -> list[str]:
    return page.evaluate("""() => Array.from(document.querySelectorAll('.jp-RenderedText[data-mime-type="application/vnd.jupyter.error"]'))
                              .map(e => e.textContent.slice(0, 200))""")


@pytest.fixture(scope="module")
def lab_page(lab_server):
    with chromium_context(viewport=(1400, 1000)) as context:
        page = context.new_page()
        log = watch_page(page)
        unrun = open_and_run_all(page, lab_server, NOTEBOOK)
        errors = page.evaluate("""() => Array.from(document.querySelectorAll(
                                  '.jp-OutputArea-output[data-mime-type="application/vnd.jupyter.stderr"]'))
                                  .map(e => e.textContent.slice(0, 300))""")
        button = page.locator("button", has_text=BUTTON)
        button.wait_for(timeout=10_000)
        shot(page, button, "before")
        yield {"page": page, "log": log, "button": button, "unrun": unrun, "errors": errors,
               "server": lab_server, "context": context}
        page.close()


def test_run_all_runs_every_cell(lab_page):
    assert not lab_page["unrun"], f"cells that did not run under Run All Cells: {lab_page['unrun']}"
    tracebacks = error_outputs(lab_page["page"])
    # only the one intended error (the cell tagged raises-exception)
    assert len(tracebacks) <= 1, f"unexpected errors after Run All: {tracebacks}"


def test_button_updates_keytable_and_buffermap_live(lab_page):
    page, button = lab_page["page"], lab_page["button"]
    keys, bmap = live_views(page)
    g_before, f_before = gauges(keys), filled_bars(bmap)
    assert used(g_before, 0, 64) >= 1, f"no free 64-byte entry to receive into: {g_before}"
    button.click()
    # the two views are redrawn by two messages from the kernel: wait for both
    keys, bmap = wait_for_change(page, g_before, f_before)
    g_after, f_after = gauges(keys), filled_bars(bmap)
    shot(page, button, "after_click")
    assert g_after != g_before, f"the live KeyTable did not change after the click: {g_after}"
    assert used(g_after, 64, 64) == used(g_before, 64, 64) + 1, (g_before, g_after)
    assert used(g_after, 0, 64) == used(g_before, 0, 64) - 1, (g_before, g_after)
    assert f_after != f_before, f"the live BufferMap did not change after the click: {f_after}"
    newly = [t for t in f_after if t not in f_before]
    assert any(re.search(r": 64 bytes @ 0x[0-9a-f]+, 64 filled$", t) for t in newly), newly


def test_new_cells_update_them_live(lab_page):
    """Re-arm the ring (used_len 0, as the driver does once it has read a buffer), then send_once()."""
    page, button = lab_page["page"], lab_page["button"]
    keys, bmap = live_views(page)
    g_start, f_start = gauges(keys), filled_bars(bmap)
    run_new_cell(page, "b.memory.set_u32(live_ring, 0); b.memory.set_u32(live_ring + 100, 0)")
    keys, bmap = wait_for_change(page, g_start, f_start)
    g_armed, f_armed = gauges(keys), filled_bars(bmap)
    assert not any(re.search(r", 64 filled$", t) for t in f_armed), f"re-armed, yet still filled: {f_armed}"
    run_new_cell(page, "send_once()")
    keys, bmap = wait_for_change(page, g_armed, f_armed)
    g_sent, f_sent = gauges(keys), filled_bars(bmap)
    shot(page, button, "after_cell")
    assert used(g_sent, 64, 64) == used(g_armed, 64, 64) + 1, (g_armed, g_sent)
    assert len([t for t in f_sent if t.endswith(", 64 filled")]) == 1, f_sent


def test_lab_made_no_off_host_requests(lab_page):
    log = lab_page["log"]
    assert not log.off_host, f"JupyterLab's page asked for off-host URLs (aborted): {log.off_host}"


def test_d500_network_chapter_runs_in_lab_and_its_player_plays(lab_server, lab_page):
    """The network chapter under Run All: every cell runs, no error, and the TracePlayer of one
    echo steps its frames in the live page (after the D:200 tests, which share the server)."""
    page = lab_page["context"].new_page()             # one browser per module: the D:200 page's
    try:
        log = watch_page(page)
        unrun = open_and_run_all(page, lab_server, "d500_net.ipynb")
        assert not unrun, f"cells that did not run under Run All Cells: {unrun}"
        assert not error_outputs(page), error_outputs(page)
        player = page.locator(".lguest-player").first
        player.wait_for(timeout=10_000)
        before = visible_frame(page)
        player.locator(".noUi-handle").focus()
        page.keyboard.press("ArrowRight")
        page.keyboard.press("ArrowRight")
        page.wait_for_function(f"() => ({VISIBLE_FRAME_JS})() !== {json.dumps(before)}", timeout=5_000)
        shot(page, player, "d500_player")
        assert before.startswith("1/") and visible_frame(page).startswith("3/"), (before, visible_frame(page))
        assert not log.off_host, log.off_host
    finally:
        page.close()


def test_a_student_runs_the_student_edition_and_checks_an_answer(lab_server, lab_page, tmp_path):
    """D:010 as a student gets it (make student): Run All runs every cell with the answer cells
    empty, each check says "not yet"; then an answer typed in a new cell is checked right, and a
    wrong one gets a hint."""
    from lguest.classroom.course import build_student_edition
    notebooks = build_student_edition(tmp_path, book=False)["notebooks"]
    shutil.copy(notebooks / "d010_devices.ipynb", lab_server["book"] / "student_d010.ipynb")
    page = lab_page["context"].new_page()
    try:
        log = watch_page(page)
        unrun = open_and_run_all(page, lab_server, "student_d010.ipynb")
        assert not unrun, f"cells that did not run under Run All Cells: {unrun}"
        assert not error_outputs(page), error_outputs(page)
        outputs = page.locator(".jp-OutputArea-output").all_inner_texts()
        assert sum("not yet. no answer yet" in t for t in outputs) == 3, outputs[-8:]
        run_new_cell(page, "slots_answer = abi.LGUEST_MAX_DEVICES - 1 - d010.slots.problem(SEED).disks\n"
                           "d010.slots.check(slots_answer, SEED)")
        run_new_cell(page, "d010.slots.check(slots_answer + 1, SEED)")
        last = page.locator(".jp-OutputArea-output").all_inner_texts()[-2:]
        assert last[0].strip() == "d010-ex-fifteen: right", last
        assert "not yet. the console needs a descriptor of its own" in last[1], last
        shot(page, page.locator(".jp-Notebook .jp-Cell").last, "student_check")
        assert not log.off_host, log.off_host
    finally:
        page.close()
