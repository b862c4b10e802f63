"""The pure parts of provision's cloud commands: planning, failover order, error classification,
state journal, ssh config, first-boot script, settings. No cloud, no network beyond 127.0.0.1."""

from __future__ import annotations

import socket
import sqlite3
import stat
import threading
from pathlib import Path
from typing import Any

import pydantic
import pytest

from provision import launch, planning, sshconfig
from provision import settings as settings_mod
from provision.clouds import aws, firstboot, gcp, tpu
from provision.clouds.base import FailureKind, Placement, check_name
from provision.errors import CredentialsError, ProvisionError, UsageError
from provision.models import Offering
from provision.state import Store

FIXTURE = Path(__file__).parent.parent / "fixtures" / "cloud" / "offers.json"


def _settings(tmp_path: Path, **kw: Any) -> settings_mod.Settings:
    env = {
        "PROVISION_STATE_DIR": str(tmp_path / "state"),
        "PROVISION_OFFERS_FILE": str(FIXTURE),
        "PROVISION_AWS_REGIONS": "us-east-1,us-east-2,us-west-2",
    }
    return settings_mod.load(env, **kw)


OWNER = "0123456789abcdef"


def _plan(tmp_path: Path, **kw: Any) -> Any:
    s = _settings(tmp_path)
    kw.setdefault("cloud", "aws")
    return planning.make_plan(
        planning.Request(**kw),
        planning.load_offers(s),
        s,
        owner=OWNER,
        now=1_000_000.0,
        launch_id="abcdef123456",
    )


# --------------------------------------------------------------------------- parsing
@pytest.mark.parametrize(
    ("text", "want"), [("A10G:1", ("A10G", 1)), ("H100", ("H100", 1)), ("l4:8", ("l4", 8))]
)
def test_parse_gpu(text: str, want: tuple[str, int]) -> None:
    assert planning.parse_gpu(text) == want


@pytest.mark.parametrize("bad", ["", ":2", "A10G:x", "A10G:0"])
def test_parse_gpu_rejects(bad: str) -> None:
    with pytest.raises(UsageError):
        planning.parse_gpu(bad)


@pytest.mark.parametrize(
    ("text", "minutes"), [("90", 90), ("45m", 45), ("2h", 120), ("1h30m", 90), ("1h 5m", 65)]
)
def test_parse_minutes(text: str, minutes: int) -> None:
    assert planning.parse_minutes(text) == minutes


@pytest.mark.parametrize("bad", ["", "h", "0m", "soon", "-5"])
def test_parse_minutes_rejects(bad: str) -> None:
    with pytest.raises(UsageError):
        planning.parse_minutes(bad)


@pytest.mark.parametrize(
    ("text", "want"),
    [("v5e-8", "v5litepod-8"), ("v4-8", "v4-8"), ("tpu-v6e-1", "v6e-1"), ("V5P-16", "v5p-16")],
)
def test_tpu_type(text: str, want: str) -> None:
    assert planning.tpu_type(text) == want


def test_region_of() -> None:
    assert planning.region_of("aws", "us-east-1a") == "us-east-1"
    assert planning.region_of("gcp", "us-central1-f") == "us-central1"


@pytest.mark.parametrize("name", ["a", "1box", "Box", "box_1", "box-", "x" * 41])
def test_bad_names_are_rejected(name: str) -> None:
    with pytest.raises(UsageError):
        check_name(name)


# --------------------------------------------------------------------------- offer choice and plan
def test_cheapest_matching_offer_wins_per_market(tmp_path: Path) -> None:
    assert _plan(tmp_path, gpu="A10G:1").instance_type == "g5.xlarge"
    spot = _plan(tmp_path, gpu="A10G:1", spot=True)
    assert spot.price_per_hour == pytest.approx(0.397) and spot.price_on_demand == pytest.approx(1.006)
    assert _plan(tmp_path, instance_type="g5.2xlarge").price_per_hour == pytest.approx(1.212)
    a100 = _plan(tmp_path, gpu="a100:8")
    assert a100.instance_type == "p4d.24xlarge" and a100.vcpus == 96


def test_plan_tags_and_regions(tmp_path: Path) -> None:
    plan = _plan(tmp_path, gpu="L4:1", autostop="1h", name="box")
    assert plan.regions == ("us-east-1", "us-east-2", "us-west-2")
    assert plan.tags() == {
        "mlrig-launch": "abcdef123456",
        "mlrig-owner": OWNER,
        "mlrig-name": "box",
        "mlrig-expiry": str(1_000_000 + 3600),
    }
    pinned = _plan(tmp_path, gpu="L4:1", region="us-west-2")
    assert pinned.regions == ("us-west-2",) and pinned.price_per_hour == pytest.approx(0.8048)
    assert any("estimated from the catalog's us-east-1 row" in n for n in pinned.notes)


def test_no_offer_is_a_usage_error_with_a_hint(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="no aws offer for H100:8") as info:
        _plan(tmp_path, gpu="H100:8")
    with pytest.raises(UsageError, match="no aws offer for H100:8 in eu-west-1"):
        _plan(tmp_path, gpu="H100:8", region="eu-west-1")
    assert "provision gpus" in (info.value.hint or "")


def test_pinned_type_outside_catalog_launches_without_price(tmp_path: Path) -> None:
    plan = _plan(tmp_path, instance_type="g6e.xlarge", region="us-east-1")
    assert plan.price_per_hour is None and any("price unknown" in n for n in plan.notes)


def test_conflicting_or_missing_choices(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="say what"):
        _plan(tmp_path)
    with pytest.raises(UsageError, match="only on Google Cloud"):
        _plan(tmp_path, tpu="v5e-8")
    with pytest.raises(UsageError, match="--wait"):
        _plan(tmp_path, gpu="A10G:1", wait="never")
    with pytest.raises(UsageError, match="--disk"):
        _plan(tmp_path, gpu="A10G:1", disk_gb=1)


def test_tpu_plan(tmp_path: Path) -> None:
    plan = _plan(tmp_path, cloud="gcp", tpu="v5e-8")
    assert (plan.kind, plan.instance_type, plan.tpu_runtime, plan.region) == (
        "tpu-vm",
        "v5litepod-8",
        "v2-alpha-tpuv5-lite",
        "us-central1",
    )
    assert plan.regions == ("us-central1",)


def test_open_ssh_to_the_world_is_refused_unless_allowed_and_then_flagged(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="ssh-cidr"):
        _plan(tmp_path, gpu="A10G:1", ssh_cidr="0.0.0.0/0")
    plan = _plan(tmp_path, gpu="A10G:1", ssh_cidr="0.0.0.0/0", allow_ssh_from_anywhere=True)
    assert any("WARNING" in n for n in plan.notes)


def test_setup_script_is_read_but_never_stored(tmp_path: Path) -> None:
    script = tmp_path / "setup.sh"
    script.write_text("export TOKEN=s3cr3t\npip install -r requirements.txt\n")
    plan = _plan(tmp_path, gpu="A10G:1", setup_path=script)
    assert "s3cr3t" in (plan.setup_script or "")
    assert "s3cr3t" not in str(plan.to_dict())


# --------------------------------------------------------------------------- failover order
def test_placements_zone_then_region_then_on_demand(tmp_path: Path) -> None:
    plan = _plan(tmp_path, gpu="A10G:1", spot=True)
    asked: list[str] = []

    def zones_of(region: str) -> list[str]:
        asked.append(region)
        return [f"{region}a", f"{region}b"]

    order = planning.placements(plan, zones_of)
    first = next(order)
    assert first == Placement("us-east-1", "us-east-1a", True) and asked == ["us-east-1"]  # lazy
    rest = list(order)
    assert [str(p) for p in [first, *rest]][:3] == [
        "us-east-1a (spot)",
        "us-east-1b (spot)",
        "us-east-2a (spot)",
    ]
    assert all(p.spot for p in rest[:5]) and not any(p.spot for p in rest[5:])
    assert len(rest) + 1 == 12


def test_placements_pinned_zone_without_fallback(tmp_path: Path) -> None:
    plan = _plan(tmp_path, gpu="A10G:1", spot=True, zone="us-east-1c", on_demand_fallback=False)
    assert list(planning.placements(plan, lambda r: pytest.fail("no zone listing"))) == [
        Placement("us-east-1", "us-east-1c", True)
    ]


# --------------------------------------------------------------------------- error classification
@pytest.mark.parametrize(
    ("code", "kind"),
    [
        ("InsufficientInstanceCapacity", FailureKind.CAPACITY),
        ("InsufficientFreeAddressesInSubnet", FailureKind.CAPACITY),
        ("Unsupported", FailureKind.UNSUPPORTED),
        ("VcpuLimitExceeded", FailureKind.QUOTA),
        ("MaxSpotInstanceCountExceeded", FailureKind.QUOTA),
        ("SpotMaxPriceTooLow", FailureKind.SPOT_PRICE),
        ("RequestLimitExceeded", FailureKind.THROTTLE),
        ("InvalidAMIID.NotFound", FailureKind.FATAL),
    ],
)
def test_aws_classification(code: str, kind: FailureKind, tmp_path: Path) -> None:
    exc = type("ClientError", (Exception,), {})()
    exc.response = {"Error": {"Code": code, "Message": "m"}}
    plan = _plan(tmp_path, gpu="A100:8")
    assert aws.classify(exc, plan, Placement("us-east-1", "us-east-1a", False)).kind == kind


def test_aws_quota_names_depend_on_family_and_market() -> None:
    assert aws.quota_for("g5.xlarge", False)[0] == "L-DB2E81BA"
    assert aws.quota_for("p4d.24xlarge", True) == ("L-7212CCBC", "All P Spot Instance Requests")
    assert aws.quota_for("m5.large", False)[0] == "L-1216C47A"


@pytest.mark.parametrize(
    ("codes", "message", "kind"),
    [
        (["ZONE_RESOURCE_POOL_EXHAUSTED"], "", FailureKind.CAPACITY),
        (["ZONE_RESOURCE_POOL_EXHAUSTED_WITH_DETAILS"], "", FailureKind.CAPACITY),
        (["QUOTA_EXCEEDED"], "Quota 'GPUS' exceeded", FailureKind.QUOTA),
        (["RESOURCE_OPERATION_RATE_EXCEEDED"], "", FailureKind.THROTTLE),
        (["UNSUPPORTED_OPERATION"], "", FailureKind.UNSUPPORTED),
        (["INVALID_FIELD_VALUE"], "bad", FailureKind.FATAL),
    ],
)
def test_gcp_classification(codes: list[str], message: str, kind: FailureKind) -> None:
    assert gcp.classify_codes(codes, message, "us-central1").kind == kind


def test_tpu_classification() -> None:
    err = type("E", (Exception,), {"code": 429, "message": "There is no more capacity in the zone"})()
    assert tpu.classify(err, "us-central1").kind == FailureKind.CAPACITY
    err = type("E", (Exception,), {"code": 429, "message": "Quota limit 'TPUV4' has been exceeded"})()
    assert tpu.classify(err, "us-central1").kind == FailureKind.QUOTA


def test_google_calls_map_refusals_as_each_driver_needs() -> None:
    from google.api_core import exceptions as gexc

    def failing(exc: Exception) -> Any:
        def call(**kw: Any) -> Any:
            raise exc

        return call

    def call(exc: Exception, denied_is_auth: bool, service: str = "Google Cloud") -> Any:
        return gcp.call_api(failing(exc), timeout=1, service=service, denied_is_auth=denied_is_auth)

    assert gcp.call_api(lambda **kw: kw, timeout=3, service="x", denied_is_auth=True, zone="z") == {
        "timeout": 3,
        "zone": "z",
    }
    with pytest.raises(CredentialsError, match="refused the call: no"):
        call(gexc.PermissionDenied("no"), denied_is_auth=True)  # Compute Engine: a 403 is credentials
    with pytest.raises(gexc.PermissionDenied):
        call(gexc.PermissionDenied("Quota 'GPUS' exceeded"), denied_is_auth=True)  # ... unless quota
    with pytest.raises(gexc.PermissionDenied):
        call(gexc.PermissionDenied("no"), denied_is_auth=False)  # TPU: left to its classifier
    with pytest.raises(CredentialsError):
        call(gexc.Unauthenticated("expired"), denied_is_auth=False)
    with pytest.raises(ProvisionError, match="Cloud TPU did not answer"):
        call(ConnectionRefusedError("refused"), denied_is_auth=False, service="Cloud TPU")


def test_every_driver_declares_the_same_features_with_reasons() -> None:
    from provision import targets

    tables = [t.capabilities for t in targets.TARGETS.values()]
    assert all(set(t) == set(targets.Capability) for t in tables)
    for table in tables:
        for name, feat in table.items():
            assert feat.supported or feat.why_not, name


def test_gcp_request_ids_are_stable_uuids() -> None:
    a = gcp.request_id("abc", "insert:0")
    assert a == gcp.request_id("abc", "insert:0") != gcp.request_id("abc", "insert:1")
    assert len(a) == 36


# --------------------------------------------------------------------------- first boot
def test_first_boot_script(tmp_path: Path) -> None:
    setup = tmp_path / "s.sh"
    setup.write_text("echo hello\n")
    plan = _plan(tmp_path, gpu="A10G:1", autostop="30m", setup_path=setup)
    text = firstboot.render(plan, "mlrig==0.1.0", "ubuntu")
    assert text.startswith("#!/bin/bash\n") and "shutdown -h +30" in text
    assert "pip install --quiet --only-binary=:all: mlrig==0.1.0" in text and firstboot.REPORT_PATH in text
    assert "echo hello\nMLRIG_SETUP_EOF" in text and "sudo -u ubuntu" in text
    assert "shutdown" not in firstboot.render(_plan(tmp_path, gpu="A10G:1"), "mlrig", "ubuntu")


# --------------------------------------------------------------------------- state store
def test_journal_intent_then_outcome_and_cost(tmp_path: Path) -> None:
    plan = _plan(tmp_path, gpu="A10G:1", name="box")
    store = Store(tmp_path / "db" / "state.db")
    store.begin_launch(plan)
    j = store.journal(plan.launch_id, "aws")
    row = j.intent("instance", "us-east-1", "us-east-1a", "box", "tok")
    assert [r.status for r in store.pending_resources(plan.launch_id)] == ["intent"]
    j.created(row, "i-123")
    (r,) = store.resources(plan.launch_id)
    assert (r.status, r.resource_id, r.token) == ("created", "i-123", "tok")
    failed = j.failed(j.intent("instance", "us-east-1", "us-east-1b", "box", None), "capacity")
    assert failed is None and len(store.pending_resources(plan.launch_id)) == 1
    store.update_launch(plan.launch_id, running_at=1000.0)
    assert store.launch(plan.launch_id).cost_so_far(now=1000.0 + 1800) == pytest.approx(0.503)  # type: ignore[union-attr]
    assert store.active_by_name("box") is not None
    with pytest.raises(ValueError, match="not updatable"):
        store.update_launch(plan.launch_id, name="other")


def test_state_file_holds_no_key_material(tmp_path: Path) -> None:
    s = _settings(tmp_path)
    plan = _plan(tmp_path, gpu="A10G:1")
    launch.ensure_key(s, plan)
    key = Path(str(plan.key_path))
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    store = Store(s.db_path)
    store.begin_launch(plan)
    store.close()
    raw = s.db_path.read_bytes() + b"".join(p.read_bytes() for p in s.state_dir.glob("state.db*"))
    assert b"PRIVATE KEY" not in raw and Path(f"{key}.pub").read_text().split()[1].encode() not in raw


def test_unwritable_state_dir_is_a_clear_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(ProvisionError, match="cannot open the state file"):
        Store(blocker / "state.db")


def test_state_db_is_sqlite_with_wal(tmp_path: Path) -> None:
    Store(tmp_path / "s.db")
    assert sqlite3.connect(tmp_path / "s.db").execute("PRAGMA journal_mode").fetchone()[0] == "wal"


# --------------------------------------------------------------------------- ssh config
def test_ssh_config_include_goes_first_and_entries_are_replaced(tmp_path: Path) -> None:
    config, include, kh = tmp_path / ".ssh" / "config", tmp_path / ".ssh" / "mlrig_config", tmp_path / "kh"
    config.parent.mkdir()
    config.write_text("Host *\n    User me\n")
    sshconfig.add(
        config, include, "box", sshconfig.render_entry("box", "198.51.100.1", "ubuntu", "/k/box", kh)
    )
    sshconfig.add(
        config, include, "box", sshconfig.render_entry("box", "198.51.100.2", "ubuntu", "/k/box", kh)
    )
    sshconfig.add(
        config, include, "other", sshconfig.render_entry("other", "198.51.100.3", "mlrig", None, kh)
    )
    lines = config.read_text().splitlines()
    assert lines[1] == f'Include "{include}"' and lines[2:] == ["Host *", "    User me"]
    text = include.read_text()
    assert text.count("Host box\n") == 1 and "198.51.100.2" in text and "198.51.100.1" not in text
    assert stat.S_IMODE(include.stat().st_mode) == 0o600 and stat.S_IMODE(config.stat().st_mode) == 0o600
    sshconfig.ensure_include(config, include)
    assert config.read_text().count("Include") == 1
    assert sshconfig.remove(include, "box") and not sshconfig.remove(include, "box")
    assert "Host other" in include.read_text()


# --------------------------------------------------------------------------- settings
def test_settings_read_env_and_reject_bad_numbers(tmp_path: Path) -> None:
    s = settings_mod.load(
        {
            "PROVISION_POLL_INTERVAL": "0.5",
            "PROVISION_AWS_REGIONS": "eu-west-1, eu-central-1",
            "AWS_ENDPOINT_URL": "http://127.0.0.1:1",
            "PROVISION_STATE_DIR": str(tmp_path),
        }
    )
    assert s.poll_interval == 0.5 and s.aws_regions == ("eu-west-1", "eu-central-1")
    assert s.aws_endpoint == "http://127.0.0.1:1" and s.db_path == tmp_path / "state.db"
    assert settings_mod.load({}).state_dir.name == "provision"
    assert settings_mod.load({"PROVISION_GCP_TPU_ENDPOINT": "http://127.0.0.1:1"}).tpu_transport == "rest"
    assert settings_mod.load({}).tpu_transport == "grpc"
    for bad in ("soon", "nan", "inf", "-1", "1e400"):
        with pytest.raises(UsageError, match="PROVISION_API_TIMEOUT"):
            settings_mod.load({"PROVISION_API_TIMEOUT": bad})
    with pytest.raises(UsageError, match="--ssh-timeout"):
        settings_mod.load({}, ssh_timeout=float("nan"))
    assert settings_mod.load({"PROVISION_STORE_TIMEOUT": "2.5"}).store_timeout == 2.5


# --------------------------------------------------------------------------- loopback network helpers
class _Banner:
    """A loopback TCP server that greets every connection with ``banner`` (an sshd, or not)."""

    def __init__(self, banner: bytes) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.sock.settimeout(0.05)
        self.stop = threading.Event()
        self.banner = banner
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()
        self.port = self.sock.getsockname()[1]

    def _serve(self) -> None:
        while not self.stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                continue
            with conn:
                conn.sendall(self.banner)

    def close(self) -> None:
        self.stop.set()
        self.thread.join(timeout=5)
        self.sock.close()


def test_wait_ssh_sees_the_banner() -> None:
    srv = _Banner(b"SSH-2.0-OpenSSH_9.6\r\n")
    try:
        launch.wait_ssh("127.0.0.1", srv.port, timeout=5, interval=0.01)
    finally:
        srv.close()


def test_wait_ssh_gives_up_on_a_non_ssh_port() -> None:
    srv = _Banner(b"HTTP/1.1 400 Bad Request\r\n")
    try:
        with pytest.raises(ProvisionError, match="not an SSH server"):
            launch.wait_ssh("127.0.0.1", srv.port, timeout=0.3, interval=0.05)
    finally:
        srv.close()


def test_public_ip_lookup(ip_echo: str, tmp_path: Path) -> None:
    from provision.clouds._clients import public_ip

    assert public_ip(_settings(tmp_path, ip_url=ip_echo)) == "203.0.113.7"
    with pytest.raises(ProvisionError, match="could not find your public IP") as info:
        public_ip(_settings(tmp_path, ip_url="http://127.0.0.1:9/"))
    assert "--ssh-cidr" in (info.value.hint or "")


def test_offers_file_must_be_valid(tmp_path: Path) -> None:
    bad = tmp_path / "offers.json"
    bad.write_text('[{"cloud": "aws"}]')
    with pytest.raises(UsageError, match="cannot read offers"):
        planning.load_offers(_settings(tmp_path, offers_file=bad))
    ok = planning.load_offers(_settings(tmp_path))
    assert all(isinstance(o, Offering) for o in ok) and len(ok) == 7


# --------------------------------------------------------------------------- the driver boundary
def test_every_driver_method_is_behind_the_error_boundary() -> None:
    from provision.clouds.base import PROVIDER_METHODS

    for cls in (aws.AwsProvider, gcp.GcpProvider, tpu.TpuProvider):
        for name in PROVIDER_METHODS:
            assert hasattr(getattr(cls, name), "__wrapped__"), (cls.__name__, name)


def test_the_boundary_maps_errors_and_lets_interrupts_through() -> None:
    from provision.clouds.base import translating

    def classify(exc: Exception) -> ProvisionError:
        return ProvisionError(f"mapped {type(exc).__name__}")

    with pytest.raises(ProvisionError, match="mapped KeyError"), translating(classify):
        raise KeyError("Instances")  # a malformed answer
    with pytest.raises(UsageError), translating(classify):
        raise UsageError("ours already")
    with pytest.raises(KeyboardInterrupt), translating(classify):
        raise KeyboardInterrupt
    assert isinstance(aws.translate(ValueError("x")), ProvisionError)
    assert "valid API response" in gcp.translate(ValueError("Expecting value")).message


def test_settings_are_pydantic_settings_reading_only_their_variables(tmp_path: Path) -> None:
    s = settings_mod.load({"PROVISION_AWS_ENDPOINT": "http://127.0.0.1:2", "AWS_ENDPOINT_URL": "http://x"})
    assert s.aws_endpoint == "http://127.0.0.1:2"  # the first variable set wins
    assert (
        settings_mod.load({"state_dir": "/nope", "PROVISION_AWS_REGIONS": ""}).state_dir.name == "provision"
    )
    assert settings_mod.load({"PROVISION_AWS_REGIONS": ""}).aws_regions == (
        "us-east-1",
        "us-east-2",
        "us-west-2",
    )
    assert settings_mod.load({"PROVISION_STATE_DIR": "~/st"}).state_dir == Path.home() / "st"
    assert settings_mod.load({"PROVISION_SSH_TIMEOUT": "7"}, ssh_timeout=None).ssh_timeout == 7.0
    assert settings_mod.load({"PROVISION_SSH_TIMEOUT": "7"}, ssh_timeout=2.0).ssh_timeout == 2.0
    with pytest.raises(UsageError, match=r"PROVISION_POLL_INTERVAL='-0\.1'"):
        settings_mod.load({"PROVISION_POLL_INTERVAL": "-0.1"})
    with pytest.raises(pydantic.ValidationError):
        s.aws_endpoint = "elsewhere"  # type: ignore[misc]  # frozen


@pytest.mark.parametrize(
    ("instance_type", "said"),
    [
        (
            "p4d.24xlarge",
            "EFA on network card 0 only: p4d.24xlarge takes 4 EFA interfaces (EC2's figure as of 20",
        ),
        ("g5.12xlarge", "EFA: the one interface g5.12xlarge takes"),
        ("g5.xlarge", "no EFA on g5.xlarge: NCCL between the nodes runs over TCP"),
    ],
)
def test_a_cluster_plan_says_what_carries_traffic_between_its_nodes(
    tmp_path: Path, instance_type: str, said: str
) -> None:
    """A cluster of p4d gets one of its four EFA cards: the plan says so before it is paid for."""
    plan = _plan(tmp_path, instance_type=instance_type, region="us-east-1", nodes=2)
    (note,) = [n for n in plan.notes if "EFA" in n]
    assert note.startswith(said), note
    one = _plan(tmp_path, instance_type=instance_type, region="us-east-1")
    assert not [n for n in one.notes if "EFA" in n]  # one machine: nothing between nodes to say
