"""Everything works without JavaScript: every page renders all of its
sections, and every form does its job with plain POST -> redirect -> GET."""

import re

from playwright.sync_api import expect

from portal import (
    SECTIONS,
    EntraUser,
    Scim,
    activate,
    fill_empty_mapping_row,
    h1,
    mapping_rows,
    member_rows,
    open_link,
    read_token_page,
    status,
    synchronize,
)


def test_every_page_and_form_works_without_javascript(stack, new_context, tenant_id, shots):
    page = new_context(java_script_enabled=False).new_page()
    link_status, _ = open_link(page, stack.mint_link(tenant_id()))
    assert link_status == 303
    assert h1(page) == "User provisioning"
    for section in SECTIONS:
        expect(page.locator(section)).to_be_visible()

    tenant_url, token = activate(page)
    page.goto("/portal/")
    assert status(page).startswith("Active")
    for section in SECTIONS:
        expect(page.locator(section)).to_be_visible()
    shots.take(page, "activated")
    user = EntraUser("Nora", "Script")
    Scim(tenant_url, token).create_user(user)

    page.get_by_role("button", name="Generate an additional token").click()
    _, token2 = read_token_page(page)
    assert token2 and token2 != token

    page.goto("/portal/")
    report = synchronize(page)
    assert "Last synchronized" in report
    assert any(user.user_name in r for r in member_rows(page)), "the synced user is not listed"

    before = mapping_rows(page)
    fill_empty_mapping_row(page, "name.givenName", "firstName")
    page.get_by_role("button", name="Save mapping").click()
    expect(page.locator("#notice")).to_contain_text(re.compile(r"next sync", re.I))
    page.goto("/portal/")
    assert ("name.givenName", "firstName") in mapping_rows(page)
    page.get_by_role("button", name="Reset to defaults").click()
    page.goto("/portal/")
    assert mapping_rows(page) == before, "Reset to defaults did not restore the defaults"

    missing = []
    for path in ("/portal/members", "/portal/history", "/portal/static/portal.css"):
        resp = page.goto(path)
        if resp.status != 200:
            missing.append(f"GET {path}: {resp.status}")
    resp = page.goto("/portal/revoke")
    assert resp.status == 200
    page.get_by_role("button", name="Yes, revoke all tokens").click()
    page.goto("/portal/")
    assert status(page) == "Not activated", "after revoking all tokens the status is not 'Not activated'"
    assert not missing, "pages of the contract that do not answer: " + "; ".join(missing)
