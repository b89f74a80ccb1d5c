"""The whole guide, walked in a browser as the customer's admin and Entra ID
would: open a link, activate, copy the token, provision users and a group over
SCIM, see them available to be synced, Synchronize, find them under Members,
edit the attribute mapping (a bad path refused on its row, a good one saved),
Synchronize the updates, and find the used link refused.

Screenshots of each step: target/browser/whole-guide-NN-<step>.png; with
SCIMSYNC_README_SCREENSHOTS=docs/screenshots (`make screenshots`), the
README's screenshots too, section by section, the token masked."""

import re

from playwright.sync_api import expect

from portal import (
    SECTIONS,
    EntraUser,
    Scim,
    activate,
    change_rows,
    count,
    fill_empty_mapping_row,
    h1,
    last_sync,
    last_sync_counts,
    mapping_rows,
    member_rows,
    open_link,
    status,
    synchronize,
)


def test_whole_guide(stack, new_context, tenant_id, shots):
    tenant = tenant_id()
    link = stack.mint_link(tenant)
    # Findings that do not stop the walk (so one of them hides no later one);
    # the test fails at its end if there are any.
    findings: list[str] = []
    page = new_context().new_page()

    # Open the one-time link: 303 to the User Provisioning page, not yet active.
    link_status, resp = open_link(page, link)
    assert link_status == 303, f"the link answered {link_status}, not 303 to /portal"
    assert resp.status == 200 and resp.url.endswith("/portal"), (resp.status, resp.url)
    assert h1(page) == "User provisioning"
    assert status(page) == "Not activated"
    for section in SECTIONS:
        expect(page.locator(section)).to_be_attached()
    shots.take(page, "opened")

    # Activate: the page shows the Tenant URL and the API token, once.
    tenant_url, token = activate(page)
    assert tenant_url == stack.tenant_url, (tenant_url, stack.tenant_url)
    assert token.startswith(f"scimsync_{tenant}_"), "the API token is not this tenant's"
    assert len(page.get_by_role("button", name="Copy").all()) >= 2, "no Copy buttons"
    shots.take(
        page,
        "activated-token-shown",
        readme=("#activate", "1-activate.png"),
        mask=[page.locator("#api-token")],
    )

    page.goto("/portal/")
    assert status(page) == "Active — waiting for your identity provider"
    assert token not in page.content(), "the token is shown again after the one-time reveal"
    expect(page.locator("#last-call")).to_contain_text("has not called yet")
    expect(page.locator("#connect")).to_contain_text(tenant_url)
    expect(page.locator("#tokens")).to_be_visible()

    # Entra ID provisions three users, disables one, and a group of two.
    scim = Scim(tenant_url, token)
    adele, ben, carl = EntraUser("Adele", "Vance"), EntraUser("Ben", "Walters"), EntraUser("Carl", "Ortiz")
    for u in (adele, ben, carl):
        scim.create_user(u)
    scim.disable_user(carl)
    scim.create_group("Sales", [adele, ben])

    page.reload()
    assert status(page) == "Active"
    activity = page.locator("#idp-activity").inner_text()
    assert re.search(r"\b3 users?\b", activity) and re.search(r"\b1 groups?\b", activity), (
        f"#idp-activity should say 3 users · 1 group, says {activity!r}"
    )
    expect(page.locator("#last-call")).to_contain_text("Last request from")
    shots.take(page, "identity-provider-connected", readme=("#connect", "2-connect.png"))

    # What the identity provider did, and a refused request with its reason.
    code, _ = scim.call("POST", "/Users", adele.body())
    assert code == 409, f"a second POST of {adele.user_name} answered {code}, not 409"
    page.reload()
    log = page.locator("#activity-table")
    expect(log).to_contain_text(re.compile(r"rejected \(409 uniqueness\)"))
    expect(log).to_contain_text(adele.user_name)
    expect(log).to_contain_text("deactivated")
    page.locator("#activity").scroll_into_view_if_needed()
    shots.take(page, "activity")

    # Users available to be synced: exactly the two active ones, to create.
    assert [count(page, t) for t in ("create", "update", "deactivate", "reactivate")] == [
        "2", "0", "0", "0",
    ], "preview tiles (create, update, deactivate, reactivate)"
    rows = change_rows(page)
    assert len(rows) == 2, f"#changes should list the 2 active users, lists {rows}"
    for u in (adele, ben):
        row = next((r for r in rows if u.user_name in r), None)
        assert row, f"{u.user_name} missing from #changes: {rows}"
        assert u.display in row, f"name {u.display!r} missing from its row {row!r}"
        assert re.search(r"create|new member", row, re.I), f"action of {u.user_name} is not create: {row!r}"
    assert not any(carl.user_name in r for r in rows), "the disabled user would be created"
    page.locator("#preview").scroll_into_view_if_needed()
    shots.take(page, "users-available-to-be-synced", readme=("#preview", "3-available.png"))

    # Synchronize: the report, then nothing left to create; Members lists them.
    synchronize(page)
    report = last_sync_counts(page)
    if not re.search(r"\b2\b", report):
        findings.append(
            f"after the first Synchronize, #last-sync (its <time> aside) shows no report counts (2 created): {report!r}"
        )
    assert count(page, "create") == "0", "after the sync there is still something to create"
    shots.take(page, "synchronized")
    members = member_rows(page)
    assert len(members) == 2, f"#members-table should list 2 members: {members}"
    for u in (adele, ben):
        row = next((r for r in members if u.user_name in r), None)
        assert row, f"{u.user_name} missing from #members-table: {members}"
        assert u.display in row, f"name {u.display!r} missing from its member row {row!r}"
        assert "Engineer" in row, f"mapped property jobTitle missing from {row!r}"
    assert not any(carl.user_name in r for r in members), "the disabled user became a member"
    expect(page.locator("#history-table")).to_contain_text(re.compile(r"\d"))
    page.locator("#members").scroll_into_view_if_needed()
    shots.take(page, "members", readme=("#members", "4-members.png"))

    # A bad mapping path: the error is on its row, and nothing is saved.
    before = mapping_rows(page)
    assert before, "the mapping shows no rows (defaults expected)"
    fill_empty_mapping_row(page, "name.givenName[", "firstName")
    page.get_by_role("button", name="Save mapping").click()
    page.wait_for_load_state()
    bad = page.locator("tr.mapping-row", has=page.locator(".row-error"))
    expect(bad).to_have_count(1)
    assert bad.locator("input[name=path]").input_value() == "name.givenName[", (
        "the .row-error is not on the row with the bad path"
    )
    bad.scroll_into_view_if_needed()
    shots.take(page, "mapping-error-on-row", readme=("#mapping", "5-mapping-error.png"))
    page.goto("/portal/")
    assert mapping_rows(page) == before, "the refused mapping was saved (in part)"

    # A good one: saved, with the notice that the next sync reconciles everyone.
    fill_empty_mapping_row(page, "name.givenName", "firstName")
    page.get_by_role("button", name="Save mapping").click()
    page.wait_for_load_state()
    expect(page.locator("#notice")).to_contain_text(re.compile(r"next sync", re.I))
    shots.take(page, "mapping-saved")
    page.goto("/portal/")
    assert mapping_rows(page) == before + [("name.givenName", "firstName")], mapping_rows(page)

    # The preview shows the updates, property by property.
    assert count(page, "update") == "2", f"#count-update: {count(page, 'update')}"
    assert count(page, "create") == "0"
    rows = change_rows(page)
    assert len(rows) == 2, rows
    for u in (adele, ben):
        row = next((r for r in rows if u.user_name in r), None)
        assert row and re.search(r"update", row, re.I), f"no update row for {u.user_name}: {rows}"
        assert "firstName" in row, f"the update of {u.user_name} does not show the property: {row!r}"
    page.locator("#preview").scroll_into_view_if_needed()
    shots.take(page, "preview-updates", readme=("#preview", "6-updates.png"))

    # Synchronize shows the updates; the members carry the new property.
    synchronize(page)
    report = last_sync_counts(page)
    if not (re.search(r"updat", report, re.I) and re.search(r"\b2\b", report)):
        findings.append(
            f"after the second Synchronize, #last-sync (its <time> aside) does not report 2 updated: {report!r}"
        )
    assert count(page, "update") == "0"
    members = member_rows(page)
    for u in (adele, ben):
        row = next((r for r in members if u.user_name in r), "")
        assert "firstName" in row, f"the new property firstName is not shown for the member: {row!r}"
    shots.take(page, "synchronized-updates")

    # The used link is refused.
    link_status, resp = open_link(page, link)
    shots.take(page, "used-link-refused")
    assert link_status == 410, f"the used link answered {link_status}, not 410"
    assert last_sync(page) == "", "the refused-link page shows portal data"
    if h1(page) != "This link was already used":
        findings.append(f"the used link's page: <h1> {h1(page)!r}, want 'This link was already used'")
    assert not findings, "\n".join(findings)
