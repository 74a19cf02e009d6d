"""A real headless browser for the HTML reports' tests, with the standard library only.

Headless Chromium driven over --remote-debugging-pipe (the DevTools protocol as NUL-terminated
JSON on fds 3 and 4). Importable from the tests as `weightinit_test_browser` (tests/conftest.py
registers it: pytest runs with --import-mode=importlib, so test folders are not on sys.path).

    executable = find_browser()                   # skips the test when there is none
    [(state, problems)] = open_pages(executable, tmp_path, [page])
    # or, for one report page, with the checks every report needs:
    state = open_report(executable, tmp_path, page, images=2, min_width=100, min_height=100)
    tags = Tags.of(page)                           # the page's start tags, without a browser

`open_pages` first loads a control page with a console error and a broken image and checks
that the harness sees both, so a page with no problems really has none. `open_report` opens one
report page and checks what every report promises (no console problem, no script, each figure
loaded from a data: URI).
"""

from __future__ import annotations

import contextlib
import html.parser
import json
import os
import select
import shutil
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
TIMEOUT = 60.0


class Chromium:
    """Headless Chromium driven over --remote-debugging-pipe (the DevTools protocol as
    NUL-terminated JSON on fds 3 and 4), with the standard library only."""

    def __init__(self, executable: str, profile: Path, log: Path) -> None:
        import fcntl  # POSIX only, like the pipe handling below

        to_read, self._to = os.pipe()
        self._from, from_write = os.pipe()
        # The browser wants the pipes on fds 3 and 4: move them above 9 first, so that the
        # shell's redirections cannot clobber one with the other.
        high_read = fcntl.fcntl(to_read, fcntl.F_DUPFD, 10)
        high_write = fcntl.fcntl(from_write, fcntl.F_DUPFD, 10)
        os.close(to_read)
        os.close(from_write)
        wrapper = (f'exec "$0" "$@" 3<&{high_read} 4>&{high_write} '
                   f"{high_read}<&- {high_write}>&-")
        flags = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                 "--no-first-run", "--no-default-browser-check",
                 "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--disable-extensions", "--disable-dev-shm-usage",
                 "--remote-debugging-pipe", f"--user-data-dir={profile}", "about:blank"]
        self._log_path = log
        self._log = open(log, "wb")  # noqa: SIM115 (closed in close())
        self.process = subprocess.Popen(
            ["bash", "-c", wrapper, executable, *flags], stdin=subprocess.DEVNULL,
            stdout=self._log, stderr=subprocess.STDOUT, pass_fds=(high_read, high_write),
            start_new_session=True)
        os.close(high_read)
        os.close(high_write)
        self._buffer = b""
        self._id = 0
        self.events: list[dict[str, Any]] = []

    def log_tail(self) -> str:
        return self._log_path.read_text(errors="replace")[-3000:]

    def _receive(self, deadline: float) -> dict[str, Any]:
        while b"\0" not in self._buffer:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"no answer from the browser; its log:\n{self.log_tail()}")
            ready, _, _ = select.select([self._from], [], [], left)
            if ready:
                chunk = os.read(self._from, 1 << 20)
                if not chunk:
                    raise RuntimeError(f"the browser closed the pipe; its log:\n"
                                       f"{self.log_tail()}")
                self._buffer += chunk
        message, self._buffer = self._buffer.split(b"\0", 1)
        return dict(json.loads(message))

    def send(self, method: str, params: dict[str, Any] | None = None,
             session: str | None = None, timeout: float = TIMEOUT) -> dict[str, Any]:
        self._id += 1
        message: dict[str, Any] = {"id": self._id, "method": method, "params": params or {}}
        if session:
            message["sessionId"] = session
        os.write(self._to, json.dumps(message).encode() + b"\0")
        deadline = time.monotonic() + timeout
        while True:
            answer = self._receive(deadline)
            if answer.get("id") == self._id:
                if "error" in answer:
                    raise RuntimeError(f"{method}: {answer['error']}")
                return dict(answer.get("result", {}))
            self.events.append(answer)

    def wait_for(self, method: str, timeout: float = TIMEOUT) -> None:
        deadline = time.monotonic() + timeout
        while not any(e.get("method") == method for e in self.events):
            self.events.append(self._receive(deadline))

    def drain(self, seconds: float) -> None:
        """Collect the events that arrive in the next `seconds` (late console messages)."""
        deadline = time.monotonic() + seconds
        with contextlib.suppress(TimeoutError):
            while True:
                self.events.append(self._receive(deadline))

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.send("Browser.close", timeout=10)
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, 9)  # its own session: the browser's processes
            self.process.wait(timeout=10)
        for fd in (self._to, self._from):
            with contextlib.suppress(OSError):
                os.close(fd)
        self._log.close()


# What the page looks like to the browser, read after the load event.
PAGE_STATE = """JSON.stringify({
  images: Array.from(document.images, i => ({complete: i.complete, width: i.naturalWidth,
                                              height: i.naturalHeight,
                                              src: i.currentSrc.slice(0, 22)})),
  scripts: document.scripts.length,
  text: document.body.innerText,
})"""

class Tags(html.parser.HTMLParser):
    """Every start tag of a page with its attributes, in order (``Tags.of(page)``)."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))

    @classmethod
    def of(cls, page: str) -> list[tuple[str, dict[str, str | None]]]:
        parser = cls()
        parser.feed(page)
        return parser.tags



def visit(browser: Chromium, session: str, url: str) -> tuple[dict[str, Any], list[str]]:
    """Load `url`; return the page state and every console / log error or warning."""
    browser.events.clear()
    browser.send("Page.navigate", {"url": url}, session)
    browser.wait_for("Page.loadEventFired")
    browser.drain(0.5)
    result = browser.send("Runtime.evaluate", {"expression": PAGE_STATE,
                                                "returnByValue": True}, session)
    state = json.loads(result["result"]["value"])
    problems = []
    for event in browser.events:
        method, params = event.get("method"), event.get("params", {})
        if method == "Runtime.consoleAPICalled" and params["type"] in ("error", "warning",
                                                                        "assert"):
            args = " ".join(str(a.get("value", a.get("description"))) for a in params["args"])
            problems.append(f"console.{params['type']}: {args}")
        elif method == "Runtime.exceptionThrown":
            problems.append(f"exception: {params['exceptionDetails']}")
        elif method == "Log.entryAdded" and params["entry"]["level"] in ("error", "warning"):
            entry = params["entry"]
            problems.append(f"log {entry['level']} ({entry['source']}): {entry['text']}")
        elif method == "Page.javascriptDialogOpening":
            problems.append(f"dialog: {params['message']}")
    return state, problems


def find_browser() -> str:
    """A runnable Chromium's executable; skips the calling test (with the reason) otherwise."""
    if os.name != "posix":
        pytest.skip("the browser test hands chromium its DevTools pipe the POSIX way")
    executable = next(filter(None, map(shutil.which, BROWSERS)), None)
    if executable is None:
        pytest.skip("chromium not installed: the HTML report is not opened in a real browser "
                    "(apt-get install chromium, as .ci/run does, to run this test)")
    if shutil.which("bash") is None:
        pytest.skip("bash not installed: needed to hand the browser its DevTools pipe")
    try:
        version = subprocess.run([executable, "--version"], capture_output=True, text=True,
                                 timeout=TIMEOUT, check=False)
    except subprocess.TimeoutExpired:
        pytest.skip(f"chromium not runnable: {executable} --version took over {TIMEOUT} s")
    if version.returncode != 0:  # e.g. Ubuntu's snap wrapper without snapd
        pytest.skip(f"chromium not runnable: {executable} --version exited "
                    f"{version.returncode}: {(version.stdout + version.stderr)[-500:]}")
    return executable


def open_pages(executable: str, tmp_path: Path,
               pages: Sequence[Path]) -> list[tuple[dict[str, Any], list[str]]]:
    """Open each page in one headless browser; return (state, problems) for each, in order.

    A control page (a console error and a broken image) is opened first, in the same tab, to
    prove the harness sees what it is looking for. `tmp_path` holds the control page, the
    browser's profile and its log."""
    control = tmp_path / "control.html"  # proves the harness sees what it is looking for
    control.write_text('<!DOCTYPE html><html><body><img src="data:image/png;base64,AAAA">'
                       '<script>console.error("probe error")</script>p</body></html>')
    (tmp_path / "profile").mkdir()
    browser = Chromium(executable, tmp_path / "profile", tmp_path / "browser.log")
    seen = []
    try:
        target = browser.send("Target.createTarget", {"url": "about:blank"})["targetId"]
        session = browser.send("Target.attachToTarget",
                               {"targetId": target, "flatten": True})["sessionId"]
        for method in ("Page.enable", "Runtime.enable", "Log.enable"):
            browser.send(method, session=session)

        state, problems = visit(browser, session, control.as_uri())
        assert any("probe error" in p for p in problems), problems
        assert state["images"][0]["width"] == 0, state  # the broken image is seen as broken

        for page in pages:
            seen.append(visit(browser, session, page.as_uri()))
    finally:
        browser.close()
    return seen


def open_report(executable: str, tmp_path: Path, report: Path, *, images: int, min_width: int,
                min_height: int) -> dict[str, Any]:
    """Open one self-contained report page (see `open_pages`) and check it: no console error or
    warning, no <script>, `images` images, each loaded from a data: URI and larger than
    `min_width` x `min_height` pixels. Returns the page's state (its text in state["text"])."""
    [(state, problems)] = open_pages(executable, tmp_path, [report])
    assert problems == [], "console errors or warnings:\n" + "\n".join(problems)
    assert state["scripts"] == 0, "the page has a <script> element"
    assert len(state["images"]) == images, state["images"]
    for image in state["images"]:
        assert image["complete"] and image["width"] > min_width, image
        assert image["height"] > min_height, image
        assert image["src"] == "data:image/png;base64,", image
    return dict(state)
