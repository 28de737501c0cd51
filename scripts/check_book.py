#!/usr/bin/env python3
"""Open every page of the built book in headless Chromium; fail on a console error or a broken image.

Usage: python scripts/check_book.py [--html book/_build/html] [--screenshots book/_build/screenshots]

The pages are served over HTTP from a local server (as a host would serve them), each page is loaded, its
images are forced to load, and then:

- every browser console entry at level SEVERE (a JavaScript error, a resource that failed to load) is an error;
- every <img> that did not load (``naturalWidth == 0``) is an error;
- a full-page screenshot is saved as ``<screenshots>/<page>.png``.

Exit status 0 when every page is clean, 1 otherwise (each problem printed on one line), 2 when the check
cannot run (no built book, no Chromium). Needs the Debian packages ``chromium`` and ``chromium-driver`` and the
Python package ``selenium``.
"""

from __future__ import annotations

import argparse
import base64
import functools
import http.server
import shutil
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CHROME_FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                "--disable-dev-shm-usage", "--window-size=1280,900", "--hide-scrollbars")
SKIP_DIRS = {"_static", "_sources", "_images", "_sphinx_design_static", "_panels_static", ".doctrees"}
BROKEN_IMAGES_JS = """
return Array.from(document.images)
  .filter(img => !(img.complete && img.naturalWidth > 0))
  .map(img => (img.currentSrc || img.src || '').slice(0, 120) + ' [alt=' + (img.alt || '') + ']');
"""
EAGER_IMAGES_JS = """
const done = arguments[arguments.length - 1];
const imgs = Array.from(document.images);
imgs.forEach(img => { img.loading = 'eager'; });
Promise.all(imgs.map(img => img.complete ? Promise.resolve() :
  new Promise(r => { img.addEventListener('load', r); img.addEventListener('error', r); setTimeout(r, 5000); })))
  .then(() => done(imgs.length));
"""


def pages(html: Path) -> list[Path]:
    """Every HTML page of the build, in a stable order (the book's pages, then genindex, search, ...)."""
    found = [p for p in html.rglob("*.html") if not SKIP_DIRS.intersection(p.relative_to(html).parts)]
    return sorted(found, key=lambda p: (p.name in ("genindex.html", "search.html", "index.html"), str(p)))


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):  # keep the output to the check's findings
        pass


def serve(directory: Path) -> tuple[http.server.ThreadingHTTPServer, str]:
    handler = functools.partial(_QuietHandler, directory=str(directory))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}"


def browser(chromium: str | None, chromedriver: str | None):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    for flag in CHROME_FLAGS:
        options.add_argument(flag)
    options.binary_location = chromium
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    return webdriver.Chrome(service=Service(executable_path=chromedriver), options=options)


def screenshot(driver, path: Path) -> None:
    """A full-page PNG (the whole scroll height, not only the window)."""
    metrics = driver.execute_cdp_cmd("Page.getLayoutMetrics", {})
    size = metrics.get("cssContentSize") or metrics["contentSize"]
    width, height = int(size["width"]), min(int(size["height"]), 30000)
    shot = driver.execute_cdp_cmd("Page.captureScreenshot", {
        "format": "png", "captureBeyondViewport": True,
        "clip": {"x": 0, "y": 0, "width": width, "height": height, "scale": 1}})
    path.write_bytes(base64.b64decode(shot["data"]))


def check_page(driver, url: str, shot: Path, settle: float) -> list[str]:
    driver.get(url)
    for _ in range(100):
        if driver.execute_script("return document.readyState") == "complete":
            break
        time.sleep(0.1)
    driver.set_script_timeout(30)
    driver.execute_async_script(EAGER_IMAGES_JS)
    time.sleep(settle)  # let MathJax and the theme's scripts finish
    problems = [f"broken image: {src}" for src in driver.execute_script(BROKEN_IMAGES_JS)]
    for entry in driver.get_log("browser"):
        if entry.get("level") == "SEVERE":
            problems.append(f"console error: {entry.get('message', '').strip()}")
    shot.parent.mkdir(parents=True, exist_ok=True)
    screenshot(driver, shot)
    return problems


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--html", type=Path, default=ROOT / "book" / "_build" / "html", help="the built book")
    parser.add_argument("--screenshots", type=Path, default=ROOT / "book" / "_build" / "screenshots",
                        help="where to save one PNG per page")
    parser.add_argument("--chromium", default=shutil.which("chromium") or shutil.which("chromium-browser"))
    parser.add_argument("--chromedriver", default=shutil.which("chromedriver"))
    parser.add_argument("--settle", type=float, default=1.5, help="seconds to wait after each page loads")
    args = parser.parse_args(argv)

    if not (args.html / "intro.html").is_file():
        print(f"no built book in {args.html}: run `jupyter-book build book --all -W -n --keep-going` first")
        return 2
    if not args.chromium or not args.chromedriver:
        print("Chromium not found: install the Debian packages chromium and chromium-driver "
              "(apt-get install -y chromium chromium-driver)")
        return 2
    try:
        import selenium  # noqa: F401
    except ImportError:
        print("the Python package selenium is missing: pip install selenium")
        return 2

    server, base = serve(args.html)
    driver = browser(args.chromium, args.chromedriver)
    failures = 0
    try:
        for page in pages(args.html):
            rel = page.relative_to(args.html).as_posix()
            shot = args.screenshots / (rel.removesuffix(".html").replace("/", "__") + ".png")
            problems = check_page(driver, f"{base}/{rel}", shot, args.settle)
            failures += bool(problems)
            print(f"{'FAIL' if problems else 'ok  '} {rel} -> {shot.relative_to(ROOT) if shot.is_relative_to(ROOT) else shot}")
            for problem in problems:
                print(f"     {problem}")
    finally:
        driver.quit()
        server.shutdown()
    print(f"screenshots in {args.screenshots}")
    print(f"pages: {len(pages(args.html)) - failures} passed, {failures} failed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
