"""The Content-Security-Policy of server-rendered pages that run no script (the landing page, the checkout
return page, the voucher sheet): only their own stylesheet and images, no forms, no framing."""

NO_SCRIPT_PAGE_POLICY = "; ".join(
    [
        "default-src 'none'",
        "style-src 'self'",
        "img-src 'self'",
        "base-uri 'none'",
        "form-action 'none'",
        "frame-ancestors 'none'",
    ]
)
