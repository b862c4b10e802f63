"""Loopback clouds for the provision tests: moto's EC2 behind a fault-injecting WSGI layer, a Compute
Engine / Cloud TPU fake, and a "what is my IP" echo. Everything binds 127.0.0.1 on a free port and
is shut down at teardown; no test ever reaches a real cloud.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import pytest

HERE = Path(__file__).parent
FIXTURES = HERE.parent / "fixtures" / "cloud"
REGIONS = ("us-east-1", "us-west-2")
#: where the leak oracle looks on moto: the configured regions and the one tests pin with --region
ORACLE_REGIONS = (*REGIONS, "eu-west-1")
#: the regions the test account has enabled (DescribeRegions): moto would answer all 38, and a real
#: account has opt-in regions disabled too. ap-south-1 is enabled and never used: gc must still look.
ACCOUNT_REGIONS = (*ORACLE_REGIONS, "ap-south-1")
AMI_PARAM = "/mlrig-test/dlami/ami-id"
TAG = "mlrig-launch"


def _load(name: str) -> Any:
    spec = importlib.util.spec_from_file_location(name, HERE / f"{name}.py")
    assert spec and spec.loader
    mod = importlib.util.module_from_spec(spec)
    sys.modules[name] = mod
    spec.loader.exec_module(mod)
    return mod


gcp_fake = _load("_gcp_fake")
gcp_fake_cluster = _load("_gcp_fake_cluster")
kit = _load("_kit")
ec2 = kit.ec2


# --------------------------------------------------------------------------- AWS fault layer
@dataclass
class Fault:
    """Answer ``action`` with an EC2 error (or delay it) ``times`` times, optionally only when the
    request body contains ``match`` (e.g. a zone)."""

    action: str
    code: str = ""
    status: int = 400
    times: int = 1
    match: str | None = None
    message: str = "injected by the test"
    #: seconds to sleep AFTER forwarding to moto (the call succeeds but the answer comes too late)
    delay_after: float = 0.0
    #: seconds to hold the request BEFORE forwarding it (a client killed meanwhile never reached moto)
    delay_before: float = 0.0
    #: answer 200 with a body that is not XML (after forwarding: the call took effect)
    malformed: bool = False
    hits: int = 0


class PlacementGroups:
    """The EC2 placement-group API, answered in front of moto (a documented test shim).

    moto 5.2.5 implements none of CreatePlacementGroup, DescribePlacementGroups and
    DeletePlacementGroup (it answers 500 "not implemented") and ignores ``Placement.GroupName`` in
    RunInstances. The product's requests are still real botocore requests; this shim answers those
    three actions from a table per region with EC2's XML shapes, so the driver's placement-group
    code and the leak oracle run end to end. It never swallows an error of the product: an unknown
    group is EC2's own ``InvalidPlacementGroup.Unknown``, a duplicate ``InvalidPlacementGroup.Duplicate``.
    """

    ACTIONS = ("CreatePlacementGroup", "DescribePlacementGroups", "DeletePlacementGroup")

    def __init__(self) -> None:
        self.groups: dict[tuple[str, str], dict[str, Any]] = {}
        self.lock = threading.Lock()

    def reset(self) -> None:
        with self.lock:
            self.groups.clear()

    @staticmethod
    def _region(environ: dict[str, Any]) -> str:
        auth = environ.get("HTTP_AUTHORIZATION", "")
        parts = auth.split("Credential=", 1)[-1].split("/")
        return parts[2] if len(parts) > 3 else "us-east-1"

    @staticmethod
    def _xml(start_response: Any, status: str, body: str) -> list[bytes]:
        data = ('<?xml version="1.0" encoding="UTF-8"?>' + body).encode()
        start_response(status, [("Content-Type", "text/xml"), ("Content-Length", str(len(data)))])
        return [data]

    def _answer(self, start_response: Any, action: str, inner: str) -> list[bytes]:
        ns = 'xmlns="http://ec2.amazonaws.com/doc/2016-11-15/"'
        body = f"<{action}Response {ns}><requestId>pg-shim</requestId>{inner}</{action}Response>"
        return self._xml(start_response, "200 OK", body)

    def _error(self, start_response: Any, code: str, message: str) -> list[bytes]:
        body = (
            f"<Response><Errors><Error><Code>{code}</Code><Message>{message}</Message></Error></Errors>"
            "<RequestID>pg-shim</RequestID></Response>"
        )
        return self._xml(start_response, "400 Bad Request", body)

    @staticmethod
    def _item(g: dict[str, Any]) -> str:
        tags = "".join(f"<item><key>{k}</key><value>{v}</value></item>" for k, v in g["tags"].items())
        return (
            f"<groupName>{g['name']}</groupName><state>available</state><strategy>{g['strategy']}</strategy>"
            f"<groupId>{g['id']}</groupId><tagSet>{tags}</tagSet>"
        )

    def __call__(
        self, action: str, q: dict[str, list[str]], environ: dict[str, Any], start_response: Any
    ) -> Any:
        region = self._region(environ)
        one = {k: v[0] for k, v in q.items()}
        with self.lock:
            if action == "CreatePlacementGroup":
                name = one.get("GroupName", "")
                if (region, name) in self.groups:
                    return self._error(start_response, "InvalidPlacementGroup.Duplicate", f"{name} exists")
                tags: dict[str, str] = {}
                for n in range(1, 50):
                    key = one.get(f"TagSpecification.1.Tag.{n}.Key")
                    if key is None:
                        break
                    tags[key] = one.get(f"TagSpecification.1.Tag.{n}.Value", "")
                g = {
                    "name": name,
                    "strategy": one.get("Strategy", ""),
                    "id": f"pg-{len(self.groups):08x}",
                    "tags": tags,
                }
                self.groups[(region, name)] = g
                inner = f"<return>true</return><placementGroup>{self._item(g)}</placementGroup>"
                return self._answer(start_response, action, inner)
            if action == "DeletePlacementGroup":
                name = one.get("GroupName", "")
                if self.groups.pop((region, name), None) is None:
                    return self._error(start_response, "InvalidPlacementGroup.Unknown", f"{name} is unknown")
                return self._answer(start_response, action, "<return>true</return>")
            names = [v for k, v in one.items() if k.startswith("GroupName.")]
            found = [g for (r, n), g in self.groups.items() if r == region and (not names or n in names)]
            if names and len(found) < len(names):
                return self._error(start_response, "InvalidPlacementGroup.Unknown", "unknown group")
            for n in range(1, 10):
                fname = one.get(f"Filter.{n}.Name")
                if fname is None:
                    break
                values = [v for k, v in one.items() if k.startswith(f"Filter.{n}.Value.")]
                if fname == "tag-key":
                    found = [g for g in found if set(g["tags"]) & set(values)]
                elif fname.startswith("tag:"):
                    found = [g for g in found if g["tags"].get(fname[4:]) in values]
            items = "".join(f"<item>{self._item(g)}</item>" for g in found)
            return self._answer(start_response, action, f"<placementGroupSet>{items}</placementGroupSet>")


@dataclass
class FaultLayer:
    """WSGI middleware in front of moto: EC2 Query-protocol errors injected per Action."""

    app: Any
    faults: list[Fault] = field(default_factory=list)
    log: list[str] = field(default_factory=list)
    #: (action, request body) of every EC2 call the clients sent: tests assert on what was asked
    requests: list[tuple[str, str]] = field(default_factory=list)
    placement_groups: PlacementGroups = field(default_factory=PlacementGroups)
    lock: threading.Lock = field(default_factory=threading.Lock)
    #: set by clear(): requests still held by ``delay_before`` are dropped, never forwarded
    cancel: threading.Event = field(default_factory=threading.Event)

    def add(self, *faults: Fault) -> None:
        with self.lock:
            self.faults.extend(faults)

    def inject(self, **kw: Any) -> Fault:
        fault = Fault(**kw)
        self.add(fault)
        return fault

    def clear(self) -> None:
        with self.lock:
            self.faults.clear()
            self.log.clear()
            self.requests.clear()
            self.cancel.set()
            self.cancel = threading.Event()

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        import io

        length = int(environ.get("CONTENT_LENGTH") or 0)
        body = environ["wsgi.input"].read(length) if length else b""
        environ["wsgi.input"] = io.BytesIO(body)
        text = body.decode("utf-8", "replace")
        action = (parse_qs(text).get("Action") or [""])[0]
        fault = None
        if action == "DescribeRegions" and not any(f.action == action for f in self.faults):
            with self.lock:
                self.log.append(action)
            return _regions_answer(start_response)
        with self.lock:
            if action:
                self.log.append(action)
                self.requests.append((action, text))
            for f in self.faults:
                if f.action == action and f.hits < f.times and (f.match is None or f.match in text):
                    f.hits += 1
                    fault = f
                    break
        if fault is not None and fault.delay_before:
            with self.lock:
                cancel = self.cancel
            if cancel.wait(fault.delay_before):  # the test moved on: this request never happened
                start_response("503 DROPPED", [("Content-Length", "0")])
                return [b""]
        if fault is not None and fault.malformed:
            list(self.app(environ, lambda *a, **k: None))
            junk = b"<?xml version='1.0'?><DescribeInstancesResponse><reservationSet><item><oops"
            start_response("200 OK", [("Content-Type", "text/xml"), ("Content-Length", str(len(junk)))])
            return [junk]
        if fault is None and action in PlacementGroups.ACTIONS:
            return self.placement_groups(action, parse_qs(text), environ, start_response)
        if fault is not None and fault.code:
            xml = (
                f'<?xml version="1.0" encoding="UTF-8"?><Response><Errors><Error><Code>{fault.code}</Code>'
                f"<Message>{fault.message}</Message></Error></Errors><RequestID>fault</RequestID></Response>"
            ).encode()
            start_response(
                f"{fault.status} ERR", [("Content-Type", "text/xml"), ("Content-Length", str(len(xml)))]
            )
            return [xml]
        result = list(self.app(environ, start_response))
        if fault is not None and fault.delay_after:
            with self.lock:
                cancel = self.cancel
            cancel.wait(fault.delay_after)  # the test moved on (clear): the late answer goes now
        return result


def _regions_answer(start_response: Any) -> list[bytes]:
    items = "".join(
        f"<item><regionName>{r}</regionName><regionEndpoint>ec2.{r}.amazonaws.com</regionEndpoint>"
        "<optInStatus>opt-in-not-required</optInStatus></item>"
        for r in ACCOUNT_REGIONS
    )
    xml = (
        '<?xml version="1.0" encoding="UTF-8"?><DescribeRegionsResponse '
        'xmlns="http://ec2.amazonaws.com/doc/2016-11-15/"><requestId>regions</requestId>'
        f"<regionInfo>{items}</regionInfo></DescribeRegionsResponse>"
    ).encode()
    start_response("200 OK", [("Content-Type", "text/xml"), ("Content-Length", str(len(xml)))])
    return [xml]


@dataclass
class MotoServer:
    url: str
    faults: FaultLayer

    def reset(self) -> None:
        import urllib.request

        urllib.request.urlopen(
            urllib.request.Request(f"{self.url}/moto-api/reset", method="POST"), timeout=10
        )
        self.faults.clear()
        self.faults.placement_groups.reset()


@pytest.fixture(scope="session")
def moto_server() -> Iterator[MotoServer]:
    saved = os.environ.get("MOTO_EC2_ENABLE_INSTANCE_TYPE_VALIDATION")
    os.environ["MOTO_EC2_ENABLE_INSTANCE_TYPE_VALIDATION"] = "true"  # unknown types fail, like real EC2
    import logging

    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    from moto.server import DomainDispatcherApplication, MotoRequestHandler, create_backend_app
    from werkzeug.serving import make_server

    layer = FaultLayer(DomainDispatcherApplication(create_backend_app))
    server = make_server("127.0.0.1", 0, layer, threaded=True, request_handler=MotoRequestHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield MotoServer(f"http://127.0.0.1:{server.server_port}", layer)
    finally:
        server.shutdown()
        thread.join(timeout=10)
        if saved is None:
            os.environ.pop("MOTO_EC2_ENABLE_INSTANCE_TYPE_VALIDATION", None)
        else:
            os.environ["MOTO_EC2_ENABLE_INSTANCE_TYPE_VALIDATION"] = saved


# --------------------------------------------------------------------------- my-IP echo
class _IpHandler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = b"203.0.113.7\n"
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture(scope="session")
def ip_echo() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _IpHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}/"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


# --------------------------------------------------------------------------- Compute Engine / TPU fake
@pytest.fixture(scope="session")
def gcp_server() -> Iterator[Any]:
    fake = gcp_fake_cluster.ClusterFakeGcp()  # FakeGcp plus placement policies and TPU slices
    fake.start()
    try:
        yield fake
    finally:
        fake.stop()


# --------------------------------------------------------------------------- per-test environment
@pytest.fixture
def expect_leftover() -> set[str]:
    """Launch ids a test deliberately leaves in the cloud (e.g. another owner's machine)."""
    return set()


@pytest.fixture
def cloud_env(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    moto_server: MotoServer,
    ip_echo: str,
    gcp_server: Any,
    expect_leftover: set[str],
) -> Iterator[dict[str, str]]:
    """Environment for one test: fresh moto and GCP fake, dummy credentials, state under tmp_path.

    At teardown the leak oracle runs for EVERY test: anything tagged as mlrig's that is still alive
    must belong to a launch the state store records as running (the user's machine, on purpose) or
    be listed in ``expect_leftover``; anything else is a leak and fails the test.
    """
    moto_server.reset()
    gcp_server.reset()
    empty = tmp_path / "none"
    empty.write_text("")
    env = {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_CONFIG_FILE": str(empty),
        "AWS_SHARED_CREDENTIALS_FILE": str(empty),
        "AWS_EC2_METADATA_DISABLED": "true",
        "PROVISION_AWS_ENDPOINT": moto_server.url,
        "PROVISION_AWS_REGIONS": ",".join(REGIONS),
        "PROVISION_AWS_AMI_PARAM": AMI_PARAM,
        "PROVISION_GCP_PROJECT": "proj",
        "PROVISION_GCP_COMPUTE_ENDPOINT": gcp_server.url,
        "PROVISION_GCP_TPU_ENDPOINT": gcp_server.url,
        "PROVISION_STATE_DIR": str(tmp_path / "state"),
        "PROVISION_SSH_CONFIG": str(tmp_path / "ssh" / "config"),
        "PROVISION_OFFERS_FILE": str(FIXTURES / "offers.json"),
        "PROVISION_IP_URL": ip_echo,
        "PROVISION_POLL_INTERVAL": "0.01",
        "PROVISION_API_TIMEOUT": "5",
        "PROVISION_LAUNCH_TIMEOUT": "20",
        "PROVISION_SSH_TIMEOUT": "2",
    }
    for k in list(os.environ):
        if k.startswith(("AWS_", "PROVISION_", "GOOGLE_", "CLOUDSDK_")):
            monkeypatch.delenv(k, raising=False)
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    _seed_ami(moto_server.url)
    yield env
    leftovers = aws_leaks_by_launch(moto_server.url) + gcp_server.ours_by_launch()
    db = tmp_path / "state" / "state.db"
    running: set[str] = set()
    if db.exists():
        from provision.errors import ProvisionError
        from provision.state import Store

        try:  # a test may have damaged the store on purpose: then nothing counts as running
            store = Store(db)
            running = {r.launch_id for r in store.launches() if r.status == "running"}
            store.close()
        except ProvisionError:
            pass
    leaked = [what for what, launch_id in leftovers if launch_id not in running | expect_leftover]
    assert leaked == [], f"leaked: {leaked}"


_AMIS: dict[str, str] = {}


def _seed_ami(url: str) -> None:
    """moto has no DLAMI parameters: publish one of its own AMIs under our test prefix."""
    import boto3

    for region in ORACLE_REGIONS:
        kw = {
            "endpoint_url": url,
            "region_name": region,
            "aws_access_key_id": "testing",
            "aws_secret_access_key": "testing",
        }
        if region not in _AMIS:  # listing moto's ~1300 AMIs takes seconds: once per session
            _AMIS[region] = boto3.client("ec2", **kw).describe_images(Owners=["amazon"], MaxResults=5)[
                "Images"
            ][0]["ImageId"]
        if ("ssm", region) not in kit.CLIENTS:
            kit.CLIENTS[("ssm", region)] = boto3.client("ssm", **kw)
        kit.CLIENTS[("ssm", region)].put_parameter(
            Name=AMI_PARAM, Value=_AMIS[region], Type="String", Overwrite=True
        )


def _launch_tag(tags: list[dict[str, str]] | None) -> str:
    return next((t["Value"] for t in tags or [] if t["Key"] == TAG), "?")


def aws_leaks_by_launch(url: str) -> list[tuple[str, str]]:
    """(what, launch id) for everything tagged as mlrig's on moto that still exists.

    Terminated instances don't count: they cost nothing and EC2 forgets them after an hour.
    """
    out = []
    for region in ORACLE_REGIONS:
        c = ec2(url, region)
        flt = [{"Name": "tag-key", "Values": [TAG]}]
        for r in c.describe_instances(Filters=flt)["Reservations"]:
            for i in r["Instances"]:
                if i["State"]["Name"] != "terminated":
                    what = f"{region} instance {i['InstanceId']} {i['State']['Name']}"
                    out.append((what, _launch_tag(i["Tags"])))
        for g in c.describe_security_groups(Filters=flt)["SecurityGroups"]:
            out.append((f"{region} sg {g['GroupId']}", _launch_tag(g.get("Tags"))))
        for k in c.describe_key_pairs(Filters=flt)["KeyPairs"]:
            out.append((f"{region} key {k['KeyName']}", _launch_tag(k.get("Tags"))))
        for g in c.describe_placement_groups(Filters=flt)["PlacementGroups"]:  # the shim's table
            out.append((f"{region} placement group {g['GroupName']}", _launch_tag(g.get("Tags"))))
        for v in c.describe_volumes(Filters=flt)["Volumes"]:
            if v["State"] == "available":  # attached ones go with their instance
                out.append((f"{region} volume {v['VolumeId']}", _launch_tag(v.get("Tags"))))
    return out


def aws_leaks(url: str) -> list[str]:
    return [what for what, _ in aws_leaks_by_launch(url)]


def run_cli(
    args: list[str], env: dict[str, str], timeout: float = 60, **kw: Any
) -> subprocess.CompletedProcess[str]:
    """The real CLI in a child process (as a user runs it)."""
    return subprocess.run(
        [sys.executable, "-m", "provision", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=kit.cli_env(env),
        stdin=subprocess.DEVNULL,
        check=False,
        **kw,
    )


def load_json(text: str) -> Any:
    return json.loads(text)


@pytest.fixture
def leaks(moto_server: MotoServer, gcp_server: Any) -> Any:
    """``leaks()`` -> everything tagged as mlrig's still alive on moto and the GCP fake."""
    return lambda: aws_leaks(moto_server.url) + gcp_server.ours()


@pytest.fixture
def cli_here(cloud_env: dict[str, str]) -> Any:
    """``cli_here([...])`` runs the CLI's own code path (``envcheck.clirun.outcome``, as ``main()``
    does) in this process: for the set-up and clean-up steps of a test, where starting a Python
    that imports boto3 or google-cloud-compute again would only cost seconds."""

    def run(args: list[str]) -> subprocess.CompletedProcess[str]:
        import contextlib
        import io

        from envcheck.clirun import outcome
        from provision.cli import app
        from provision.errors import ProvisionError

        out, err = io.StringIO(), io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = outcome(app, args, prog="provision", errors=(ProvisionError,), debug_var="PROVISION_DEBUG")
        return subprocess.CompletedProcess(args, code, out.getvalue(), err.getvalue())

    return run


@pytest.fixture
def cli(cloud_env: dict[str, str]) -> Any:
    """``cli([...])`` runs the real ``provision`` CLI in a child process against the fakes."""
    return lambda args, env=None, **kw: run_cli(args, cloud_env if env is None else env, **kw)


@pytest.fixture
def amis(cloud_env: dict[str, str]) -> dict[str, str]:
    """An AMI id per test region on moto (the one published as the DLAMI)."""
    return dict(_AMIS)


@pytest.fixture
def ec2_client(moto_server: MotoServer) -> Any:
    return lambda region="us-east-1": ec2(moto_server.url, region)
