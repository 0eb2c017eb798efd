"""Which network addresses a URL given by a stranger may make us connect to.

Search by URL lets anyone on the internet choose where the server connects. Without care that reaches the
machine itself, the private network around it and cloud metadata services (server-side request forgery).
The rule here: a host is reduced to the IP addresses we would really connect to, the way the operating
system would read it (so 2130706433, 0x7f.1 and 0177.0.0.1 are all 127.0.0.1), and every one of them must be
a global unicast address. The caller then connects to one of those addresses, never to the name again, so a
DNS answer cannot change between the check and the connection.
"""

import ipaddress
import socket
from dataclasses import dataclass
from urllib.parse import urlsplit

from catalog.errors import Refusal

DEFAULT_PORTS = {"http": 80, "https": 443}

# IPv6 prefixes that carry an IPv4 address inside: the IPv4 address is where the packets end up.
NAT64 = ipaddress.ip_network("64:ff9b::/96")
NAT64_LOCAL = ipaddress.ip_network("64:ff9b:1::/48")


class AddressRefused(Refusal):
    """A URL we will not fetch; the message is meant for the person who gave it."""


@dataclass(frozen=True)
class Target:
    """Where to connect for one URL: the validated addresses and what to say in Host and SNI."""

    scheme: str
    host: str  # as written in the URL, lower case, IDNA, without a trailing dot
    port: int
    addresses: tuple  # ipaddress objects, each checked
    path: str  # path and query, as sent on the request line

    @property
    def host_header(self):
        host = f"[{self.host}]" if ":" in self.host else self.host
        return host if self.port == DEFAULT_PORTS[self.scheme] else f"{host}:{self.port}"


def parse_url(url):
    """Split a URL into (scheme, host, port, path), refusing anything but plain http(s) URLs."""
    if not isinstance(url, str) or not url or len(url) > 2048:
        raise AddressRefused("url_invalid", "The address is empty or too long.")
    if any(ord(c) <= 32 or ord(c) == 127 or c == "\\" for c in url):
        raise AddressRefused("url_invalid", "The address contains spaces, control characters or backslashes.")
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme not in DEFAULT_PORTS:
        raise AddressRefused("url_scheme", "Only http:// and https:// addresses can be fetched.")
    if "@" in parts.netloc:
        # Nobody needs credentials to fetch a public picture, and user@host is a classic way to mislead.
        raise AddressRefused("url_invalid", "Addresses with a user name or password are not accepted.")
    try:
        port = parts.port or DEFAULT_PORTS[scheme]
    except ValueError:
        raise AddressRefused("url_invalid", "The address has an invalid port.") from None
    host = normalise_host(parts.hostname or "")
    path = parts.path or "/"
    if parts.query:
        path += "?" + parts.query
    return scheme, host, port, path


def normalise_host(host):
    """Lower case, IDNA-encoded, without the trailing dot(s) that name the DNS root."""
    host = host.strip().rstrip(".").lower()
    if not host:
        raise AddressRefused("url_invalid", "The address has no host name.")
    if ":" in host:  # an IPv6 literal (urlsplit already removed the brackets)
        return host
    try:
        return host.encode("idna").decode("ascii")
    except UnicodeError:
        raise AddressRefused("url_invalid", "The host name is not a valid domain name.") from None


def literal_address(host):
    """The IP address a host spells directly, in any form the C library accepts, or None for a name."""
    try:
        return ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        pass
    # inet_aton reads the historical forms: 2130706433, 0x7f000001, 0177.0.0.1, 127.1. Only strings of
    # digits, hex letters, x and dots can be one; anything else is a DNS name and goes to the resolver.
    if host and all(c in "0123456789abcdefx." for c in host):
        try:
            return ipaddress.IPv4Address(socket.inet_aton(host))
        except OSError:
            return None
    return None


def embedded_ipv4(address):
    """The IPv4 address an IPv6 address stands for (mapped, compatible, 6to4, Teredo, NAT64), if any."""
    if address.version != 6:
        return None
    if address.ipv4_mapped:
        return address.ipv4_mapped
    if address.sixtofour:
        return address.sixtofour
    if address.teredo:
        return address.teredo[1]
    if address in NAT64 or address in NAT64_LOCAL:
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    if int(address) >> 32 == 0 and int(address) > 1:  # deprecated IPv4-compatible ::a.b.c.d
        return ipaddress.IPv4Address(int(address))
    return None


def is_public(address):
    """True only for global unicast addresses: no loopback, private, link-local, multicast, reserved..."""
    inner = embedded_ipv4(address)
    if inner is not None and not is_public(inner):
        return False
    return address.is_global and not (
        address.is_multicast
        or address.is_private
        or address.is_loopback
        or address.is_link_local
        or address.is_reserved
        or address.is_unspecified
        or (address.version == 6 and address.is_site_local)
    )


def resolve(host, port):
    """Every address the host stands for: itself if it is an IP literal, else what DNS answers."""
    literal = literal_address(host)
    if literal is not None:
        return (literal,)
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError, OSError):
        raise AddressRefused("url_unresolvable", f"The host name {host!r} could not be found.") from None
    addresses = []
    for _family, _type, _proto, _name, sockaddr in infos:
        address = ipaddress.ip_address(sockaddr[0].split("%", 1)[0])
        if address not in addresses:
            addresses.append(address)
    if not addresses:
        raise AddressRefused("url_unresolvable", f"The host name {host!r} could not be found.")
    return tuple(addresses)


def check_url(url, allowed_private=()):
    """The Target to connect to for url, after checking every address it resolves to.

    allowed_private: "host:port" strings let through even when their addresses are not public (tests).
    Raises AddressRefused.
    """
    scheme, host, port, path = parse_url(url)
    if port not in DEFAULT_PORTS.values() and f"{host}:{port}" not in allowed_private:
        raise AddressRefused("url_port", "Only the standard web ports (80 and 443) can be fetched.")
    addresses = resolve(host, port)
    if f"{host}:{port}" not in allowed_private and not all(is_public(a) for a in addresses):
        # One bad address is enough: we must not leave it to chance which one the connection uses.
        raise AddressRefused(
            "url_forbidden", "That address points to a private or local network, which is not allowed."
        )
    return Target(scheme, host, port, addresses, path)
