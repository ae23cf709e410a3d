"""The voucher sheet printed by a real browser: Chromium (Playwright, Debian's /usr/bin/chromium) prints the
sheet behind a batch's printUrl to PDF, on A4 and on an 80 mm roll, and the QR codes are read back from the
rendered PDF (pypdfium2 renders it, zxing-cpp decodes): each opens the hotspot's login page with its
voucher's code in the URL fragment. The PDFs and page images go to ``test-artifacts/vouchers/``.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from billing import vouchers
from billing.models import OperatorProfile
from network.models import Router
from tests.live import REPO

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = REPO / "test-artifacts" / "vouchers"
HOTSPOT = "10.5.50.1"
MM_PER_POINT = 25.4 / 72

pytestmark = [
    pytest.mark.once,
    pytest.mark.slow,
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(not CHROMIUM.exists(), reason="needs Debian's chromium at /usr/bin/chromium"),
]
sync_api = pytest.importorskip("playwright.sync_api", reason="needs the playwright package (pip install -e '.[test]')")
pdfium = pytest.importorskip("pypdfium2", reason="needs pypdfium2 (test extra)")
zxingcpp = pytest.importorskip("zxingcpp", reason="needs zxing-cpp (test extra)")


@pytest.fixture
def chromium(monkeypatch) -> Iterator[object]:
    from tests.e2e.test_portal_browser import CHROMIUM_ARGS

    # Playwright's sync API runs an event loop in this thread; the test's own ORM calls are still sync.
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def batch(operator):
    router = operator.add_router()
    Router.objects.filter(pk=router.pk).update(hotspot_address=HOTSPOT)
    OperatorProfile.objects.filter(user=operator.user).update(business_name="Mama Njeri WiFi")
    package = operator.add_package(router, price="50.00", minutes=24 * 60, name="1 Day")
    return vouchers.voucher_batch_create(
        operator=operator.user, data=vouchers.VoucherBatchInput(package_id=package.pk, count=18)
    )


def print_to_pdf(chromium, url: str, name: str, **pdf_options) -> Path:
    page = chromium.new_page()
    response = page.goto(url)
    assert response is not None and response.status == 200
    page.emulate_media(media="print")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}-print-media.png"), full_page=True)
    path = ARTIFACTS / f"{name}.pdf"
    page.pdf(path=str(path), print_background=True, **pdf_options)
    page.close()
    return path


def read_pdf(path: Path) -> tuple[list[tuple[int, int]], list[set[str]]]:
    """Each page's size in millimetres and the QR codes read from it (rendered in grey at 200 dpi)."""
    document = pdfium.PdfDocument(str(path))
    sizes, decoded = [], []
    for page in document:
        width, height = page.get_size()
        sizes.append((round(width * MM_PER_POINT), round(height * MM_PER_POINT)))
        bitmap = page.render(scale=200 / 72, grayscale=True, force_bitmap_format=pdfium.raw.FPDFBitmap_Gray)
        pixels = memoryview(bitmap.buffer).cast("B", (bitmap.height, bitmap.stride))
        image = zxingcpp.ImageView(pixels, bitmap.width, bitmap.height, zxingcpp.ImageFormat.Lum, bitmap.stride)
        decoded.append({result.text for result in zxingcpp.read_barcodes(image) if result.valid})
    return sizes, decoded


def expected_urls(batch) -> set[str]:
    return {f"http://{HOTSPOT}/login#code={code}" for code in batch.vouchers.values_list("code", flat=True)}


def test_a4_sheet_prints_with_readable_qr_codes(chromium, live_server, batch):
    url = live_server.url + vouchers.sheet_path(batch)
    pdf = print_to_pdf(chromium, url, "a4", format="A4", prefer_css_page_size=True)
    sizes, decoded = read_pdf(pdf)
    assert set(sizes) == {(210, 297)}
    # 18 cards at 16 a page: two pages, every card whole (a split card's QR would not read).
    assert len(sizes) == 2 and [len(found) for found in decoded] == [16, 2]
    assert set().union(*decoded) == expected_urls(batch)
    first = batch.vouchers.order_by("id").first()
    assert f"http://{HOTSPOT}/login#code={first.code}" in decoded[0]


def test_80mm_roll_prints_one_voucher_a_slip(chromium, live_server, batch):
    url = live_server.url + vouchers.sheet_path(batch) + "?paper=80mm"
    pdf = print_to_pdf(chromium, url, "80mm", prefer_css_page_size=True)
    sizes, decoded = read_pdf(pdf)
    assert set(sizes) == {(80, 110)} and len(sizes) == 18
    assert all(len(found) == 1 for found in decoded)
    assert set().union(*decoded) == expected_urls(batch)


def test_58mm_roll_prints_readable_codes(chromium, live_server, batch):
    url = live_server.url + vouchers.sheet_path(batch) + "?paper=58mm"
    pdf = print_to_pdf(chromium, url, "58mm", prefer_css_page_size=True)
    sizes, decoded = read_pdf(pdf)
    assert set(sizes) == {(58, 90)} and len(sizes) == 18
    assert set().union(*decoded) == expected_urls(batch)
