"""A full-page screenshot of an HTML report in headless Chromium, with what a reader would
check by eye: the page's height, its figures (loaded, and where they are), its in-page links
(each one clicked: does the view land on its target?) and the console. Built on the DevTools
harness of tests/_browser.py. Importable from the tests as `report_screenshot`
(tests/report/conftest.py registers it).

    shot = capture(executable, tmp_path, page, width=1280)
    shot["png"]        # the PNG bytes of the whole page (captureBeyondViewport)
    shot["height"]     # the page's height in CSS pixels
    shot["images"]     # [{"complete", "width", "height", "top", "left", "shown_width", ...}]
    shot["links"]      # [{"href", "target": bool, "landed": bool, "top": float}]
    shot["problems"]   # console errors and warnings
"""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import weightinit_test_browser as browser

VIEWPORT_HEIGHT = 800

_LAYOUT = """JSON.stringify({
  height: Math.ceil(document.documentElement.scrollHeight),
  width: Math.ceil(document.documentElement.scrollWidth),
  images: Array.from(document.images, i => {
    const r = i.getBoundingClientRect();
    return {complete: i.complete, width: i.naturalWidth, height: i.naturalHeight,
            top: r.top + window.scrollY, left: r.left + window.scrollX,
            shown_width: r.width, shown_height: r.height, alt: i.alt};
  }),
  links: Array.from(document.querySelectorAll('a[href^="#"]'), a => a.getAttribute('href')),
})"""

# Click the i-th in-page link from the top of the page; where is its target afterwards?
_CLICK = """(() => {
  window.scrollTo(0, 0);
  const link = document.querySelectorAll('a[href^="#"]')[%d];
  const target = document.getElementById(link.getAttribute('href').slice(1));
  if (!target) return JSON.stringify({target: false});
  link.click();
  const top = target.getBoundingClientRect().top;
  return JSON.stringify({target: true, top: top, scrolled: window.scrollY,
                         bottom: window.scrollY + window.innerHeight >=
                                 document.documentElement.scrollHeight - 2});
})()"""


def _evaluate(chromium: browser.Chromium, session: str, expression: str) -> Any:
    result = chromium.send("Runtime.evaluate", {"expression": expression,
                                                 "returnByValue": True}, session)
    return json.loads(result["result"]["value"])


def capture(executable: str, tmp_path: Path, report: Path, *, width: int = 1280
            ) -> dict[str, Any]:
    """Open `report` in a `width`-pixel-wide viewport and take a screenshot of the whole page.

    A control page with a console error and a broken image is opened first in the same tab,
    as `open_pages` does, so that a page reported clean really is."""
    control = tmp_path / "control.html"
    control.write_text('<!DOCTYPE html><html><body><img src="data:image/png;base64,AAAA">'
                       '<script>console.error("probe error")</script>p</body></html>')
    (tmp_path / "profile").mkdir()
    chromium = browser.Chromium(executable, tmp_path / "profile", tmp_path / "browser.log")
    try:
        target = chromium.send("Target.createTarget", {"url": "about:blank"})["targetId"]
        session = chromium.send("Target.attachToTarget",
                                {"targetId": target, "flatten": True})["sessionId"]
        for method in ("Page.enable", "Runtime.enable", "Log.enable"):
            chromium.send(method, session=session)
        chromium.send("Emulation.setDeviceMetricsOverride",
                      {"width": width, "height": VIEWPORT_HEIGHT, "deviceScaleFactor": 1,
                       "mobile": False}, session)
        state, problems = browser.visit(chromium, session, control.as_uri())
        assert any("probe error" in p for p in problems), problems
        assert state["images"][0]["width"] == 0, state

        state, problems = browser.visit(chromium, session, report.as_uri())
        layout = _evaluate(chromium, session, _LAYOUT)
        links = []
        for index, href in enumerate(layout["links"]):
            where = _evaluate(chromium, session, _CLICK % index)
            # Landed: the target is at the top of the view, or the view is at the end of the
            # page with the target inside it (a section too near the end to reach the top).
            landed = where["target"] and (
                abs(where["top"]) <= 16 or (where["bottom"]
                                            and 0 <= where["top"] < VIEWPORT_HEIGHT))
            links.append({"href": href, "target": where["target"], "landed": bool(landed),
                          "top": where.get("top")})
        chromium.send("Runtime.evaluate", {"expression": "window.scrollTo(0, 0)"}, session)
        shot = chromium.send("Page.captureScreenshot", {
            "format": "png", "captureBeyondViewport": True,
            "clip": {"x": 0, "y": 0, "width": width, "height": layout["height"], "scale": 1}},
            session)
    finally:
        chromium.close()
    return {"png": base64.b64decode(shot["data"]), "height": layout["height"],
            "width": layout["width"], "images": layout["images"], "links": links,
            "problems": problems, "text": state["text"], "scripts": state["scripts"]}
