"""A report that could not look never says "no problems": failed probes and dying framework imports."""

from __future__ import annotations

from envcheck.models import FrameworkDevices, FrameworksInfo, NvidiaInfo, Severity
from envcheck.render import headline
from envcheck.view import counts


def test_a_healthy_machine_has_no_coverage_findings(healthy, judge):
    v = judge(healthy)
    assert "probe-failed" not in v.ids and "framework-import-failed" not in v.ids


def test_a_key_probe_that_timed_out_is_an_error(healthy, judge):
    healthy.nvidia = NvidiaInfo(error="did not answer within 20s")
    f = judge(healthy).one("probe-failed")
    assert f.severity is Severity.ERROR and f.facts["section"] == "nvidia"
    assert "--timeout" in f.commands[0]


def test_a_minor_probe_that_failed_is_a_warning(healthy, judge):
    healthy.memory.error = "cannot read /proc/meminfo: Permission denied"
    f = judge(healthy).one("probe-failed")
    assert f.severity is Severity.WARNING and f.facts["section"] == "memory"


def test_a_pasted_report_is_not_blamed_for_what_it_lacks(healthy, judge):
    healthy.source = "collect_env"
    healthy.nvidia = NvidiaInfo(error="not in the paste")
    v = judge(healthy)
    assert "probe-failed" not in v.ids and "probe-failed" in v.skipped


def test_a_framework_that_segfaults_on_import_is_an_error(healthy, judge):
    torch = healthy.frameworks.frameworks[0]
    torch.deep = FrameworkDevices(ok=False, error="crashed: SIGSEGV during import")
    f = judge(healthy).one("framework-import-failed")
    assert f.severity is Severity.ERROR and f.subject == "torch"
    assert f.commands == ['python -X faulthandler -c "import torch"']


def test_hang_and_out_of_memory_each_get_their_own_fix(healthy, judge):
    torch = healthy.frameworks.frameworks[0]
    torch.deep = FrameworkDevices(ok=False, error="killed by SIGKILL (out of memory?) during import")
    assert "memory" in judge(healthy).one("framework-import-failed").fix
    torch.deep = FrameworkDevices(ok=False, error="timed out after 120s during import")
    assert "hangs" in judge(healthy).one("framework-import-failed").fix


def test_without_deep_the_rule_is_skipped_not_green(healthy, judge):
    healthy.frameworks = FrameworksInfo(frameworks=[])
    v = judge(healthy)
    assert "framework-import-failed" in v.skipped


def test_the_headline_of_an_incomplete_report_is_not_no_problems(healthy):
    from envcheck.report import judge as judge_report

    healthy.frameworks.frameworks[0].deep = FrameworkDevices(ok=False, error="crashed: SIGSEGV")
    report = judge_report(healthy)
    assert report.has_errors
    assert "no problems" not in headline(counts(report)).plain
