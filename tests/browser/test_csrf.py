"""Every state-changing form carries a CSRF token: a POST without it, or
with a wrong one, is refused with 403 and changes nothing; the JSON API
refuses a state change without the X-CSRF-Token header."""

import pytest
from playwright.sync_api import expect

from portal import activate, fill_empty_mapping_row, h1, mapping_rows, open_link, status


def tampered_submit(page, action: str, button: str, how: str):
    """Submits the form posting to ACTION with its csrf input removed or
    changed, by clicking its button; returns the response."""
    form = page.locator(f"form[action='{action}']")
    expect(form).to_have_count(1)
    js = "e => e.remove()" if how == "missing" else "e => { e.value = 'x' + e.value.slice(1) }"
    form.locator("input[name=csrf]").evaluate(js)
    with page.expect_response(lambda r: r.request.method == "POST") as posted:
        form.get_by_role("button", name=button).click()
    page.wait_for_load_state()
    return posted.value


@pytest.mark.parametrize("how", ["missing", "wrong"])
def test_a_form_without_the_right_csrf_value_is_refused(stack, new_context, tenant_id, how):
    page = new_context().new_page()
    open_link(page, stack.mint_link(tenant_id()))
    assert status(page) == "Not activated"

    resp = tampered_submit(page, "/portal/activate", "Activate user provisioning", how)
    assert resp.status == 403, f"activate with a {how} csrf answered {resp.status}, not 403"
    assert "api-token" not in page.content()
    page.goto("/portal/")
    assert status(page) == "Not activated", "the refused activation happened anyway"

    activate(page)
    page.goto("/portal/")
    before = mapping_rows(page)
    form = page.locator("form", has=page.locator("tr.mapping-row"))
    fill_empty_mapping_row(page, "name.givenName", "firstName")
    resp = tampered_submit(page, form.get_attribute("action"), "Save mapping", how)
    assert resp.status == 403, f"save mapping with a {how} csrf answered {resp.status}, not 403"
    page.goto("/portal/")
    assert mapping_rows(page) == before, "the refused mapping was saved"
    assert h1(page) == "User provisioning"


def test_the_json_api_needs_the_csrf_header(stack, new_context, tenant_id):
    ctx = new_context()
    page = ctx.new_page()
    open_link(page, stack.mint_link(tenant_id()))
    probe = ctx.request.get(f"{stack.base_url}/portal/api/status")
    assert probe.status == 200, f"GET /portal/api/status with the session: {probe.status}"
    for headers in ({}, {"X-CSRF-Token": "wrong"}):
        resp = ctx.request.post(f"{stack.base_url}/portal/api/activate", headers=headers)
        assert resp.status == 403, f"POST /portal/api/activate with {headers}: {resp.status}"
        assert "scimsync_" not in resp.text(), "a refused activation returned a token"
    page.goto("/portal/")
    assert status(page) == "Not activated", "the refused API activation happened anyway"
