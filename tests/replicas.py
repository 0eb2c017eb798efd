"""Read replicas for tests: two more database aliases, added before the test database is made.

- READ_ONLY: a connection of its own to the test database itself, in read-only transactions: a write
  misrouted to it fails, and it sees only what the primary committed (use transaction=True).
- UNREACHABLE: a closed port on loopback.

Both are test mirrors of the primary (Django makes no database for them). Search uses them only when a
test names them in settings.REVIMG_SEARCH_REPLICAS, and a test can touch them only when it lists them in
its databases.
"""

import copy

from tests.app_server import free_loopback_port

READ_ONLY = "replica_1"
UNREACHABLE = "replica_down"


def add_test_replicas(connections):
    primary = connections["default"].settings_dict
    read_only = _mirror_of(primary)
    read_only["OPTIONS"]["options"] = "-c default_transaction_read_only=on"
    unreachable = _mirror_of(primary)
    unreachable.update(ENGINE="revimg.postgres", HOST="127.0.0.1", PORT=str(free_loopback_port()))
    unreachable["OPTIONS"]["connect_timeout"] = 5
    connections.settings[READ_ONLY] = read_only
    connections.settings[UNREACHABLE] = unreachable


def _mirror_of(primary):
    settings = copy.deepcopy(primary)
    settings["TEST"] = dict(settings["TEST"], MIRROR="default")
    return settings
