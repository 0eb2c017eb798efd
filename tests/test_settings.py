"""Settings come from the environment and refuse bad values loudly."""

import secrets
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
from django.core.exceptions import ImproperlyConfigured

from revimg.env import env_bool, env_float, env_int, env_list
from revimg.settings import installation_secret


def test_booleans_accept_the_usual_spellings_and_refuse_others(monkeypatch):
    monkeypatch.setenv("X_FLAG", "yes")
    assert env_bool("X_FLAG") is True
    monkeypatch.setenv("X_FLAG", "0")
    assert env_bool("X_FLAG", True) is False
    monkeypatch.setenv("X_FLAG", "maybe")
    with pytest.raises(ImproperlyConfigured, match="X_FLAG"):
        env_bool("X_FLAG")


def test_integers_refuse_words_and_values_below_the_minimum(monkeypatch):
    monkeypatch.setenv("X_NUM", "twenty")
    with pytest.raises(ImproperlyConfigured, match="X_NUM must be an integer"):
        env_int("X_NUM", 1)
    monkeypatch.setenv("X_NUM", "0")
    with pytest.raises(ImproperlyConfigured, match="at least 1"):
        env_int("X_NUM", 1, minimum=1)
    monkeypatch.delenv("X_NUM")
    assert env_int("X_NUM", 7) == 7


def test_lists_are_comma_separated_and_trimmed(monkeypatch):
    monkeypatch.setenv("X_LIST", " a.example:80, ,b.example:8080 ")
    assert env_list("X_LIST") == ["a.example:80", "b.example:8080"]


def test_numbers_refuse_words(monkeypatch):
    monkeypatch.setenv("X_SECONDS", "soon")
    with pytest.raises(ImproperlyConfigured, match="X_SECONDS must be a number"):
        env_float("X_SECONDS", 1.0)
    monkeypatch.setenv("X_SECONDS", "0.5")
    assert env_float("X_SECONDS", 1.0) == 0.5


def test_an_installation_makes_its_secret_once_and_keeps_it_private(tmp_path):
    path = tmp_path / "data" / "secret_key"

    first = installation_secret(path)

    assert len(first) >= 50
    assert installation_secret(path) == first
    assert path.stat().st_mode & 0o777 == 0o600
    assert installation_secret(tmp_path / "other" / "secret_key") != first


def test_first_starts_racing_on_a_fresh_data_dir_all_read_one_whole_secret(tmp_path, monkeypatch):
    path = tmp_path / "data" / "secret_key"
    starters = 16
    together = threading.Barrier(starters)
    make_secret = secrets.token_urlsafe

    def slow_secret(size):  # widens the window between claiming the file and filling it
        time.sleep(0.05)
        return make_secret(size)

    monkeypatch.setattr(secrets, "token_urlsafe", slow_secret)

    def start(_):
        together.wait()
        return installation_secret(path)

    with ThreadPoolExecutor(starters) as pool:
        keys = set(pool.map(start, range(starters)))

    assert len(keys) == 1 and len(keys.pop()) >= 50
    assert [p.name for p in path.parent.iterdir()] == ["secret_key"]  # no temporary file left behind


def test_an_empty_secret_file_is_refused_not_used(tmp_path):
    path = tmp_path / "secret_key"
    path.write_text("")
    with pytest.raises(ImproperlyConfigured, match="empty"):
        installation_secret(path)
