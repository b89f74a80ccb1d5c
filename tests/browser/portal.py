"""What a person does on the User Provisioning page, and what an identity
provider (Microsoft Entra ID) sends to the SCIM API, as small helpers.

The selectors are the page contract of issue #11 (see the module docstrings of
the tests): ids `#status`, `#api-token`, `#preview`, `#changes`, ... ."""

from __future__ import annotations

import json
import re
import time
import urllib.error
import urllib.request
import uuid
from dataclasses import dataclass

from playwright.sync_api import Page, expect

SECTIONS = ["#connect", "#preview", "#mapping", "#members", "#history", "#activity"]
STATUS_TEXTS = {
    "Not activated",
    "Active",
    "Active — waiting for your identity provider",
}


def open_link(page: Page, url: str):
    """Opens a one-time link as a person would (following redirects);
    returns (status of the link's own response, the final response)."""
    resp = page.goto(url)
    assert resp is not None, f"no response for {url}"
    req = resp.request
    while req.redirected_from is not None:
        req = req.redirected_from
    first = req.response()
    return (first.status if first else resp.status), resp


def h1(page: Page) -> str:
    """The page's heading: the text of its <h1>. Several <h1> elements are
    reported as such (the contract names one), joined with " | "."""
    return " | ".join(t.strip() for t in page.locator("h1").all_inner_texts())


def has_heading(page: Page, text: str) -> bool:
    return text in [t.strip() for t in page.locator("h1").all_inner_texts()]


def status(page: Page) -> str:
    return page.locator("#status").inner_text().strip()


def activate(page: Page) -> tuple[str, str]:
    """Clicks "Activate user provisioning"; returns (tenant URL, API token)
    as read from the page that shows the token once."""
    page.get_by_role("button", name="Activate user provisioning").click()
    return read_token_page(page)


def read_token_page(page: Page) -> tuple[str, str]:
    token = page.locator("#api-token")
    expect(token).to_be_visible()
    assert token.get_attribute("readonly") is not None, "#api-token is not readonly"
    tenant_url = page.locator("#tenant-url")
    expect(tenant_url).to_be_visible()
    assert tenant_url.get_attribute("readonly") is not None, "#tenant-url is not readonly"
    return tenant_url.input_value(), token.input_value()


def csrf_value(page: Page) -> str:
    return page.locator("input[name=csrf]").first.get_attribute("value") or ""


def count(page: Page, tile: str) -> str:
    return page.locator(f"#count-{tile}").inner_text().strip()


def change_rows(page: Page) -> list[str]:
    """The text of each `#changes` row, with any collapsed details (an
    update's "What changes") opened first, as a person would click them."""
    closed = page.locator("#changes tr.change details:not([open]) > summary")
    for _ in range(100):
        if not closed.count():
            break
        closed.first.click()
    return [t.strip() for t in page.locator("#changes tr.change").all_inner_texts()]


def member_rows(page: Page) -> list[str]:
    rows = page.locator("#members-table tbody tr").all_inner_texts()
    return [t.strip() for t in rows]


def mapping_rows(page: Page) -> list[tuple[str, str]]:
    """(path, property) of each non-empty mapping row."""
    out = []
    for row in page.locator("tr.mapping-row").all():
        path = row.locator("input[name=path]").input_value()
        prop = row.locator("input[name=property]").input_value()
        if path or prop:
            out.append((path, prop))
    return out


def fill_empty_mapping_row(page: Page, path: str, prop: str) -> None:
    for row in page.locator("tr.mapping-row").all():
        p = row.locator("input[name=path]")
        q = row.locator("input[name=property]")
        if not p.input_value() and not q.input_value():
            p.fill(path)
            q.fill(prop)
            return
    raise AssertionError("#mapping has no empty row to add an entry")


def last_sync(page: Page) -> str:
    loc = page.locator("#last-sync")
    return loc.inner_text().strip() if loc.count() else ""


def last_sync_counts(page: Page) -> str:
    """`#last-sync` without its timestamp (a <time> element, if any): where
    the report's counts must be."""
    loc = page.locator("#last-sync")
    return loc.evaluate(
        """e => { const c = e.cloneNode(true);
                  c.querySelectorAll('time').forEach(t => t.remove());
                  return c.textContent.replace(/\\s+/g, ' ').trim(); }"""
    )


def synchronize(page: Page, timeout_s: float = 60) -> str:
    """Clicks Synchronize and waits (reloading, as a person would) until
    `#last-sync` shows a new, finished report; returns its text."""
    before = last_sync(page)
    page.get_by_role("button", name="Synchronize", exact=True).click()
    page.wait_for_load_state()
    deadline = time.monotonic() + timeout_s
    while True:
        text = last_sync(page)
        if (
            text != before
            and re.search(r"Last synchronized", text)
            and not re.search(r"running|in progress", text, re.I)
        ):
            return text
        if time.monotonic() > deadline:
            raise AssertionError(
                f"no new sync report in #last-sync after {timeout_s:.0f}s: {text!r} (before: {before!r})"
            )
        time.sleep(1)
        page.goto("/portal/")


@dataclass
class EntraUser:
    given: str
    family: str
    title: str = "Engineer"

    def __post_init__(self) -> None:
        self.external_id = str(uuid.uuid4())  # Entra's objectId
        self.user_name = f"{self.given.lower()}.{self.family.lower()}@contoso.example"
        self.id: str | None = None

    @property
    def display(self) -> str:
        return f"{self.given} {self.family}"

    def body(self) -> dict:
        """A POST /Users body as Entra ID sends it."""
        return {
            "schemas": [
                "urn:ietf:params:scim:schemas:core:2.0:User",
                "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User",
            ],
            "externalId": self.external_id,
            "userName": self.user_name,
            "active": True,
            "displayName": self.display,
            "title": self.title,
            "emails": [{"primary": True, "type": "work", "value": self.user_name}],
            "name": {
                "formatted": self.display,
                "familyName": self.family,
                "givenName": self.given,
            },
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {
                "department": "Sales"
            },
        }


class Scim:
    """A SCIM client with the tenant's bearer token (what Entra ID does)."""

    def __init__(self, tenant_url: str, token: str) -> None:
        self.base = tenant_url.rstrip("/")
        self.token = token

    def call(self, method: str, path: str, body: dict | None = None) -> tuple[int, dict]:
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(
            self.base + path,
            data=data,
            method=method,
            headers={
                "Authorization": f"Bearer {self.token}",
                "Content-Type": "application/scim+json",
                "Accept": "application/scim+json",
            },
        )
        try:
            with urllib.request.urlopen(req, timeout=30) as resp:
                raw = resp.read()
                return resp.status, json.loads(raw) if raw else {}
        except urllib.error.HTTPError as e:
            raw = e.read()
            try:
                return e.code, json.loads(raw) if raw else {}
            except ValueError:
                return e.code, {"raw": raw.decode(errors="replace")}

    def create_user(self, user: EntraUser) -> None:
        code, doc = self.call("POST", "/Users", user.body())
        assert code == 201, f"POST /Users {user.user_name}: {code} {doc}"
        user.id = doc["id"]

    def disable_user(self, user: EntraUser) -> None:
        """Entra's way of disabling a user: Replace active with the string "False"."""
        code, doc = self.call(
            "PATCH",
            f"/Users/{user.id}",
            {
                "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
                "Operations": [{"op": "Replace", "path": "active", "value": "False"}],
            },
        )
        assert code in (200, 204), f"PATCH active=False {user.user_name}: {code} {doc}"

    def create_group(self, name: str, members: list[EntraUser]) -> str:
        """Entra creates the group, then adds its members with a PATCH."""
        code, doc = self.call(
            "POST",
            "/Groups",
            {
                "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"],
                "externalId": str(uuid.uuid4()),
                "displayName": name,
                "members": [],
            },
        )
        assert code == 201, f"POST /Groups {name}: {code} {doc}"
        gid = doc["id"]
        code, doc = self.call(
            "PATCH",
            f"/Groups/{gid}",
            {
                "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
                "Operations": [
                    {"op": "Add", "path": "members", "value": [{"value": u.id} for u in members]}
                ],
            },
        )
        assert code in (200, 204), f"PATCH /Groups/{gid} add members: {code} {doc}"
        return gid
