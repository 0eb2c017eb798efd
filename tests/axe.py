"""axe-core (npm, installed by `make axe`) run in a Playwright page: the accessibility rules every page
is held to. Missing, it skips a test on a developer's machine and fails it in CI (CI=true)."""

import os
from pathlib import Path

import pytest

AXE_SCRIPT = Path(__file__).resolve().parent.parent / "node_modules" / "axe-core" / "axe.min.js"
# axe's own scale: minor, moderate, serious, critical. The pages are held at none of the last two.
FAILING_IMPACTS = ("serious", "critical")

RUN_AXE = """async () => {
    const results = await axe.run(document, {resultTypes: ["violations"]});
    return results.violations;
}"""


def axe_script_or_skip():
    """The path of axe.min.js."""
    if not AXE_SCRIPT.is_file():
        if os.environ.get("CI"):
            pytest.fail(f"axe-core is not installed at {AXE_SCRIPT}, and CI must have it (make axe)")
        pytest.skip("axe-core is not installed (make axe)")
    return AXE_SCRIPT


def axe_context(browser, **options):
    """A browser context whose pages can run axe.

    The pages' Content-Security-Policy (script-src 'self') refuses the inline script tag that
    page.add_script_tag makes of axe, so the context that checks them ignores the policy; the policy
    itself is tested in tests/test_security.py."""
    axe_script_or_skip()
    return browser.new_context(bypass_csp=True, **options)


def serious_violations(page):
    """axe's violations of serious or critical impact on the page as it is now."""
    page.add_script_tag(path=str(axe_script_or_skip()))
    violations = page.evaluate(RUN_AXE)
    return [violation for violation in violations if violation["impact"] in FAILING_IMPACTS]


def describe(violations):
    """One line per failing element: rule, impact, the element, and what axe says is wrong with it."""
    lines = []
    for violation in violations:
        for node in violation["nodes"]:
            summary = " ".join((node.get("failureSummary") or violation["help"]).split())
            lines.append(f"{violation['id']} ({violation['impact']}) at {node['target']}: {summary}")
    return "\n".join(lines)


def assert_no_serious_violations(page):
    violations = serious_violations(page)
    assert not violations, f"axe on {page.url}:\n{describe(violations)}"
