"""The built docs site in headless Chromium, opened from file:// with no server
and no network: every page loads with no console error, every link lands, the
search box finds a statement by its id and by a word of its text, and the index
and one module page are photographed into out/docs-shots/ for review."""
from __future__ import annotations

import json
import re
import shutil
from collections import Counter
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest
from docutils.nodes import make_id

from tests.docs_site.conftest import ROOT

webdriver = pytest.importorskip("selenium.webdriver")
from selenium.webdriver.chrome.service import Service                # noqa: E402
from selenium.webdriver.common.by import By                          # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait              # noqa: E402

pytestmark = pytest.mark.browser

CHROMIUM = shutil.which("chromium")
DRIVER = shutil.which("chromedriver")
SHOTS = ROOT / "out" / "docs-shots"
STATEMENT = "swiotlb.dev.no-access-outside"


@pytest.fixture(scope="module")
def browser():
    if not CHROMIUM or not DRIVER:
        pytest.skip("Debian's chromium and chromium-driver are not installed (./dev.sh test installs them)")
    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--window-size=1400,1000", "--no-first-run", "--disable-extensions",
                "--disable-background-networking", "--disable-component-update"):
        opts.add_argument(arg)
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(executable_path=DRIVER), options=opts)
    try:
        yield driver
    finally:
        driver.quit()


def _console_errors(driver) -> list[str]:
    return [e["message"] for e in driver.get_log("browser") if e["level"] == "SEVERE"]


def _ids_of(driver) -> set[str]:
    return set(driver.execute_script(
        "return Array.from(document.querySelectorAll('[id]'), e => e.id);"))


def test_every_page_loads_clean_and_every_link_lands(browser, built_site):
    pages = sorted(built_site.glob("*.html"))
    ids: dict[Path, set[str]] = {}
    links: list[tuple[str, str]] = []
    for page in pages:
        browser.get(page.as_uri())
        WebDriverWait(browser, 20).until(
            lambda d: d.execute_script("return document.readyState") == "complete")
        assert _console_errors(browser) == [], page.name
        assert browser.find_element(By.CSS_SELECTOR, "nav.sidebar").is_displayed()
        ids[page.resolve()] = _ids_of(browser)
        hrefs = browser.execute_script(
            "return Array.from(document.querySelectorAll('a[href]'), a => a.href)"
            ".concat(Array.from(document.querySelectorAll('[src]'), e => e.src))"
            ".concat(Array.from(document.querySelectorAll('link[href]'), e => e.href));")
        links += [(page.name, h) for h in hrefs]
    assert len(ids) == len(pages)
    broken = []
    for name, href in links:
        parts = urlsplit(href)
        if parts.scheme in ("http", "https", "mailto"):
            continue                        # outside links are never loaded by a page
        assert parts.scheme == "file", (name, href)
        target = Path(unquote(parts.path)).resolve()
        if not target.is_file() or built_site.resolve() not in target.parents:
            broken.append(f"{name}: {href}")
        elif parts.fragment and target in ids and unquote(parts.fragment) not in ids[target]:
            broken.append(f"{name}: {href} (no such anchor)")
    assert broken == []


def _search(browser, query: str) -> list[str]:
    box = browser.find_element(By.ID, "search-box")
    box.clear()
    box.send_keys(query)
    WebDriverWait(browser, 10).until(
        lambda d: d.find_elements(By.CSS_SELECTOR, "#search-results li"))
    return [a.get_attribute("href") for a in
            browser.find_elements(By.CSS_SELECTOR, "#search-results a")]


def _rare_word(built_site: Path) -> str:
    """A word of the statement's text that few other entries of the index hold."""
    text = (built_site / "search-index.js").read_text()
    entries = json.loads(text.split("=", 1)[1].strip().rstrip(";"))
    mine = next(e for e in entries if e[1] == STATEMENT)
    words = {w for w in re.findall(r"[a-z]{6,}", mine[3].lower())}
    counts = Counter(w for e in entries for w in set(re.findall(r"[a-z]{6,}",
                                                                (e[1] + " " + e[3]).lower())))
    return min(sorted(words), key=lambda w: counts[w])


def test_search_finds_a_statement_by_id_and_by_a_word_of_its_text(browser, built_site):
    browser.get((built_site / "index.html").as_uri())
    want = f"swiotlb.html#{make_id(STATEMENT)}"
    hits = _search(browser, STATEMENT)
    assert hits and hits[0].endswith(want), hits[:3]
    word = _rare_word(built_site)
    hits = _search(browser, word)
    assert any(h.endswith(want) for h in hits), (word, hits)
    # a result is a link that lands on the statement's card
    browser.find_element(By.CSS_SELECTOR, f'#search-results a[href="{want}"]').click()
    WebDriverWait(browser, 10).until(lambda d: d.current_url.endswith(want))
    card = browser.find_element(By.ID, make_id(STATEMENT))
    assert "MUST NOT" in card.text
    assert _console_errors(browser) == []


def test_print_hides_the_navigation(browser, built_site):
    browser.get((built_site / "swiotlb.html").as_uri())
    browser.execute_cdp_cmd("Emulation.setEmulatedMedia", {"media": "print"})
    try:
        assert not browser.find_element(By.CSS_SELECTOR, "nav.sidebar").is_displayed()
        assert browser.find_element(By.ID, "content").is_displayed()
    finally:
        browser.execute_cdp_cmd("Emulation.setEmulatedMedia", {"media": ""})


def test_screenshots_of_the_index_and_a_module_page(browser, built_site):
    SHOTS.mkdir(parents=True, exist_ok=True)
    for page in ("index", "swiotlb"):
        shot = SHOTS / f"{page}.png"
        shot.unlink(missing_ok=True)
        browser.get((built_site / f"{page}.html").as_uri())
        assert browser.save_screenshot(str(shot))
        data = shot.read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 20_000, page


def test_verdict_badges_and_table_columns_stay_readable(browser, built_site):
    browser.get((built_site / "index.html").as_uri())
    # each verdict badge is drawn on one line, whatever the width of its column
    pieces = browser.execute_script(
        "return Array.from(document.querySelectorAll('main [class^=\"verdict-\"]'),"
        " e => e.getClientRects().length);")
    assert pieces and set(pieces) == {1}
    # a table wider than the page scrolls in its own box instead of crushing its columns
    widths = browser.execute_script(
        "return Array.from(document.querySelectorAll('main td'), e => e.getBoundingClientRect().width);")
    assert min(widths) >= 40
    overflow = browser.execute_script(
        "return getComputedStyle(document.querySelector('.table-wrap')).overflowX;")
    assert overflow == "auto"
