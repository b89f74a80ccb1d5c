"""Accessibility: axe-core on the User Provisioning page (with data, after
activation) reports no serious or critical violation; every form control has
a label; the main action works from the keyboard."""

import json

from conftest import AXE_JS
from portal import EntraUser, Scim, activate, open_link

BLOCKING = {"serious", "critical"}


def axe_violations(page) -> list[dict]:
    page.add_script_tag(path=str(AXE_JS))
    result = page.evaluate("axe.run(document, {resultTypes: ['violations']})")
    return [v for v in result["violations"] if v.get("impact") in BLOCKING]


def describe(violations: list[dict]) -> str:
    return json.dumps(
        [
            {
                "id": v["id"],
                "impact": v["impact"],
                "help": v["help"],
                "nodes": [n["target"] for n in v["nodes"]][:5],
            }
            for v in violations
        ],
        indent=1,
    )


def test_axe_finds_no_serious_violation(stack, new_context, tenant_id, shots):
    page = new_context().new_page()
    open_link(page, stack.mint_link(tenant_id()))
    bad = axe_violations(page)
    assert not bad, "not activated:\n" + describe(bad)

    tenant_url, token = activate(page)
    bad = axe_violations(page)
    assert not bad, "token page:\n" + describe(bad)

    scim = Scim(tenant_url, token)
    for u in (EntraUser("Ada", "Lovelace"), EntraUser("Alan", "Turing")):
        scim.create_user(u)
    page.goto("/portal/")
    shots.take(page, "main-page")
    bad = axe_violations(page)
    assert not bad, "main page:\n" + describe(bad)

    page.goto("/portal/revoke")
    bad = axe_violations(page)
    assert not bad, "revoke confirmation:\n" + describe(bad)


def test_form_controls_have_labels(stack, new_context, tenant_id):
    page = new_context().new_page()
    open_link(page, stack.mint_link(tenant_id()))
    activate(page)
    page.goto("/portal/")
    unlabelled = page.evaluate(
        """() => [...document.querySelectorAll('input, select, textarea')]
            .filter(e => e.type !== 'hidden' && e.type !== 'submit')
            .filter(e => !(e.labels && e.labels.length) && !e.getAttribute('aria-label')
                         && !e.getAttribute('aria-labelledby'))
            .map(e => e.outerHTML)"""
    )
    assert not unlabelled, f"form controls without a label: {unlabelled}"


def test_activation_works_from_the_keyboard(stack, new_context, tenant_id):
    page = new_context().new_page()
    open_link(page, stack.mint_link(tenant_id()))
    for _ in range(60):
        page.keyboard.press("Tab")
        focused = page.evaluate("document.activeElement && document.activeElement.textContent")
        if focused and "Activate user provisioning" in focused:
            break
    else:
        raise AssertionError("Tab never reached the 'Activate user provisioning' button")
    page.keyboard.press("Enter")
    page.locator("#api-token").wait_for()
