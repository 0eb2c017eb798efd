"""The admin login locks after repeated wrong passwords (django-axes): per username, and per client address.

Either count reaching the limit locks: a guessed-at account from every address, and a guessing address for
every account. Counts live in the database (axes' AccessAttempt); time is moved by ageing those rows.
"""

from datetime import timedelta

import pytest
from axes.models import AccessAttempt
from django.db.models import F
from django.http import HttpRequest
from django.test import Client

pytestmark = pytest.mark.django_db

LOGIN = "/admin/login/"
PASSWORD = "a long password nobody guesses"
HOME = "198.51.100.7"
ELSEWHERE = "198.51.100.99"


@pytest.fixture(autouse=True)
def quick_passwords(settings):
    # Dozens of logins: a fast hasher keeps the file quick; lockout does not depend on the hash.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def curator(django_user_model):
    return django_user_model.objects.create_superuser("curator", "curator@example.org", PASSWORD)


@pytest.fixture
def editor(django_user_model):
    return django_user_model.objects.create_superuser("editor", "editor@example.org", PASSWORD)


def log_in(username, password, address=HOME, forwarded_for=None):
    """One login form post from a fresh browser at address."""
    headers = {"x-forwarded-for": forwarded_for} if forwarded_for else {}
    client = Client(REMOTE_ADDR=address)
    return client.post(
        LOGIN, {"username": username, "password": password, "next": "/admin/"}, headers=headers
    )


def logged_in(response):
    return response.status_code == 302 and response.headers["Location"] == "/admin/"


def locked_out(response):
    return response.status_code == 429 and "Too many wrong passwords were tried" in response.content.decode()


def fail_until_the_limit(settings, usernames, addresses):
    for username, address in zip(usernames, addresses, strict=True):
        response = log_in(username, "a wrong guess", address)
    assert len(usernames) == settings.AXES_FAILURE_LIMIT
    return response


def age_attempts(delta):
    AccessAttempt.objects.update(attempt_time=F("attempt_time") - delta)


def test_after_the_limit_of_wrong_passwords_even_the_right_one_is_refused(curator, settings):
    limit = settings.AXES_FAILURE_LIMIT
    assert [log_in("curator", f"guess {i}").status_code for i in range(limit - 1)] == [200] * (limit - 1)

    assert locked_out(log_in("curator", "guess"))  # the limit-th wrong password locks at once
    refused = log_in("curator", PASSWORD)

    assert locked_out(refused)
    assert "wait 15 minutes" in refused.content.decode()


def test_a_locked_username_is_locked_from_every_address_and_other_users_are_not(curator, editor, settings):
    addresses = [f"203.0.113.{i}" for i in range(settings.AXES_FAILURE_LIMIT)]  # none reaches the limit
    fail_until_the_limit(settings, ["curator"] * len(addresses), addresses)

    assert locked_out(log_in("curator", PASSWORD, ELSEWHERE))
    assert logged_in(log_in("editor", PASSWORD, addresses[0]))


def test_a_locked_address_is_locked_for_every_username_and_other_addresses_are_not(curator, settings):
    usernames = [f"guess{i}" for i in range(settings.AXES_FAILURE_LIMIT)]  # none reaches the limit
    fail_until_the_limit(settings, usernames, [HOME] * len(usernames))

    assert locked_out(log_in("curator", PASSWORD, HOME))
    assert logged_in(log_in("curator", PASSWORD, ELSEWHERE))


def test_the_lock_lifts_after_the_cool_off_and_trying_sooner_restarts_it(curator, settings):
    fail_until_the_limit(
        settings, ["curator"] * settings.AXES_FAILURE_LIMIT, [HOME] * settings.AXES_FAILURE_LIMIT
    )
    cool_off = settings.AXES_COOLOFF_TIME
    assert cool_off == timedelta(minutes=15)

    age_attempts(cool_off - timedelta(minutes=1))
    assert locked_out(log_in("curator", PASSWORD))
    age_attempts(timedelta(minutes=2))  # longer than the cool-off since the lock, not since the last try
    assert locked_out(log_in("curator", PASSWORD))

    age_attempts(cool_off)
    assert logged_in(log_in("curator", PASSWORD))


def test_a_successful_login_forgets_the_earlier_wrong_passwords(curator, settings):
    for _round in range(2):
        for i in range(settings.AXES_FAILURE_LIMIT - 1):
            log_in("curator", f"guess {i}")
        assert logged_in(log_in("curator", PASSWORD))


def test_a_forged_forwarded_for_does_not_escape_the_address_lock(curator, settings):
    settings.REVIMG_TRUSTED_PROXIES = 0
    for i in range(settings.AXES_FAILURE_LIMIT):
        log_in(f"guess{i}", "a wrong guess", HOME, forwarded_for=f"192.0.2.{i}")

    assert locked_out(log_in("curator", PASSWORD, HOME, forwarded_for="192.0.2.200"))


def test_behind_a_trusted_proxy_each_forwarded_client_is_counted_apart(curator, settings):
    settings.REVIMG_TRUSTED_PROXIES = 1
    proxy = "10.0.0.1"
    for i in range(settings.AXES_FAILURE_LIMIT):
        log_in(f"guess{i}", "a wrong guess", proxy, forwarded_for=f"192.0.2.{i}, 203.0.113.5")

    assert locked_out(log_in("curator", PASSWORD, proxy, forwarded_for="203.0.113.5"))
    assert logged_in(log_in("curator", PASSWORD, proxy, forwarded_for="203.0.113.6"))


def test_tests_log_in_with_force_login_or_with_a_request(client, curator):
    """Axes needs the request to count by address: the test client's login() must pass one."""
    assert client.login(request=HttpRequest(), username="curator", password=PASSWORD)
    assert client.get("/admin/").status_code == 200

    other = Client()
    other.force_login(curator)
    assert other.get("/admin/").status_code == 200
