"""The built book as a reader meets it, in a real browser (Chromium, driven by Playwright).

`_build/html` is served on 127.0.0.1 and every page in `_toc.yml` is opened at 1280 px (a
laptop) and 390 px (a phone). Checked on each page: MathJax renders every formula with no error
and leaves no raw TeX; every image loads; every internal link and anchor exists; no cell shows
hidden tests or nbgrader markers; no display equation and no figure is wider than the text
column; no placeholder is left; no request leaves localhost; the console has no error. Also: the
search finds "layernorm" and "层归一化" with snippets free of TeX, the launch buttons' URLs derive
from `repository` in `_config.yml`, and each page's notebook download is the student edition.

Run it after `make book` (`make test-browser`). It needs Chromium: Debian and Ubuntu
`apt-get install chromium fonts-noto-cjk`, or CHROMIUM=/path/to/chrome. In CI a missing
Chromium fails the test; elsewhere the test is skipped with a message saying how to get it.
Set BOOK_SCREENSHOTS=/some/dir to keep a full-page screenshot of every page at both widths.
"""

from __future__ import annotations

import functools
import http.server
import json
import os
import re
import shutil
import sys
import threading
import urllib.parse
from pathlib import Path

import pytest
import yaml
from notebook_utils import ROOT

sys.path.insert(0, str(ROOT / "_ext"))
from course_book import exercises  # noqa: E402

pytestmark = pytest.mark.browser

HTML = ROOT / "_build" / "html"
WIDTHS = (1280, 390)
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-default-apps",
]
INSTALL_HINT = (
    "the browser test needs Chromium. Debian/Ubuntu: sudo apt-get install chromium "
    "fonts-noto-cjk; elsewhere set CHROMIUM=/path/to/chromium-or-chrome"
)
# Lessons whose display equations or figures are still being reworked by their authors: an
# overflow or a shrunk figure there is reported in full but expected for now.
OVERFLOW_PENDING: set[str] = set()
FIGURES_PENDING: set[str] = set()
PLACEHOLDER = re.compile(r"example\.edu|<(?:[a-z]+ ){1,6}[a-z]+>|<[A-Z][A-Z_]{2,}>")
RAW_TEX = re.compile(r"\\\(|\\\)|\\\[|\\\]|\$\$|\\(?:frac|mathbf|sqrt|sum|hat|begin)\b")
# The smallest label a figure may show at its displayed size: 10 pt at 100 px/in is 13.9 px
# at 1:1; below 10 px (a figure shrunk below 72 %) labels are hard to read.
MIN_LABEL_PX = 10.0
LABEL_PX_AT_1X = 10 / 72 * 100


def toc_pages() -> list[str]:
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    pages = [toc["root"]]
    for part in toc["parts"]:
        pages += [ch["file"] for ch in part["chapters"]]
    return pages


def repository() -> tuple[str, str]:
    config = yaml.safe_load((ROOT / "_config.yml").read_text())
    return config["repository"]["url"].rstrip("/"), config["repository"].get("branch", "main")


def chromium_path() -> str | None:
    for candidate in (os.environ.get("CHROMIUM"), "/usr/bin/chromium", "/usr/bin/chromium-browser"):
        if candidate and Path(candidate).exists():
            return candidate
    return shutil.which("chromium") or shutil.which("google-chrome")


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args) -> None:
        pass


@pytest.fixture(scope="module")
def server():
    if not (HTML / "index.html").exists():
        pytest.fail("_build/html is missing: build the book first (make book)")
    handler = functools.partial(_Quiet, directory=str(HTML))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    path = chromium_path()
    if path is None:
        if os.environ.get("CI"):
            pytest.fail(f"Chromium not found: {INSTALL_HINT}")
        pytest.skip(f"SKIPPED, NOT RUN: Chromium not found: {INSTALL_HINT}")
    from playwright.sync_api import sync_playwright

    profile = tmp_path_factory.mktemp("chromium-profile")
    with sync_playwright() as p:
        context = p.chromium.launch_persistent_context(
            str(profile), executable_path=path, headless=True, args=CHROMIUM_ARGS
        )
        yield context
        context.close()


# Everything measured on one page at one width, in the page itself.
_MEASURE = r"""
async () => {
  const mj = window.MathJax && MathJax.startup ? MathJax : null;
  if (mj) await mj.startup.promise;
  const article = document.querySelector("article.bd-article") || document.querySelector("main");
  const col = article.getBoundingClientRect();
  const style = getComputedStyle(article);
  const right = col.right - parseFloat(style.paddingRight);
  const out = {column: Math.round(right - col.left - parseFloat(style.paddingLeft))};
  out.mathErrors = [...document.querySelectorAll("mjx-merror, [data-mjx-error]")]
      .map(e => e.getAttribute("data-mjx-error") || e.textContent).slice(0, 10);
  out.untypeset = [...article.querySelectorAll(".math")]
      .filter(e => !e.querySelector("mjx-container") && !e.closest("mjx-container"))
      .map(e => e.textContent.slice(0, 80));
  const walker = document.createTreeWalker(article, NodeFilter.SHOW_TEXT);
  out.rawTex = [];
  while (walker.nextNode()) {
    const n = walker.currentNode;
    if (n.parentElement.closest("pre, code, script, style, mjx-container, .highlight")) continue;
    out.rawTex.push(n.textContent);
  }
  out.equations = [];
  for (const item of (mj ? mj.startup.document.math : [])) {
    if (!item.display || !item.typesetRoot) continue;
    const root = item.typesetRoot;
    const inner = root.querySelector("mjx-math") || root;
    const width = inner.getBoundingClientRect().width;
    const box = root.parentElement.getBoundingClientRect();
    const avail = Math.min(box.width, right - box.left);
    out.equations.push({tex: item.math.trim().slice(0, 70), width: Math.round(width),
                        avail: Math.round(avail)});
  }
  out.images = [...article.querySelectorAll("img")].map(img => {
    const r = img.getBoundingClientRect();
    const fig = img.closest("figure");
    const cap = fig && fig.querySelector(".caption-number");
    return {src: img.getAttribute("src").slice(0, 80), complete: img.complete,
            natural: img.naturalWidth, naturalH: img.naturalHeight,
            declared: parseFloat(img.style.width) || parseFloat(img.getAttribute("width")) || null,
            shown: Math.round(r.width), right: r.right, fig: cap ? cap.textContent.trim() : null};
  });
  out.imgRight = right;
  out.code = [...article.querySelectorAll("div.cell pre, div.highlight pre")]
      .map(p => p.textContent);
  out.solutionToggles = [...article.querySelectorAll("summary")]
      .map(s => s.textContent.trim().split("\n")[0].trim())
      .filter(t => /^Solution to exercise/.test(t));
  out.links = [...document.querySelectorAll("a[href]")].map(a => a.getAttribute("href"));
  out.text = document.body.innerText;
  return out;
}
"""


def _visit(browser, server: str, page_name: str, width: int) -> dict:
    page = browser.new_page()
    page.set_viewport_size({"width": width, "height": 900})
    external, failed, console = [], [], []

    def route(r):
        host = urllib.parse.urlsplit(r.request.url).hostname
        if r.request.url.startswith(("data:", "blob:", "about:")) or host in {"127.0.0.1"}:
            r.continue_()
        else:
            external.append(r.request.url)
            r.abort()

    page.route("**/*", route)
    page.on("console", lambda m: console.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: console.append(f"uncaught: {e}"))
    page.on("requestfailed", lambda r: failed.append(f"{r.url} {r.failure}"))
    page.on("response", lambda r: r.status >= 400 and failed.append(f"{r.url} HTTP {r.status}"))
    page.goto(f"{server}/{page_name}.html", wait_until="load")
    data = page.evaluate(_MEASURE)
    shots = os.environ.get("BOOK_SCREENSHOTS")
    if shots:
        Path(shots).mkdir(parents=True, exist_ok=True)
        name = page_name.replace("/", "_")
        page.screenshot(path=f"{shots}/{name}_{width}.png", full_page=True)
    page.close()
    failed = [f for f in failed if not any(f.startswith(e) for e in external)]
    data.update(external=external, failed=failed, console=[c for c in console
                                                          if "ERR_FAILED" not in c])
    return data


@pytest.fixture(scope="module")
def visits(browser, server):
    """(page, width) -> what the page showed; every page is opened once per width."""
    report = {(p, w): _visit(browser, server, p, w) for p in toc_pages() for w in WIDTHS}
    out = ROOT / "_build" / "browser-report.json"
    bulky = ("text", "rawTex", "code", "links")
    summary = {f"{p}@{w}": {k: v for k, v in d.items() if k not in bulky}
               for (p, w), d in report.items()}
    out.write_text(json.dumps(summary, indent=1, ensure_ascii=False))
    return report


CASES = [pytest.param(p, w, id=f"{p.split('/')[-1]}-{w}") for p in toc_pages() for w in WIDTHS]
PAGES = [pytest.param(p, id=p.split("/")[-1]) for p in toc_pages()]
LESSONS = [pytest.param(p, id=p.split("/")[-1]) for p in toc_pages() if p.startswith("notebooks/")]


@pytest.mark.parametrize("page,width", CASES)
def test_math_renders_without_errors_or_raw_tex(visits, page, width):
    d = visits[(page, width)]
    assert not d["mathErrors"], f"MathJax errors: {d['mathErrors']}"
    assert not d["untypeset"], f"formulas MathJax did not typeset: {d['untypeset']}"
    raw = [t.strip()[:80] for t in d["rawTex"] if RAW_TEX.search(t)]
    assert not raw, f"raw TeX in the text: {raw}"


@pytest.mark.parametrize("page,width", CASES)
def test_no_console_error_no_failed_or_external_request(visits, page, width):
    d = visits[(page, width)]
    assert not d["external"], f"requests that leave localhost: {d['external']}"
    assert not d["failed"], f"failed requests: {d['failed']}"
    assert not d["console"], f"console errors: {d['console']}"


@pytest.mark.parametrize("page,width", CASES)
def test_images_load(visits, page, width):
    broken = [i["src"] for i in visits[(page, width)]["images"]
              if not i["complete"] or not i["natural"]]
    assert not broken, f"images that did not load: {broken}"


def _target_ids(path: Path) -> set[str]:
    return set(re.findall(r'\bid="([^"]+)"', path.read_text(encoding="utf-8")))


@pytest.mark.parametrize("page", PAGES)
def test_internal_links_and_anchors_exist(visits, page):
    base = HTML / page
    broken = []
    for href in sorted(set(visits[(page, WIDTHS[0])]["links"])):
        parts = urllib.parse.urlsplit(href)
        if parts.scheme or parts.netloc or href.startswith(("mailto:", "javascript:")):
            continue
        target = (base.parent / urllib.parse.unquote(parts.path)).resolve() if parts.path else (
            HTML / f"{page}.html")
        if target.is_dir():
            target = target / "index.html"
        missing_anchor = (
            target.exists() and parts.fragment and target.suffix == ".html"
            and parts.fragment not in _target_ids(target)
        )
        if not target.exists() or missing_anchor:
            broken.append(href)
    assert not broken, f"broken internal links: {broken}"


@pytest.mark.parametrize("page", PAGES)
def test_no_hidden_tests_markers_or_placeholders(visits, page):
    d = visits[(page, WIDTHS[0])]
    leaked = [line for code in d["code"] for line in exercises.leaks(code)]
    assert not leaked, f"nbgrader markers or hidden tests on the page: {leaked}"
    found = PLACEHOLDER.findall(d["text"])
    assert not found, f"placeholders on the page: {found}"


@pytest.mark.parametrize("page", LESSONS)
def test_exercises_show_starter_and_solution_toggles(visits, page):
    nb = json.loads((ROOT / f"{page}.ipynb").read_text(encoding="utf-8"))
    solutions = [c for c in nb["cells"] if exercises.is_solution(c) and c["cell_type"] == "code"]
    d = visits[(page, WIDTHS[0])]
    starters = sum("raise NotImplementedError()" in code for code in d["code"])
    assert starters >= len(solutions), f"{starters} starting cells for {len(solutions)} exercises"
    numbers = sorted(set(exercises.exercise_numbers(nb["cells"]).values()))
    expected = [f"Solution to exercise {n}" for n in numbers]
    assert sorted(set(d["solutionToggles"])) == expected


def _overflows(d: dict) -> list[str]:
    found = [f"display equation {e['width']} px wide in a {e['avail']} px column: {e['tex']!r}"
             for e in d["equations"] if e["width"] > e["avail"] + 1]
    found += [f"image {i['fig'] or i['src']} reaches {i['right']:.0f} px, column ends at "
              f"{d['imgRight']:.0f} px" for i in d["images"] if i["right"] > d["imgRight"] + 1]
    return found


@pytest.mark.parametrize("page,width", CASES)
def test_nothing_overflows_the_column(visits, page, width, request):
    found = _overflows(visits[(page, width)])
    if found and page in OVERFLOW_PENDING:
        request.applymarker(pytest.mark.xfail(reason="lesson being reworked", strict=False))
    assert not found, f"{page} at {width} px:\n  " + "\n  ".join(found)


def _figures(d: dict):
    for i in d["images"]:
        if i["fig"]:
            declared = i["declared"] or i["natural"]
            yield i, declared, LABEL_PX_AT_1X * i["shown"] / declared


@pytest.mark.parametrize("page", LESSONS)
def test_figures_are_exported_at_2x(visits, page):
    low = [f"{i['fig']}: {i['natural']} px for {declared:.0f} px"
           for i, declared, _ in _figures(visits[(page, 1280)]) if i["natural"] < 1.9 * declared]
    assert not low, f"figures not exported at 2x: {low}"


@pytest.mark.parametrize("page", LESSONS)
def test_figure_labels_are_readable_at_1280px(visits, page, request):
    small = [f"{i['fig']}: {declared:.0f} px wide, shown at {i['shown']} px, labels ≈ {px:.1f} px"
             for i, declared, px in _figures(visits[(page, 1280)]) if px < MIN_LABEL_PX]
    if small and page in FIGURES_PENDING:
        request.applymarker(pytest.mark.xfail(reason="figures being reworked", strict=False))
    assert not small, "figures shrunk until their labels are hard to read:\n  " + "\n  ".join(small)


def _search(browser, server: str, query: str) -> tuple[int, list[str]]:
    page = browser.new_page()
    page.set_viewport_size({"width": 1280, "height": 900})
    page.route("**/*", lambda r: r.continue_() if "127.0.0.1" in r.request.url else r.abort())
    page.goto(f"{server}/search.html?q={urllib.parse.quote(query)}")
    page.wait_for_function(
        "document.querySelector('#search-results p.search-summary') && "
        "/found|did not match/.test(document.querySelector('#search-results').innerText) && "
        "document.querySelectorAll('#search-results li p.context').length >= "
        "Math.min(3, document.querySelectorAll('#search-results li').length)",
        timeout=60_000,
    )
    hits = page.eval_on_selector_all("#search-results li", "els => els.length")
    snippets = page.eval_on_selector_all(
        "#search-results li p.context", "els => els.map(e => e.textContent)"
    )
    page.close()
    return hits, snippets


@pytest.mark.parametrize("query", ["layernorm", "层归一化"])
def test_search_finds_the_terms_without_tex_in_snippets(browser, server, query):
    hits, snippets = _search(browser, server, query)
    assert hits >= 1, f"search for {query!r} found nothing"
    raw = [s[:100] for s in snippets if RAW_TEX.search(s)]
    assert not raw, f"search snippets with raw TeX: {raw}"


@pytest.mark.parametrize("name", LESSONS)
def test_launch_buttons_and_download_derive_from_the_repository(visits, server, name):
    import urllib.request

    url, branch = repository()
    org_repo = urllib.parse.urlsplit(url).path.strip("/")
    links = set(visits[(name, WIDTHS[0])]["links"])
    colab = f"https://colab.research.google.com/github/{org_repo}/blob/{branch}/{name}.ipynb"
    assert colab in links, f"no Colab link {colab}"
    binder = [h for h in links if h.startswith("https://mybinder.org/")]
    assert binder and all(h.startswith(f"https://mybinder.org/v2/gh/{org_repo}/{branch}?")
                          and urllib.parse.quote(f"{name}.ipynb", safe="") in urllib.parse.quote(
                              urllib.parse.unquote(h), safe="") for h in binder), binder
    assert not [h for h in links if "hub/user-redirect" in h], "a JupyterHub button without a hub"
    assert url in links, "no repository button"
    text = urllib.request.urlopen(f"{server}/_sources/{name}.ipynb").read().decode()
    assert not exercises.leaks(text), "the download carries solutions or hidden tests"
    assert f"git+{url}@{branch}" in text, "the download lacks the Colab set-up cell"
