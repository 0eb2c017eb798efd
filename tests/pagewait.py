"""Waiting in the browser until an expression about the page is true, under the page's Content-Security-Policy.

Playwright's wait_for_function polls by evaluating its string inside the page, which the policy (no
'unsafe-eval') refuses as soon as the first check comes out false; page.evaluate goes through the DevTools
protocol, which the policy does not govern.
"""

import time


def wait_until_true(page, expression, timeout=30.0):
    deadline = time.monotonic() + timeout
    while not page.evaluate(expression):
        if time.monotonic() > deadline:
            raise AssertionError(f"still false after {timeout:.0f} s: {expression}")
        page.wait_for_timeout(50)
