"""The embedded server's network access: whom it listens to over TCP, and how they must authenticate.

By default it listens on its unix socket only, for the processes of this machine (trusted: they share the
data dir anyway). For a small installation whose app servers or workers run on other machines, it can also
listen on TCP addresses (REVIMG_EMBEDDED_PG_LISTEN); then every TCP client must give the postgres role's
password (SCRAM), and only clients from the allowed networks may try. The settings apply at each start of
the server: listen addresses and port as command-line options of the server, pg_hba.conf rewritten, the
password set on the role.
"""

import ipaddress
import os
import socket
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote

from django.core.exceptions import ImproperlyConfigured

DEFAULT_PORT = 5433  # not 5432: a machine's own PostgreSQL often has it
MIN_PASSWORD_LENGTH = 16
WILDCARDS = {"*", "0.0.0.0", "::"}

HBA_HEADER = """\
# Written by revimg at every start of its embedded PostgreSQL (revimg/embedded_pg/network.py): edits are
# lost. Set REVIMG_EMBEDDED_PG_LISTEN / _ALLOWED / _PASSWORD instead, and restart it.
local all all trust
"""


@dataclass(frozen=True)
class Network:
    listen: tuple[str, ...] = ()  # empty: the unix socket only
    port: int = DEFAULT_PORT
    password: str = field(default="", repr=False)
    allowed: tuple = ()  # ipaddress networks

    def pg_ctl_options(self, socket_dir):
        """The server's options for pg_ctl -o: they override any configuration file."""
        if not self.listen:
            return ["-o", '-h ""', "-o", f"-k {socket_dir}"]
        return ["-o", f"-h '{','.join(self.listen)}'", "-o", f"-p {self.port}", "-o", f"-k {socket_dir}"]

    def hba(self):
        lines = [f"host all all {network} scram-sha-256" for network in self.allowed]
        return HBA_HEADER + "".join(line + "\n" for line in lines)

    def database_url(self, name, show_password=False):
        """The DATABASE_URL other machines use to reach database name on this server."""
        password = quote(self.password, safe="") if show_password else "****"
        return f"postgresql://postgres:{password}@{_url_host(self.listen)}:{self.port}/{quote(name)}"


def network_from(listen, port, password, allowed):
    """A Network from the REVIMG_EMBEDDED_PG_* settings (listen: addresses, allowed: ipaddress networks),
    refused (ImproperlyConfigured) when it would open the server to anyone without a good password."""
    if not listen:
        return Network(port=port)
    for address in listen:
        if address not in WILDCARDS:
            _parse_address(address)
    if len(password) < MIN_PASSWORD_LENGTH:
        raise ImproperlyConfigured(
            f"REVIMG_EMBEDDED_PG_LISTEN is set, so the embedded PostgreSQL takes TCP clients: "
            f"REVIMG_EMBEDDED_PG_PASSWORD must be set to a password of at least {MIN_PASSWORD_LENGTH} "
            f"characters (it is {'unset' if not password else 'too short'}). "
            "For instance: python -c 'import secrets; print(secrets.token_urlsafe(24))'"
        )
    if not allowed and WILDCARDS.intersection(listen):
        raise ImproperlyConfigured(
            "REVIMG_EMBEDDED_PG_LISTEN listens on every address: set REVIMG_EMBEDDED_PG_ALLOWED to the client "
            "networks allowed to connect (e.g. 10.0.0.0/24)."
        )
    return Network(tuple(listen), port, password, tuple(allowed or map(own_network, listen)))


def own_network(address):
    """The network of the interface that carries address (127.0.0.1: 127.0.0.0/8), or the address alone."""
    import psutil

    ip = _parse_address(address)
    for addresses in psutil.net_if_addrs().values():
        for entry in addresses:
            if entry.netmask and entry.address.split("%")[0] == str(ip):
                return ipaddress.ip_interface(f"{ip}/{entry.netmask}").network
    return ipaddress.ip_network(ip)


def write_hba(pgdata, network):
    """Replace pg_hba.conf: initdb's trusts every loopback TCP client, which must never be."""
    path = Path(pgdata) / "pg_hba.conf"
    path.write_text(network.hba())
    owner = os.stat(pgdata)  # the server's own user (another one when the app runs as root)
    os.chown(path, owner.st_uid, owner.st_gid)
    path.chmod(0o600)


def set_password(connection, network):
    """Give the postgres role the password TCP clients must give, sent as a SCRAM verifier made here (the
    password itself never reaches the server's statement log)."""
    verifier = connection.pgconn.encrypt_password(network.password.encode(), b"postgres", b"scram-sha-256")
    connection.execute(f"ALTER ROLE postgres PASSWORD '{verifier.decode()}'")


def _parse_address(address):
    try:
        return ipaddress.ip_address(address)
    except ValueError:
        raise ImproperlyConfigured(
            f"REVIMG_EMBEDDED_PG_LISTEN must list IP addresses (or *), got {address!r}"
        ) from None


def _url_host(listen):
    named = [address for address in listen if address not in WILDCARDS]
    host = named[0] if named else socket.getfqdn()
    return f"[{host}]" if ":" in host else host
