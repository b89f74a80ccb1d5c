"""A session is bound to one tenant: tenant B's session never shows tenant
A's data, on the page or through the JSON API, however the request is
dressed up, and nothing B does changes A."""

import base64
import binascii

from portal import EntraUser, Scim, activate, h1, mapping_rows, open_link

PAGES = ["/portal/", "/portal/members", "/portal/history", "/portal/revoke"]
API = [
    "/portal/api/status",
    "/portal/api/preview",
    "/portal/api/sync",
    "/portal/api/mapping",
    "/portal/api/members",
    "/portal/api/history",
]


def forged(value: str, own: str, other: str) -> list[str]:
    """Session cookie values with tenant OWN swapped for OTHER, in plain
    text or inside a base64url part (the signature must then fail)."""
    out = []
    if own in value:
        out.append(value.replace(own, other))
    parts = value.split(".")
    for i, part in enumerate(parts):
        try:
            raw = base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))
        except (binascii.Error, ValueError):
            continue
        if own.encode() in raw:
            enc = base64.urlsafe_b64encode(raw.replace(own.encode(), other.encode()))
            parts2 = list(parts)
            parts2[i] = enc.decode().rstrip("=")
            out.append(".".join(parts2))
    return out


def test_tenant_b_cannot_read_or_change_tenant_a(stack, new_context, tenant_id):
    a, b = tenant_id(), tenant_id()

    # Tenant A: active, one provisioned user, synchronized.
    pa = new_context().new_page()
    open_link(pa, stack.mint_link(a))
    tenant_url, token_a = activate(pa)
    alice = EntraUser("Alice", "Secretia")
    Scim(tenant_url, token_a).create_user(alice)
    pa.goto("/portal/")
    a_mapping = mapping_rows(pa)
    secrets_of_a = [a, alice.user_name, alice.external_id, alice.family, token_a]

    # Tenant B: its own session.
    ctx_b = new_context()
    pb = ctx_b.new_page()
    open_link(pb, stack.mint_link(b))
    activate(pb)

    def assert_clean(text: str, where: str) -> None:
        for s in secrets_of_a:
            assert s not in text, f"{where} with B's session shows tenant A's {s!r}"

    for path in PAGES:
        for query in ("", f"?tenant={a}"):
            resp = pb.goto(path + query)
            assert resp.status < 500, f"{path}{query}: {resp.status}"
            assert_clean(pb.content(), path + query)
    for path in API:
        for query in ("", f"?tenant={a}"):
            resp = ctx_b.request.get(f"{stack.base_url}{path}{query}")
            assert resp.status < 500, f"{path}{query}: {resp.status}"
            assert_clean(resp.text(), path + query)

    # B's cookie only ever names B; dressed up as A it is no session at all.
    cookie = next(c for c in ctx_b.cookies() if c["name"] == "scimsync_portal")
    assert a not in cookie["value"]
    for value in forged(cookie["value"], b, a):
        ctx_f = new_context()
        ctx_f.add_cookies([{**cookie, "value": value}])
        pf = ctx_f.new_page()
        resp = pf.goto("/portal/")
        assert resp.status in (401, 403), f"a forged cookie for A answered {resp.status}"
        assert_clean(pf.content(), "/portal/ with a forged cookie")
        api = ctx_f.request.get(f"{stack.base_url}/portal/api/status")
        assert api.status in (401, 403), f"the API took a forged cookie: {api.status}"
        assert_clean(api.text(), "/portal/api/status with a forged cookie")

    # What B does stays with B: revoke all, a mapping change.
    pb.goto("/portal/")
    pb.get_by_role("link", name="Revoke all tokens").or_(
        pb.get_by_role("button", name="Revoke all tokens")
    ).first.click()
    pb.get_by_role("button", name="Yes, revoke all tokens").click()
    pb.wait_for_load_state()
    code, _ = Scim(tenant_url, token_a).call("GET", "/Users")
    assert code == 200, f"B's revoke-all broke A's token: {code}"
    pa.goto("/portal/")
    assert h1(pa) == "User provisioning"
    assert mapping_rows(pa) == a_mapping
    assert alice.user_name in pa.content(), "A's page no longer shows A's user"
