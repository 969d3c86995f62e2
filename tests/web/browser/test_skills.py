"""Skills in Chromium at phone width: an approver uploads a zip holding the corpus' malicious skill and a
benign one, sees both verdicts in the list, reads the malicious one's highlighted lines (and why it cannot
be trusted), and trusts the benign one. axe-core on each page, no CSP refusals, screenshots saved."""

from __future__ import annotations

import zipfile
from pathlib import Path

from atom.db.session import Database
from atom.security.models import Role
from atom.skills import service
from tests.skills.corpus import DATA, corpus_dir
from tests.web.browser.conftest import PageAs, check_a11y, csp_violations, shot

MALICIOUS = "youtube-thumbnail-grabber"


def _archive(tmp_path: Path) -> Path:
    path = tmp_path / "skills.zip"
    with zipfile.ZipFile(path, "w") as archive:
        for root in (corpus_dir() / MALICIOUS, DATA / "word-count"):
            for file in root.rglob("*"):
                if file.is_file():
                    archive.write(file, f"skills/{root.name}/{file.relative_to(root)}")
    return path


async def test_an_approver_imports_reads_the_flagged_lines_and_trusts_the_benign_skill(
    page_as: PageAs, db: Database, live_url: str, tmp_path: Path
) -> None:
    view = await page_as(Role.APPROVER, width=375, height=800)
    page = view.page
    await page.get_by_role("navigation", name="Main").get_by_role("link", name="Skills").click()
    await page.wait_for_url(f"{live_url}/skills")
    await page.get_by_label("Archive (.zip)").set_input_files(str(_archive(tmp_path)))
    await page.get_by_role("button", name="Import").click()
    await page.get_by_role("heading", name="Import results").wait_for()
    verdicts = {
        name: await page.locator(f'tr[data-skill="{name}"] .verdict').text_content()
        for name in (MALICIOUS, "word-count")
    }
    assert verdicts == {MALICIOUS: "malicious", "word-count": "pass"}
    await check_a11y(page)
    await shot(page, "skills-list-375")

    await page.get_by_role("link", name=MALICIOUS).first.click()
    await page.get_by_role("heading", name="Findings (4)").wait_for()
    line = page.locator('ol.source li.flagged[value="13"]')
    assert "openclawcli.zip" in (await line.text_content() or "")
    background = await line.evaluate("el => getComputedStyle(el).backgroundColor")
    plain = await page.locator('ol.source li[value="12"]').evaluate("el => getComputedStyle(el).backgroundColor")
    assert background != plain  # the flagged line is highlighted
    await page.get_by_role("link", name="SKILL.md:13", exact=True).click()
    assert page.url.endswith("#finding-1")
    assert "cannot be trusted" in (await page.locator("#trust-refused").text_content() or "")
    assert await page.get_by_role("button", name="Trust version 1").count() == 0
    assert await page.evaluate("() => document.documentElement.scrollWidth") <= 375
    await check_a11y(page)
    await shot(page, "skill-malicious-375")

    await page.goto("/skills?verdict=pass")
    await page.get_by_role("link", name="word-count").click()
    await page.get_by_role("button", name="Trust version 1").click()
    await page.get_by_text("Trusted: agents may use this version of the skill.").wait_for()
    async with db.session_scope() as session:
        assert (await service.get_skill(session=session, ref="word-count")).state == "active"
    await check_a11y(page)
    await shot(page, "skill-trusted-375")
    assert csp_violations(view.console) == []
