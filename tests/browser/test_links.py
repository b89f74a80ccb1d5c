"""One-time links: they open a session once, expire, and say so clearly;
the session cookie is HttpOnly, SameSite=Strict, Path=/portal, 1 hour,
not Secure on loopback."""

import time

from portal import h1, open_link

COOKIE = "scimsync_portal"


def session_cookie(context):
    return next((c for c in context.cookies() if c["name"] == COOKIE), None)


def assert_refused(context, page, link_status, want_status, want_h1):
    """The link's answer, then that no session came of it. Headings are
    checked last, so that a heading's wording hides no other finding."""
    assert link_status == want_status, f"the link answered {link_status}, not {want_status}"
    headings = [("the link's page", h1(page), want_h1)]
    assert session_cookie(context) is None, "a refused link still set the session cookie"
    resp = page.goto("/portal/")
    assert resp.status == 401, f"/portal/ without a session answered {resp.status}, not 401"
    headings.append(("/portal/ without a session", h1(page), "Your session has ended"))
    wrong = [f"{where}: <h1> {got!r}, want {want!r}" for where, got, want in headings if got != want]
    assert not wrong, "; ".join(wrong)


def test_link_opens_a_session_with_a_strict_cookie(stack, new_context, tenant_id):
    ctx = new_context()
    page = ctx.new_page()
    link_status, resp = open_link(page, stack.mint_link(tenant_id()))
    assert link_status == 303 and resp.url.endswith("/portal"), (link_status, resp.url)
    assert h1(page) == "User provisioning"
    cookie = session_cookie(ctx)
    assert cookie, f"no {COOKIE} cookie after opening the link: {ctx.cookies()}"
    assert cookie["httpOnly"], "the session cookie is not HttpOnly"
    assert cookie["sameSite"] == "Strict", f"SameSite={cookie['sameSite']}"
    assert cookie["path"] == "/portal", f"Path={cookie['path']}"
    assert not cookie["secure"], "Secure is set on loopback (the browser would drop it)"
    ttl = cookie["expires"] - time.time()
    assert 3500 < ttl <= 3601, f"the cookie lives {ttl:.0f} s, not an hour"


def test_an_expired_link_is_refused(stack, new_context, tenant_id):
    link = stack.mint_link(tenant_id(), ttl="1s")
    time.sleep(2)
    ctx = new_context()
    page = ctx.new_page()
    link_status, _ = open_link(page, link)
    assert_refused(ctx, page, link_status, 410, "This link has expired")


def test_a_link_works_only_once(stack, new_context, tenant_id):
    link = stack.mint_link(tenant_id())
    first = new_context().new_page()
    link_status, _ = open_link(first, link)
    assert link_status == 303 and h1(first) == "User provisioning"

    ctx = new_context()  # someone else, with the same link
    page = ctx.new_page()
    link_status, _ = open_link(page, link)
    assert_refused(ctx, page, link_status, 410, "This link was already used")


def test_an_unknown_link_is_not_valid(stack, new_context, tenant_id):
    tenant = tenant_id()
    stack.mint_link(tenant)  # the tenant has a link, just not this one
    ctx = new_context()
    page = ctx.new_page()
    link_status, _ = open_link(page, f"{stack.base_url}/portal/open/{tenant}/{'0' * 43}")
    assert_refused(ctx, page, link_status, 404, "This link is not valid")
