"""``redact``: every planted secret is gone, the report stays valid, diffable and rule-evaluable."""

from __future__ import annotations

from collections.abc import Callable

from envcheck import rules
from envcheck.diff import diff_reports
from envcheck.ingest import load
from envcheck.models import Report
from envcheck.redact import redact


def test_no_planted_secret_survives(report: Report, secrets: dict[str, str]) -> None:
    out = redact(report).model_dump_json()
    for name, value in secrets.items():
        assert value not in out, f"{name} ({value}) survived redaction"
    assert "/home/" not in out and "bob" not in out
    assert "proxy.corp:3128" in out  # the proxy host stays, its credentials do not


def test_placeholders_are_stable_and_consistent(report: Report, secrets: dict[str, str]) -> None:
    r = redact(report)
    s = r.snapshot
    assert s.system is not None and s.nvidia is not None and s.nvidia.gpus is not None
    assert s.system.hostname == "<host>"
    assert [g.uuid for g in s.nvidia.gpus] == ["GPU-<redacted-1>", "GPU-<redacted-2>"]
    assert s.system.env["CUDA_VISIBLE_DEVICES"] == "GPU-<redacted-1>,GPU-<redacted-2>"
    assert [m.uuid for m in s.nvidia.gpus[0].mig_devices or []] == ["MIG-<redacted-1>"]
    assert s.nvidia.gpus[0].serial != s.nvidia.gpus[1].serial and "serial" in (s.nvidia.gpus[0].serial or "")
    assert s.system.python is not None and s.system.python.executable == "<home>/.venv/bin/python"
    assert s.system.env["USER"] == "<user>" and s.system.env["HOME"] == "<home>"
    for key in ("HF_TOKEN", "WANDB_API_KEY", "AWS_ACCESS_KEY_ID"):
        assert s.system.env[key] == "<redacted>"
    assert s.system.env["MASTER_ADDR"] == "<ip-1>"
    (proc,) = s.nvidia.gpus[0].processes or []
    assert proc.name == "python <home>/train.py --token <redacted>"
    assert redact(report) == r  # deterministic


def test_facts_rules_need_are_untouched(report: Report) -> None:
    r = redact(report)
    s, o = r.snapshot, report.snapshot
    assert s.frameworks == o.frameworks.model_copy(  # type: ignore[union-attr]
        update={"frameworks": [o.frameworks.frameworks[0].model_copy(  # type: ignore[union-attr]
            update={"location": "<home>/.venv/lib/python3.11/site-packages/torch"})]}
    )  # fmt: skip
    assert s.nvidia is not None and o.nvidia is not None
    assert s.nvidia.driver_version == o.nvidia.driver_version
    assert [(g.name, g.compute_capability, g.bus_id, g.pcie) for g in s.nvidia.gpus or []] == [
        (g.name, g.compute_capability, g.bus_id, g.pcie) for g in o.nvidia.gpus or []
    ]
    assert s.cuda is not None and s.cuda.libraries is not None and s.cuda.libraries[0].version == "9.1.0"
    assert s.system is not None and s.system.distro == "Ubuntu 22.04.4 LTS"
    assert [f.commands for f in r.findings] == [f.commands for f in report.findings]
    # same verdicts before and after
    assert [f.id for f in rules.evaluate(s)[0]] == [f.id for f in rules.evaluate(o)[0]]


def test_redacted_report_is_valid_and_diffable(report: Report) -> None:
    r = redact(report)
    assert Report.model_validate_json(r.model_dump_json()) == r
    assert load(r.model_dump_json(), "redacted.json") == r
    # two machines' worth of changes still show through redaction
    b = report.model_copy(deep=True)
    assert b.snapshot.nvidia is not None
    b.snapshot.nvidia.driver_version = "550.54.14"
    d = diff_reports(redact(report), redact(b))
    assert [c.path for c in d.changed] == ["nvidia.driver_version"]
    assert not d.gpus_added and not d.gpus_removed
    assert (
        report.snapshot.system is not None and report.snapshot.system.hostname != "<host>"
    )  # input untouched


def test_paths_in_a_pasted_collect_env(read_fixture: Callable[[str], str]) -> None:
    windows = load(read_fixture("pytorch-137846_windows11_cpu_xpu_format.txt"), "x")
    windows.snapshot.frameworks.frameworks[0].location = (  # type: ignore[union-attr]
        r"C:\Users\jdoe\miniforge3\envs\py310\lib\site-packages\torch"
    )
    out = redact(windows).model_dump_json()
    assert "jdoe" not in out and r"<home>\\miniforge3" in out
    h100 = load(read_fixture("pytorch-150852_8x_h100_centos9.txt"), "x")
    assert redact(h100).snapshot == h100.snapshot  # nothing personal in it, nothing changed


def test_versions_that_look_like_addresses_stay() -> None:
    from envcheck.redact import _Redactor

    r = _Redactor()
    assert r.text("needs cuDNN 9.1.0.70 or newer", "summary") == "needs cuDNN 9.1.0.70 or newer"
    assert r.text("tcp://192.168.1.20:29500", "summary") == "tcp://<ip-1>:29500"
    assert r.text("connect 192.168.1.20:22 then", "summary") == "connect <ip-1>:22 then"
    assert r.text("127.0.0.1", "ip") == "127.0.0.1"
