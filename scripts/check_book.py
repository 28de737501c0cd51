#!/usr/bin/env python3
"""Open every page of the built book in headless Chromium; fail on a console error, a broken image, an image or
a table wider than the page's column, or a dead link within the site.

Usage: python scripts/check_book.py [--html book/_build/html] [--screenshots book/_build/screenshots]
       python scripts/check_book.py --links-only      # only the links, without a browser

The pages are served over HTTP from a local server (as a host would serve them), each page is loaded, its
images are forced to load, and then:

- every browser console entry at level SEVERE (a JavaScript error, a resource that failed to load) is an error;
- every <img> that did not load (``naturalWidth == 0``) is an error;
- every image of the page's text whose own width (``naturalWidth``) exceeds the column that holds it by more
  than a tenth, and every table wider (``scrollWidth``) than that column, is an error: the browser would shrink
  the image and its text (figures are drawn at most ``report.style.PAGE_WIDTH`` wide for this) or make the
  table scroll (a cell with the ``full-width`` tag is its own, wider column);
- every link within the site (``<a href>``, ``<link href>``, ``<script src>``, ``<img src>`` that is not an
  address on another host) must name a file of the build, and its ``#fragment``, if any, an element of that
  page (an ``id`` or a ``name``); an anchor with no fragment target is a dead link too;
- a full-page screenshot is saved as ``<screenshots>/<page>.png``.

Exit status 0 when every page is clean, 1 otherwise (each problem printed on one line), 2 when the check
cannot run (no built book, no Chromium). Needs the Debian packages ``chromium`` and ``chromium-driver`` and the
Python package ``selenium`` (not for ``--links-only``).
"""

from __future__ import annotations

import argparse
import base64
import functools
import html.parser
import http.server
import posixpath
import shutil
import sys
import threading
import time
from pathlib import Path
from urllib.parse import unquote, urlsplit

ROOT = Path(__file__).resolve().parent.parent
CHROME_FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                "--disable-dev-shm-usage", "--window-size=1280,900", "--hide-scrollbars")
SKIP_DIRS = {"_static", "_sources", "_images", "_sphinx_design_static", "_panels_static", ".doctrees"}
BROKEN_IMAGES_JS = """
return Array.from(document.images)
  .filter(img => !(img.complete && img.naturalWidth > 0))
  .map(img => (img.currentSrc || img.src || '').slice(0, 120) + ' [alt=' + (img.alt || '') + ']');
"""
# The content column: the article of sphinx-book-theme, else Sphinx's body; a full-width cell is its own column.
TOO_WIDE_JS = """
const SHRINK = 1.1;  // an image shown at 91% of its size or more is still read at its size
const article = document.querySelector('article.bd-article, div.body, main') || document.body;
const inner = el => { const s = getComputedStyle(el);
  return el.clientWidth - parseFloat(s.paddingLeft) - parseFloat(s.paddingRight); };
const room = el => Math.round(inner(el.closest('.cell.tag_full-width, .tag_full-width') || article));
const name = el => (el.currentSrc || el.src || el.id || el.className || el.tagName).toString().slice(-80);
const out = [];
article.querySelectorAll('img').forEach(img => {
  if (img.naturalWidth > SHRINK * room(img))
    out.push(`image wider than the column: ${name(img)} (${img.naturalWidth} px in ${room(img)} px)`);
});
article.querySelectorAll('table').forEach(t => {
  if (t.scrollWidth > room(t) + 2)
    out.push(`table wider than the column: ${t.querySelector('th, td')?.textContent.trim().slice(0, 40) || name(t)}`
             + ` (${t.scrollWidth} px in ${room(t)} px)`);
});
return out;
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


class _PageLinks(html.parser.HTMLParser):
    """The links of a page (tag, attribute value) and the ids and names its elements carry."""

    LINKS = {"a": "href", "link": "href", "area": "href", "script": "src", "img": "src", "iframe": "src"}

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.links: list[tuple[str, str]] = []
        self.anchors: set[str] = set()

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        for key in ("id", "name"):
            if attrs.get(key):
                self.anchors.add(attrs[key])
        value = attrs.get(self.LINKS.get(tag, ""))
        if value:
            self.links.append((tag, value))


@functools.lru_cache(maxsize=None)
def _parse(path: Path) -> _PageLinks:
    parser = _PageLinks()
    parser.feed(path.read_text(encoding="utf-8", errors="replace"))
    return parser


def dead_links(html: Path, page: Path) -> list[str]:
    """The links of ``page`` that point within the site to a file the build does not have, or to a
    ``#fragment`` that the target page does not carry. Links to other hosts (and mailto:, data:, javascript:)
    are not checked: the site must work offline, and they are not the site's."""
    problems = []
    root = html.resolve()
    for tag, link in _parse(page).links:
        parts = urlsplit(link)
        if parts.scheme or parts.netloc or link.startswith(("//", "mailto:", "data:", "javascript:")):
            continue
        if parts.path:
            relative = parts.path if not parts.path.startswith("/") else posixpath.relpath(parts.path, "/")
            base = page.parent if not parts.path.startswith("/") else root
            target = (base / unquote(relative)).resolve()
            if target.is_dir():
                target = target / "index.html"
        else:
            target = page.resolve()
        if not target.is_relative_to(root) or not target.is_file():
            problems.append(f"dead link: <{tag}> {link} (no file {target.relative_to(root) if target.is_relative_to(root) else target})")
            continue
        fragment = unquote(parts.fragment)
        if fragment and target.suffix == ".html" and fragment not in _parse(target).anchors:
            problems.append(f"dead link: <{tag}> {link} (no element #{fragment} in {target.relative_to(root)})")
    return problems


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
    problems += driver.execute_script(TOO_WIDE_JS)
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
    parser.add_argument("--links-only", action="store_true", help="check only the links within the site (no browser)")
    args = parser.parse_args(argv)

    if not (args.html / "intro.html").is_file():
        print(f"no built book in {args.html}: run `jupyter-book build book --all -W -n --keep-going` first")
        return 2
    if args.links_only:
        failures = 0
        for page in pages(args.html):
            problems = dead_links(args.html, page)
            failures += bool(problems)
            print(f"{'FAIL' if problems else 'ok  '} {page.relative_to(args.html).as_posix()}")
            for problem in problems:
                print(f"     {problem}")
        print(f"pages: {len(pages(args.html)) - failures} passed, {failures} failed (links only)")
        return 1 if failures else 0
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
            problems = check_page(driver, f"{base}/{rel}", shot, args.settle) + dead_links(args.html, page)
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
