"""Shared set-up of the review browser tests and the viewer benchmark: data, Chromium, log-in, a11y checks."""
from __future__ import annotations

import os

from portal.testing.screenshots import screenshot_dir

os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")  # Playwright's sync API runs an event loop

ARTIFACTS = screenshot_dir("review")
CHROMIUM = "/usr/bin/chromium"


def build_world(n_first: int = 10):
    """Center A's cast, one session with two analyzed images (10 and 3 detections) at 0.2 µm/px."""
    from portal.results.models import Detection
    from portal.testing.cast import build_cast
    from portal.testing.review import circle_cells, make_image, make_result_set, make_session

    cast = build_cast()
    session = make_session(cast.a, patient_code="CA-BROWSER1")
    images = []
    for n, seed in ((n_first, 1), (3, 2)):
        cells = circle_cells(n, width=800, height=600, radius=17.5, seed=seed)
        image = make_image(cast.a, session=session, width=800, height=600, um_per_px=0.2, cells=cells,
                           stage=(10000.0, 5000.0))
        scores = [round(0.95 - 0.9 * k / max(n - 1, 1), 3) for k in range(n)]
        classes = ["round_spermatid" if k % 3 != 2 else "erythrocyte" for k in range(n)]
        make_result_set(image, cells=cells, classes=classes, scores=scores)
        images.append(image)
    dets = list(Detection.objects.filter(result_set__image=images[0]).order_by("index"))
    return cast, session, images, dets


def launch(playwright):
    return playwright.chromium.launch(executable_path=CHROMIUM, headless=True,
                                      args=["--no-sandbox", "--disable-dev-shm-usage"])


def login(page, live_server_url: str, username: str, password: str, *, second_factor: bool = False) -> None:
    """Log in through the login page; a user whose role requires two-factor authentication (or any user,
    with ``second_factor``: e.g. for the API-token page) gets an enrolled authenticator first and types
    its current code on the code page."""
    from django.contrib.auth import get_user_model

    from portal.accounts.selectors import user_requires_otp
    from portal.testing.cast import otp_device_for, totp_now

    user = get_user_model().objects.get(username=username)
    device = otp_device_for(user) if second_factor or user_requires_otp(user) else None
    page.goto(f"{live_server_url}/accounts/login/")
    page.fill("#id_username", username)
    page.fill("#id_password", password)
    page.press("#id_password", "Enter")
    page.wait_for_url(lambda url: "/accounts/login" not in url)
    if device is not None:
        page.wait_for_url(lambda url: "/accounts/2fa/" in url)
        page.fill("#id_token", totp_now(device))
        page.press("#id_token", "Enter")
        page.wait_for_url(lambda url: "/accounts/2fa/" not in url)


def wait_viewer(page) -> None:
    page.wait_for_selector("body[data-viewer-ready='1']", timeout=20000)


def wait_saved(page) -> None:
    page.wait_for_function(
        "() => { const s = document.getElementById('save-status');"
        " return s.getAttribute('data-pending') === '0' && !s.classList.contains('error')"
        " && s.textContent !== 'Saving…'; }", timeout=10000)


def shot(page, name: str) -> str:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / name
    page.screenshot(path=str(path), full_page=False)
    return str(path)


# Basic accessibility: form controls have labels, buttons/links have names, images have alt text, and
# visible text meets WCAG AA contrast (4.5:1; 3:1 for large text) against its effective background.
A11Y_JS = r"""
() => {
  const problems = [];
  const visible = (el) => { const r = el.getBoundingClientRect(); const cs = getComputedStyle(el);
    return r.width > 0 && r.height > 0 && cs.visibility !== 'hidden' && cs.display !== 'none'; };
  for (const el of document.querySelectorAll('input, select, textarea')) {
    if (el.type === 'hidden') continue;
    const named = (el.labels && el.labels.length) || el.getAttribute('aria-label') || el.getAttribute('aria-labelledby');
    if (!named) problems.push('unlabelled ' + el.tagName + '#' + el.id + '[name=' + el.name + ']');
  }
  for (const el of document.querySelectorAll('button, a[href]')) {
    const name = (el.textContent || '').trim() || el.getAttribute('aria-label') || el.getAttribute('title');
    if (!name) problems.push('nameless ' + el.tagName + '#' + el.id);
  }
  for (const el of document.querySelectorAll('img')) { if (!el.hasAttribute('alt')) problems.push('img without alt ' + el.src); }
  const parse = (c) => { const m = c.match(/rgba?\(([^)]+)\)/); if (!m) return null;
    const p = m[1].split(',').map(Number); return { r: p[0], g: p[1], b: p[2], a: p.length > 3 ? p[3] : 1 }; };
  const lum = (c) => { const f = (v) => { v /= 255; return v <= 0.03928 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4); };
    return 0.2126 * f(c.r) + 0.7152 * f(c.g) + 0.0722 * f(c.b); };
  const bgOf = (el) => { for (let e = el; e; e = e.parentElement) { const c = parse(getComputedStyle(e).backgroundColor);
      if (c && c.a > 0.5) return c; } return { r: 255, g: 255, b: 255, a: 1 }; };
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  const seen = new Set();
  while (walker.nextNode()) {
    const node = walker.currentNode; const el = node.parentElement;
    if (!el || seen.has(el) || !node.textContent.trim() || !visible(el)) continue;
    if (el.closest('.visually-hidden, .skip-link, script, option')) continue;
    seen.add(el);
    const cs = getComputedStyle(el); const fg = parse(cs.color); const bg = bgOf(el);
    if (!fg) continue;
    const l1 = lum(fg), l2 = lum(bg); const ratio = (Math.max(l1, l2) + 0.05) / (Math.min(l1, l2) + 0.05);
    const size = parseFloat(cs.fontSize); const large = size >= 24 || (size >= 18.66 && Number(cs.fontWeight) >= 700);
    const need = large ? 3 : 4.5;
    if (ratio < need * (el.closest('button:disabled') ? 0 : 1)) problems.push('contrast ' + ratio.toFixed(2) + ' "' + node.textContent.trim().slice(0, 30) + '"');
  }
  return problems;
}
"""


def tab_order(page, steps: int = 60) -> list[str]:
    """Ids (or tag names) of the elements that Tab reaches, in order, from the top of the page."""
    page.evaluate("() => { document.activeElement && document.activeElement.blur(); window.scrollTo(0, 0); }")
    page.focus("body")
    order = []
    for _ in range(steps):
        page.keyboard.press("Tab")
        order.append(page.evaluate("() => { const e = document.activeElement; return e.id || e.tagName.toLowerCase(); }"))
    return order
