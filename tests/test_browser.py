"""The golden email in headless Chromium: no sideways scrolling, live links, dark mode, screenshots.

Uses Debian's Chromium (`make chromium`), never a browser downloaded by Playwright.
Screenshots go to tests/artifacts/ (git-ignored) for a person to look at.
"""

from __future__ import annotations

import pytest
from playwright.sync_api import Browser, Page, Route

from tests.browsers import ARTIFACTS
from tests.golden_edition import ROOT, golden_settings, render_golden

# The one image the email loads: the logo, from our own web app (digest/web/branding.py).
LOGO_URL = golden_settings().delivery.base_url + "/brand/logo.png?v="
LOGO_FILE = ROOT / "examples" / "branding" / "logo.png"

pytestmark = pytest.mark.browser

# Every visible element that draws text: its colour against the first opaque background found
# walking up the tree, as WCAG contrast.
CONTRAST_JS = """
() => {
  const rgb = (s) => (s.match(/[\\d.]+/g) || []).map(Number);
  const lum = ([r, g, b]) => {
    const f = (c) => { c /= 255; return c <= 0.04045 ? c / 12.92 : ((c + 0.055) / 1.055) ** 2.4; };
    return 0.2126 * f(r) + 0.7152 * f(g) + 0.0722 * f(b);
  };
  const background = (el) => {
    for (let e = el; e; e = e.parentElement) {
      const c = rgb(getComputedStyle(e).backgroundColor);
      if (c.length === 3 || c[3] > 0) return c.slice(0, 3);
    }
    return [255, 255, 255];
  };
  const out = [];
  for (const el of document.body.querySelectorAll("*")) {
    const own = [...el.childNodes].some((n) => n.nodeType === 3 && n.textContent.trim());
    const box = el.getBoundingClientRect();
    if (!own || box.width === 0 || box.height === 0) continue;
    const fg = rgb(getComputedStyle(el).color).slice(0, 3), bg = background(el);
    const [hi, lo] = [lum(fg), lum(bg)].sort((a, b) => b - a);
    out.push({tag: el.tagName, text: el.textContent.trim().slice(0, 40),
              fg: `rgb(${fg})`, bg: `rgb(${bg})`, ratio: (hi + 0.05) / (lo + 0.05)});
  }
  return out;
}
"""


@pytest.fixture(scope="module")
def email_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    path = tmp_path_factory.mktemp("email") / "email.html"
    path.write_text(render_golden().html, encoding="utf-8")
    ARTIFACTS.mkdir(exist_ok=True)
    return path.as_uri()


class Email:
    """A page showing the email; any request that is not the file itself is recorded and refused."""

    def __init__(
        self, browser: Browser, url: str, width: int, scheme: str = "light", height: int = 800
    ) -> None:
        self.remote_requests: list[str] = []
        self.page: Page = browser.new_page(viewport={"width": width, "height": height})
        self.page.emulate_media(color_scheme="dark" if scheme == "dark" else "light")
        self.page.route("http*://**/*", self._refuse)
        self.page.goto(url, wait_until="load")

    def _refuse(self, route: Route) -> None:
        if route.request.url.startswith(LOGO_URL):
            route.fulfill(path=LOGO_FILE, content_type="image/png")
            return
        self.remote_requests.append(route.request.url)
        route.abort()

    def backgrounds(self) -> dict[str, str]:
        return self.page.evaluate(  # type: ignore[no-any-return]
            """() => ({
              body: getComputedStyle(document.body).backgroundColor,
              page: getComputedStyle(document.querySelector(".page")).backgroundColor,
              sheet: getComputedStyle(document.querySelector(".sheet")).backgroundColor,
              footer: getComputedStyle(document.querySelector(".footer")).backgroundColor,
            })"""
        )

    def low_contrast(self) -> list[dict[str, object]]:
        texts: list[dict[str, object]] = self.page.evaluate(CONTRAST_JS)
        assert len(texts) >= 20, "too few text elements found to check contrast"
        return [t for t in texts if float(t["ratio"]) < 4.5]  # type: ignore[arg-type]


@pytest.mark.parametrize("width", [375, 800])
def test_email_fits_and_links_work(browser: Browser, email_url: str, width: int) -> None:
    email = Email(browser, email_url, width)
    page = email.page
    try:
        scroll, inner = page.evaluate("() => [document.documentElement.scrollWidth, innerWidth]")
        assert scroll <= inner, f"at {width}px the email scrolls sideways ({scroll} > {inner})"
        hrefs = page.eval_on_selector_all("a", "links => links.map(a => a.getAttribute('href'))")
        assert len(hrefs) >= 10
        assert all(h and h.strip() for h in hrefs), f"links without a target: {hrefs}"
        assert email.remote_requests == [], "the email fetched something remote"
        low = email.low_contrast()
        assert not low, f"text under 4.5:1 contrast in light mode: {low}"
        page.screenshot(path=str(ARTIFACTS / f"email-{width}.png"), full_page=True)
    finally:
        page.close()


def test_dark_mode(browser: Browser, email_url: str) -> None:
    light = Email(browser, email_url, 375)
    dark = Email(browser, email_url, 375, scheme="dark")
    try:
        lit, dim = light.backgrounds(), dark.backgrounds()
        for part in ("page", "sheet", "footer"):
            assert dim[part] != lit[part], f"the {part} background ignores dark mode: {dim}"
        low = dark.low_contrast()
        assert not low, f"text under 4.5:1 contrast in dark mode: {low}"
        dark.page.screenshot(path=str(ARTIFACTS / "email-375-dark.png"), full_page=True)
    finally:
        light.page.close()
        dark.page.close()


def test_dark_mode_reaches_below_a_short_email(browser: Browser, email_url: str) -> None:
    light = Email(browser, email_url, 800, height=2400)
    dark = Email(browser, email_url, 800, scheme="dark", height=2400)
    try:
        assert dark.page.evaluate("() => document.body.scrollHeight") < 2400
        assert dark.backgrounds()["body"] != light.backgrounds()["body"]
    finally:
        light.page.close()
        dark.page.close()
