"""Harness self-test: the system Chromium starts headless under Playwright,
renders a local page, takes a click and a screenshot, and axe-core loads.
Needs no scimsync stack, so it tells a broken browser setup from a broken page."""

import http.server
import threading

from conftest import ARTIFACTS, AXE_JS

PAGE = b"""<!doctype html><html lang="en"><head><meta charset="utf-8">
<title>harness</title></head><body><main><h1>Harness</h1>
<button id="b" onclick="this.textContent='clicked'">Click me</button></main></body></html>"""


class _Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):  # noqa: N802 (http.server's name)
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(PAGE)))
        self.end_headers()
        self.wfile.write(PAGE)

    def log_message(self, *args):
        pass


def test_chromium_renders_clicks_and_screenshots_a_local_page(browser):
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        page = browser.new_page()
        page.goto(f"http://127.0.0.1:{server.server_address[1]}/")
        page.get_by_role("button", name="Click me").click()
        assert page.locator("#b").inner_text() == "clicked"
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        shot = ARTIFACTS / "harness.png"
        page.screenshot(path=str(shot))
        assert shot.stat().st_size > 1000
        page.add_script_tag(path=str(AXE_JS))
        result = page.evaluate("axe.run()")
        assert result["violations"] == [], result["violations"]
        page.close()
    finally:
        server.shutdown()


def test_the_readmes_screenshots_are_the_ones_the_walk_takes():
    """The README shows what `make screenshots` (the whole-guide walk)
    produces: the same files, each present, none stale or hand-made."""
    import re

    from conftest import ROOT

    readme = (ROOT / "README.md").read_text()
    walk = (ROOT / "tests" / "browser" / "test_walk.py").read_text()
    shown = set(re.findall(r"docs/screenshots/([\w.-]+\.png)", readme))
    taken = set(re.findall(r'readme=\("[^"]+", "([\w.-]+\.png)"\)', walk))
    assert shown, "the README shows no screenshots"
    assert shown == taken, f"README shows {sorted(shown)}, the walk takes {sorted(taken)}"
    on_disk = {p.name for p in (ROOT / "docs" / "screenshots").glob("*.png")}
    assert on_disk == taken, f"docs/screenshots has {sorted(on_disk)}; run make screenshots"
