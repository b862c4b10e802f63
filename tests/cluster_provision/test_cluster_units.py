"""The cluster model and the renderers, without running anything."""

from __future__ import annotations

import json
import random
import subprocess

import pytest

from provision.cluster import bootstrap, nodes, render
from provision.cluster.nodes import ClusterSpec, Engine, Node, Role
from provision.cluster.remote import NodeResult, Outcome, Target, exit_code, ssh_argv
from provision.errors import UsageError


def _spec(**kw: object) -> ClusterSpec:
    base: dict[str, object] = {"name": "c", "size": 2, "nodes": (Node(0, "10.0.0.1"), Node(1, "10.0.0.2"))}
    base.update(kw)
    return ClusterSpec(**base)  # type: ignore[arg-type]


def test_roles_follow_the_index() -> None:
    spec = nodes.make("c", ["10.0.0.1", "10.0.0.2", "10.0.0.3"])
    assert [n.role for n in spec.nodes] == [Role.HEAD, Role.WORKER, Role.WORKER]
    assert spec.head.address == "10.0.0.1"
    assert spec.ray_address is None
    assert nodes.make("c", ["10.0.0.1"], engine=Engine.RAY, ray_port=7000).ray_address == "10.0.0.1:7000"


@pytest.mark.parametrize(
    ("kw", "message"),
    [
        ({"name": "bad name"}, "bad cluster name"),
        ({"name": "x;rm"}, "bad cluster name"),
        ({"name": ""}, "bad cluster name"),
        ({"size": 0, "nodes": ()}, "size 0"),
        ({"size": True, "nodes": ()}, "size True"),
        ({"size": 100000, "nodes": ()}, "size 100000"),
        ({"size": 3}, "2 nodes listed for a cluster of 3"),
        ({"master_port": 0}, "master port 0"),
        ({"master_port": 70000}, "master port 70000"),
        ({"ray_port": -1}, "ray port -1"),
        ({"engine": Engine.RAY, "master_port": 6379}, "cannot both use port 6379"),
        ({"ray_args": ("--num-cpus=1;reboot",)}, "characters"),
        ({"ray_args": ("$(id)",)}, "characters"),
        ({"launch_id": "a b"}, "bad launch id"),
        ({"nodes": (Node(1, "10.0.0.1"), Node(0, "10.0.0.2"))}, "index 1"),
        ({"nodes": (Node(0, "10.0.0.1", role=Role.WORKER), Node(1, "10.0.0.2"))}, "node 0 is"),
        ({"nodes": (Node(0, "10.0.0.1"), Node(1, "10.0.0.2", role=Role.HEAD))}, "node 1 is"),
        ({"nodes": (Node(0, "10.0.0.1"), Node(1, "10.0.0.1"))}, "share 10.0.0.1"),
        ({"nodes": (Node(0, "fd00::1"), Node(1, "10.0.0.2"))}, "not an IPv4 address"),
        ({"nodes": (Node(0, "10.0.0.1; id"), Node(1, "10.0.0.2"))}, "not an IPv4 address"),
        ({"nodes": (Node(0, "0.0.0.0"), Node(1, "10.0.0.2"))}, "cannot reach a peer"),
        ({"nodes": (Node(0, "224.0.0.1"), Node(1, "10.0.0.2"))}, "cannot reach a peer"),
        ({"nodes": (Node(0, "010.0.0.1"), Node(1, "10.0.0.2"))}, "IPv4"),
        ({"nodes": (Node(0, "10.0.0.1", "a_b"), Node(1, "10.0.0.2"))}, "not a valid hostname"),
        ({"nodes": (Node(0, "10.0.0.1", "-a"), Node(1, "10.0.0.2"))}, "not a valid hostname"),
        ({"nodes": (Node(0, "10.0.0.1", "h.x"), Node(1, "10.0.0.2", "H.y"))}, "share the hostname h"),
    ],
)
def test_a_spec_unsafe_to_render_is_refused(kw: dict[str, object], message: str) -> None:
    with pytest.raises(UsageError, match=message.replace("(", r"\(").replace("$", r"\$")):
        _spec(**kw)


def test_node_list_round_trip_and_parse_errors() -> None:
    spec = nodes.make("c", ["10.0.0.1", "10.0.0.2", "10.0.0.3"], ["a", None, "c.d"])
    text = nodes.node_list(spec)
    assert text == "0 head 10.0.0.1 a\n1 worker 10.0.0.2 -\n2 worker 10.0.0.3 c.d\n"
    assert spec.with_nodes(nodes.parse_node_list("# comment\n\n" + text)) == spec
    for bad in ("", "0 head 10.0.0.1\n", "x head 10.0.0.1 -\n", "0 boss 10.0.0.1 -\n"):
        with pytest.raises(UsageError):
            nodes.parse_node_list(bad)
    with pytest.raises(UsageError, match="not known yet"):
        nodes.node_list(ClusterSpec(name="c", size=2))


def test_with_nodes_is_a_new_validated_value() -> None:
    shape = ClusterSpec(name="c", size=2, engine=Engine.RAY, launch_id="L1")
    done = shape.with_nodes([Node(0, "10.0.0.1"), Node(1, "10.0.0.2")])
    assert shape.nodes == () and done.launch_id == "L1" and done.engine is Engine.RAY
    with pytest.raises(UsageError, match="1 nodes listed"):
        shape.with_nodes([Node(0, "10.0.0.1")])


def test_env_and_json_files() -> None:
    spec = nodes.make("c", ["10.0.0.1", "10.0.0.2"], engine=Engine.RAY, launch_id="L1")
    env = bootstrap.env_file(spec, 1)
    assert "NODE_RANK=1\n" in env and "MASTER_ADDR=10.0.0.1\n" in env and "RAY_ADDRESS=10.0.0.1:6379\n" in env
    assert "MLRIG_NODE_HOSTNAMES" not in env  # no hostnames known: no line
    data = json.loads(bootstrap.json_file(spec, 1))
    assert data == {
        "schema_version": "1.0",
        "cluster": "c",
        "launch_id": "L1",
        "engine": "ray",
        "master_addr": "10.0.0.1",
        "master_port": 29500,
        "nnodes": 2,
        "node_rank": 1,
        "role": "worker",
        "address": "10.0.0.2",
        "ray_address": "10.0.0.1:6379",
        "nodes": [
            {"index": 0, "role": "head", "address": "10.0.0.1", "hostname": None},
            {"index": 1, "role": "worker", "address": "10.0.0.2", "hostname": None},
        ],
    }
    for rank in (-1, 2):
        with pytest.raises(UsageError):
            bootstrap.env_file(spec, rank)


def test_the_script_is_valid_bash_for_random_specs() -> None:
    rng = random.Random(12)
    for _ in range(25):
        n = rng.randint(1, 40)
        addrs = [f"10.{rng.randint(0, 255)}.{k // 250}.{k % 250 + 1}" for k in range(n)]
        hosts = [rng.choice([None, f"h{k}", f"n-{k}.zone.internal"]) for k in range(n)]
        spec = nodes.make(
            rng.choice(["a", "b.c", "x_y-1"]),
            addrs,
            hosts,
            engine=rng.choice(list(Engine)),
            launch_id=rng.choice([None, "abc123"]),
            ray_args=rng.choice([(), ("--num-cpus=1",)]),
        )
        text = bootstrap.script(
            spec, metadata=rng.choice(list(bootstrap.Metadata)), run_as=rng.choice([None, "ubuntu"])
        )
        assert "@@" not in text
        proc = subprocess.run(["bash", "-n"], input=text, capture_output=True, text=True, check=False)
        assert proc.returncode == 0, proc.stderr


@pytest.mark.parametrize(
    "kw",
    [
        {"wait_seconds": -1},
        {"ray_wait_seconds": 10**9},
        {"cluster_dir": "relative"},
        {"cluster_dir": "/a b"},
        {"run_as": "x;y"},
        {"run_as": ""},
    ],
)
def test_bad_script_options_are_refused(kw: dict[str, object]) -> None:
    with pytest.raises(UsageError):
        bootstrap.snippet(_spec(), **kw)  # type: ignore[arg-type]


def _r(index: int, outcome: Outcome, **kw: object) -> NodeResult:
    return NodeResult(index, f"10.0.0.{index + 1}", outcome, **kw)  # type: ignore[arg-type]


def test_ranges() -> None:
    assert render.ranges([0, 1, 2, 5, 7, 8]) == "0-2,5,7-8"
    assert render.ranges([3]) == "3"
    assert render.ranges([]) == ""


def test_text_groups_identical_nodes_and_fits_80_columns() -> None:
    results = [
        _r(0, Outcome.OK, exit_status=0, stdout="GPU 0: H100\n", seconds=0.4),
        _r(1, Outcome.OK, exit_status=0, stdout="GPU 0: H100\n", seconds=0.5),
        _r(2, Outcome.FAILED, exit_status=3, stdout="", stderr="no GPU\n", seconds=0.2),
        _r(3, Outcome.OK, exit_status=0, stdout="GPU 0: H100\n", seconds=0.3),
        _r(4, Outcome.UNREACHABLE, error="connection refused"),
        _r(5, Outcome.TIMEOUT, error="still running after 5s: terminated", stdout="partial\n"),
    ]
    out = render.text(results)
    lines = out.splitlines()
    assert all(len(line) <= 80 for line in lines)
    assert lines[0].startswith("── nodes 0-1,3 (3) · ok · 0.5s ")
    assert out.count("GPU 0: H100") == 1
    assert "── node 2 · 10.0.0.3 · exit 3 · 0.2s" in out
    assert "stderr:\nno GPU" in out
    assert "unreachable: connection refused" in out
    assert lines[-1] == "6 nodes: 3 ok, 1 failed (node 2), 1 timeout (node 5), 1 unreachable (node 4)"
    ungrouped = render.text(results, group=False)
    assert ungrouped.count("GPU 0: H100") == 3


def test_long_headers_are_cut_to_the_width() -> None:
    long = _r(0, Outcome.UNREACHABLE, error="x" * 300)
    assert all(len(line) <= 80 for line in render.text([long]).splitlines()[:1])
    assert max(len(line) for line in render.text([long], width=50).splitlines()[:1]) <= 50


def test_json_and_exit_codes() -> None:
    ok = [_r(0, Outcome.OK, exit_status=0), _r(1, Outcome.OK, exit_status=0)]
    assert exit_code(ok) == 0
    assert exit_code([*ok, _r(2, Outcome.FAILED, exit_status=1)]) == 1
    assert exit_code([*ok, _r(2, Outcome.TIMEOUT)]) == 1
    assert exit_code([*ok, _r(2, Outcome.FAILED, exit_status=1), _r(3, Outcome.UNREACHABLE)]) == 3
    assert exit_code([_r(0, Outcome.LOST)]) == 3
    doc = render.to_json([*ok, _r(2, Outcome.UNREACHABLE, error="refused")], "nvidia-smi -L")
    assert "schema_version" not in doc  # the CLI adds its own
    assert doc["counts"] == {"ok": 2, "failed": 0, "timeout": 0, "unreachable": 1, "lost": 0}
    assert doc["exit_code"] == 3
    assert doc["nodes"][2]["error"] == "refused"
    json.dumps(doc)


def test_ssh_argv() -> None:
    t = Target(2, "10.0.0.3", "ubuntu", port=2222, key_path="/k/id", known_hosts="/k/known", alias="train-2")
    assert ssh_argv(t) == ["ssh", "train-2"]
    assert ssh_argv(t, "hostname") == ["ssh", "train-2", "hostname"]
    full = ssh_argv(t, use_alias=False)
    assert full[:3] == ["ssh", "-p", "2222"]
    assert full[-4:] == ["-l", "ubuntu", "--", "10.0.0.3"]
    assert "UserKnownHostsFile=/k/known" in full and "StrictHostKeyChecking=accept-new" in full
    assert "IdentitiesOnly=yes" in full


class _Chunks:
    """An asyncssh-like stream answering ``read`` with the given chunks, then EOF."""

    def __init__(self, *chunks: bytes) -> None:
        self.chunks = list(chunks)

    async def read(self, _n: int) -> bytes:
        return self.chunks.pop(0) if self.chunks else b""


@pytest.mark.parametrize(
    ("chunks", "want_out", "want_pgid"),
    [
        # a login shell's profile wrote first (three logins at once: pyenv's rehash lock), marker cut
        (
            [b"pyenv: cannot rehash: /root/.pyenv/shims isn't writable\nmlrig-pg", b"id:4242\nto stderr\n"],
            "pyenv: cannot rehash: /root/.pyenv/shims isn't writable\nto stderr\n",
            [4242],
        ),
        ([b"mlrig-pgid:7\n", b"x\n"], "x\n", [7]),
        ([b"no marker, no newline"], "no marker, no newline", []),  # a forced command: all output
        ([b"mlrig-pgid:notanumber\nrest\n"], "mlrig-pgid:notanumber\nrest\n", []),
    ],
)
def test_our_first_stderr_line_is_found_after_login_shell_noise(
    chunks: list[bytes], want_out: str, want_pgid: list[int]
) -> None:
    """The process-group line came after a profile's own stderr and leaked into the output (and the
    deadline kill had no group); what the login shell printed is kept as output."""
    import asyncio

    from provision.cluster import remote

    tail, pgid, lines = remote._Tail(1 << 20), [], []
    asyncio.run(
        remote._pump(_Chunks(*chunks), tail, 0, "stderr", lambda i, s, ln: lines.append(ln), pgid=pgid)
    )
    assert tail.text() == want_out and pgid == want_pgid
    assert lines == want_out.rstrip("\n").split("\n")


def test_a_node_list_that_cannot_go_into_tags_is_refused_before_anything_is_tagged() -> None:
    """An address longer than a tag value cannot be cut into parts: refused here, and the AWS driver
    turns the refusal into "node list not set" (the launch then tries SSH)."""
    from provision.cluster import deliver

    good = deliver.as_tags("0 head 10.0.0.1 -\n1 worker 10.0.0.2 -\n")
    assert good == {"mlrig-nodes-n": "2", "mlrig-nodes-0": "10.0.0.1 10.0.0.2"}
    with pytest.raises(ValueError, match="cannot go into a tag"):
        deliver.as_tags("0 head " + "a" * 300 + " -\n")
