"""Whole-report behaviour: a healthy machine is clean, this no-GPU machine is judged right, the
catalog documents every rule, and a rule bug or missing fact is a skip, never a crash."""

from __future__ import annotations

from envcheck import rules
from envcheck.models import Severity, Snapshot
from envcheck.rules import _base


def test_healthy_machine_has_no_findings_and_every_rule_ran(healthy, judge):
    v = judge(healthy)
    assert v.findings == []
    assert v.skipped == {}


def test_no_gpu_machine_is_clean_and_not_called_too_old(no_gpu, judge):
    v = judge(no_gpu)
    assert v.ids == set()
    # cudaDriverGetVersion == 0 is "no driver", so driver-too-old ran and passed instead of guessing
    assert "driver-too-old" not in v.skipped
    assert "no-driver" not in v.skipped


def test_empty_snapshot_skips_every_rule_with_a_reason(judge):
    v = judge(Snapshot())
    assert v.findings == []
    # rules that read only a paste's error lines have nothing to read here, which is no missing fact
    assert set(v.skipped) == set(rules.REGISTRY) - set(rules.pasted.PASTE_ONLY)
    assert all(reason.endswith("unknown") or "unknown" in reason for reason in v.skipped.values())


def test_required_rule_ids_exist():
    required = {
        "cpu-only-wheel",
        "driver-too-old",
        "arch-unsupported",
        "no-driver",
        "cudnn-mismatch",
        "visible-devices",
        "driver-library-mismatch",
        "container-no-gpu",
        "small-shm",
        "pcie-downgraded",
        "ram-below-2x-vram",
    }
    assert required <= set(rules.REGISTRY)


def test_catalog_lists_every_rule_with_severity_and_meaning():
    rows = rules.catalog()
    assert [r[0] for r in rows] == sorted(rules.REGISTRY)
    for rule_id, severity, summary in rows:
        assert severity in {s.value for s in Severity}
        assert len(summary) > 20, rule_id
    md = rules.catalog_markdown()
    assert md.count("\n") == len(rows) + 2
    assert "| `driver-too-old` | error |" in md


def test_findings_never_exceed_the_catalog_severity(healthy, judge, gpu):
    # a machine with many problems at once
    s = healthy
    s.system.env = {"CUDA_VISIBLE_DEVICES": "7", "CUDA_LAUNCH_BLOCKING": "1"}
    s.memory.shm_total_bytes = 64 * 2**20
    s.memory.total_bytes = 64 * 2**30
    s.nvidia.gpus[0].pcie.gen_device_max = 5
    s.nvidia.gpus[0].throttle_reasons = ["hw_thermal_slowdown"]
    v = judge(s)
    assert {
        "visible-devices",
        "cuda-debug-env",
        "small-shm",
        "ram-below-2x-vram",
        "pcie-downgraded",
        "gpu-throttled",
    } <= v.ids
    for f in v.findings:
        assert f.severity.rank >= rules.REGISTRY[f.id].severity.rank, f.id
    ranks = [f.severity.rank for f in v.findings]
    assert ranks == sorted(ranks)  # errors first


def test_a_crashing_rule_becomes_a_skip_not_a_crash(healthy):
    def broken(_s):
        raise ZeroDivisionError("boom")

    rule = _base.Rule("broken-rule", "a rule with a bug", broken)
    findings, skipped = _base.run(healthy, [rule])
    assert findings == []
    assert skipped[0].id == "broken-rule"
    assert "ZeroDivisionError: boom" in skipped[0].reason


def test_every_rule_has_tests_that_name_it():
    """Each rule id is asserted on by some test here (a positive and a negative live next to each other)."""
    from pathlib import Path

    text = "".join(
        p.read_text() for p in Path(__file__).parent.glob("test_rules_*.py") if p.name != Path(__file__).name
    )
    missing = [rule_id for rule_id in rules.REGISTRY if f'"{rule_id}"' not in text]
    assert missing == []


def test_the_collect_env_paste_of_this_machine_skips_driver_verdicts(judge):
    """The ingest fixture: torch 2.13.0+cpu, 'Nvidia driver version: Could not collect'."""
    from pathlib import Path

    from envcheck.ingest import collect_env

    path = Path(__file__).parents[1] / "fixtures" / "ingest" / "local_debian_cpu_torch213.txt"
    v = judge(collect_env.parse(path.read_text(), str(path)))
    assert v.findings == []
    assert v.skipped["driver-too-old"] == "driver version unknown"
    assert "cpu-only-wheel" in v.skipped  # no GPU list in the paste: no verdict either way
