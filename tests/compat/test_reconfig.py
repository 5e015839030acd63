"""reconfig (opcode 16) on a standalone server, differential against ZooKeeper 3.8 (the
ensemble cases are in tests/ensemble/test_reconfig.py).

Without `reconfigEnabled` both answer ReconfigDisabled before looking at the request
(PrepRequestProcessor), whatever the caller's rights, and `/zookeeper/config` stays as it is:
empty, version 0, aversion -1, world READ.
"""

from kazoo.exceptions import KazooException

from harness import scenario


@scenario
def test_reconfig_on_a_standalone_server_is_disabled(env):
    c = env.kazoo()
    for label, kwargs in (
            ("leaving", dict(joining=None, leaving="1", new_members=None)),
            ("joining", dict(joining="server.2=127.0.0.1:1:2;3", leaving=None, new_members=None)),
            ("new-members", dict(joining=None, leaving=None, new_members="garbage")),
    ):
        try:
            c.reconfig(**kwargs)
            outcome = "ok"
        except KazooException as e:
            outcome = type(e).__name__
        assert env.rec(label, outcome) == "ReconfigDisabledError"
    data, stat = c.get("/zookeeper/config")
    acl, _ = c.get_acls("/zookeeper/config")
    env.rec("config", data, stat.version, stat.aversion, stat.mzxid,
            [(a.perms, a.id.scheme, a.id.id) for a in acl])
    assert data == b""
