"""Typed readers of environment variables that fail loudly (ImproperlyConfigured) on a bad value.

Shared by the settings and by gunicorn.conf.py (revimg.serving), which must read its own variables
before the settings are loaded.
"""

import ipaddress
import math
import os
import re

from django.core.exceptions import ImproperlyConfigured


def env_str(name, default=""):
    return os.environ.get(name, default)


def env_bool(name, default=False):
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    if value.lower() in ("1", "true", "yes", "on"):
        return True
    if value.lower() in ("0", "false", "no", "off"):
        return False
    raise ImproperlyConfigured(f"{name} must be a boolean (1/0, true/false), got {value!r}")


def env_choice(name, default, choices):
    value = os.environ.get(name) or default
    if value not in choices:
        raise ImproperlyConfigured(f"{name} must be one of {', '.join(choices)}, got {value!r}")
    return value


def env_int(name, default, minimum=None):
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    try:
        number = int(value)
    except ValueError:
        raise ImproperlyConfigured(f"{name} must be an integer, got {value!r}") from None
    if minimum is not None and number < minimum:
        raise ImproperlyConfigured(f"{name} must be at least {minimum}, got {number}")
    return number


def env_float(name, default, minimum=None):
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    try:
        number = float(value)
    except ValueError:
        raise ImproperlyConfigured(f"{name} must be a number, got {value!r}") from None
    if not math.isfinite(number):  # float() reads "nan" and "inf", which no setting means
        raise ImproperlyConfigured(f"{name} must be a finite number, got {value!r}")
    if minimum is not None and number < minimum:
        raise ImproperlyConfigured(f"{name} must be at least {minimum}, got {number}")
    return number


def env_list(name, default=""):
    return [item.strip() for item in env_str(name, default).split(",") if item.strip()]


def env_networks(name, default=""):
    """Comma-separated addresses or CIDR networks (an address alone is a network of one)."""
    networks = []
    for item in env_list(name, default):
        try:
            networks.append(ipaddress.ip_network(item))
        except ValueError as exc:
            raise ImproperlyConfigured(
                f"{name} must list addresses or networks such as 10.0.0.0/8: {exc}"
            ) from None
    return networks


def env_rate(name, default):
    """A DRF throttle rate such as 30/minute; empty means no limit (None)."""
    rate = env_str(name, default) or None
    if rate and not re.fullmatch(r"[1-9][0-9]*/(s|sec|second|m|min|minute|h|hour|d|day)", rate):
        raise ImproperlyConfigured(f"{name} must look like 30/minute, got {rate!r}")
    return rate
