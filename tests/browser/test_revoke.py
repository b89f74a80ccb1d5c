"""Revoke all tokens, after a confirmation step: SCIM requests with the old
token then get 401 (within the 15 s every instance takes to notice)."""

import time

from portal import EntraUser, Scim, activate, open_link, read_token_page


def test_revoke_all_turns_the_old_token_into_401(stack, new_context, tenant_id, shots):
    page = new_context().new_page()
    open_link(page, stack.mint_link(tenant_id()))
    tenant_url, token = activate(page)
    scim = Scim(tenant_url, token)
    scim.create_user(EntraUser("Rita", "Revoked"))

    # An additional token (rotation with overlap): both work.
    page.goto("/portal/")
    page.get_by_role("button", name="Generate an additional token").click()
    _, token2 = read_token_page(page)
    assert token2 != token
    page.goto("/portal/")
    assert page.locator("#tokens tbody tr").count() == 2, "#tokens should list 2 tokens"
    for t in (token, token2):
        code, _ = Scim(tenant_url, t).call("GET", "/Users")
        assert code == 200, f"a live token got {code}"

    page.get_by_role("link", name="Revoke all tokens").or_(
        page.get_by_role("button", name="Revoke all tokens")
    ).first.click()
    confirm = page.get_by_role("button", name="Yes, revoke all tokens")
    confirm.wait_for()
    shots.take(page, "confirmation")
    code, _ = scim.call("GET", "/Users")
    assert code == 200, "the confirmation page alone revoked the token"
    confirm.click()
    page.wait_for_load_state()
    shots.take(page, "revoked")

    deadline = time.monotonic() + 20
    for t in (token, token2):
        while True:
            code, _ = Scim(tenant_url, t).call("GET", "/Users")
            if code == 401 or time.monotonic() > deadline:
                break
            time.sleep(0.5)
        assert code == 401, f"a revoked token still gets {code} after 20 s"
    code, _ = Scim(tenant_url, token).call("POST", "/Users", EntraUser("Late", "Comer").body())
    assert code == 401, f"POST /Users with a revoked token: {code}"
