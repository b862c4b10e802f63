"""envcheck must start fast: --help and the default report import no framework or cloud SDK."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

HEAVY = (
    "torch",
    "tensorflow",
    "jax",
    "jaxlib",
    "boto3",
    "botocore",
    "google",
    "docker",
    "numpy",
    "matplotlib",
    "ray",
    "asyncssh",
)

_CHILD = """
import json, sys
sys.argv = {argv!r}
from {module} import app
try:
    app()
except SystemExit:
    pass
heavy = sorted({{m.split('.')[0] for m in sys.modules}} & set({heavy!r}))
sys.stderr.write('@@heavy@@' + json.dumps(heavy) + '\\n')
"""


def _heavy_modules_after(module: str, argv: list[str]) -> list[str]:
    code = _CHILD.format(module=module, argv=argv, heavy=HEAVY)
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False
    )
    line = next(ln for ln in proc.stderr.splitlines() if ln.startswith("@@heavy@@"))
    return json.loads(line[len("@@heavy@@") :])


def test_envcheck_help_imports_nothing_heavy() -> None:
    assert _heavy_modules_after("envcheck.cli", ["envcheck", "--help"]) == []


def test_default_report_imports_nothing_heavy() -> None:
    # the frameworks are installed in the test venv: the report must still not import them
    assert _heavy_modules_after("envcheck.cli", ["envcheck", "--json"]) == []


def test_cluster_help_imports_no_engine_library() -> None:
    # ray and asyncssh load inside their adapter, when that adapter runs
    assert _heavy_modules_after("envcheck.cli", ["envcheck", "cluster", "--help"]) == []


def test_provision_help_imports_no_cloud_sdk() -> None:
    assert _heavy_modules_after("provision.cli", ["provision", "--help"]) == []


# ----------------------------------------------------------------------------- provision's pricing path
# `provision gpus` must answer in well under 0.3 s (scripts/bench_pricing.py prints the figures):
# the offline pricing commands load the pricing modules and the catalog, nothing of the cloud or
# image commands, no cloud SDK, no template engine and no pydantic (the catalog rows are dataclasses).

_PROVISION_CHILD = """
import json, os, sys
sys.argv = {argv!r}

def report(code):
    sys.stderr.write('@@modules@@' + json.dumps([code, sorted(sys.modules)]) + '\\n')
    sys.stderr.flush()

exit_now = os._exit
os._exit = lambda code: (report(code), exit_now(code))  # the offline commands skip the teardown
from provision.cli import main
try:
    main()
except SystemExit as done:
    report(done.code)
"""

#: never on the offline pricing path (top-level packages)
NOT_FOR_PRICING = (*HEAVY, "pydantic", "pydantic_core", "jinja2", "gpuhunt", "requests", "urllib3")
#: provision's own modules the pricing commands must not load
NOT_FOR_PRICING_MODULES = (
    "provision.commands.cloud",
    "provision.commands.images",
    "provision.launch",
    "provision.state",
    "provision.planning",
    "provision.settings",
    "provision.fleet",
    "provision.clouds",
    "provision.images",
    "provision.cluster",
    "provision.catalog.refresh",
)


def _provision_modules(args: list[str], catalog_dir: Path) -> tuple[int, str, set[str]]:
    """Exit code, stdout and every module loaded after ``provision ARGS`` ran to its end."""
    code = _PROVISION_CHILD.format(argv=["provision", *args])
    proc = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env={**os.environ, "PROVISION_CATALOG_DIR": str(catalog_dir), "COLUMNS": "100"},
    )
    line = next((ln for ln in proc.stderr.splitlines() if ln.startswith("@@modules@@")), None)
    assert line is not None, proc.stderr
    exit_code, modules = json.loads(line[len("@@modules@@") :])
    return exit_code, proc.stdout, set(modules)


def _loaded(modules: set[str], names: tuple[str, ...]) -> list[str]:
    """Which of ``names`` (packages: with their submodules) are among ``modules``."""
    return sorted(m for m in modules if m in names or m.startswith(tuple(f"{n}." for n in names)))


@pytest.mark.parametrize(
    "args",
    [
        ["gpus", "--json"],
        ["gpus", "A100", "--all-regions"],
        ["cost", "--params", "7e9", "--tokens", "2e12", "--json"],
        ["rig", "--gpu", "RTX 4090:2", "--json"],
        ["catalog", "--json"],
    ],
    ids=" ".join,
)
def test_pricing_commands_load_only_the_pricing_path(args: list[str], tmp_path: Path) -> None:
    exit_code, out, modules = _provision_modules(args, tmp_path)
    assert exit_code in (0, None), out
    # the command really ran: its module and the catalog are loaded, and it answered
    assert {"provision.commands.pricing", "provision.catalog"} <= modules
    if "--json" in args:
        assert json.loads(out)["schema_version"]
    gpus_only = ("provision.rig", "provision.catalog._parts") if args[0] == "gpus" else ()
    assert _loaded(modules, (*NOT_FOR_PRICING, *NOT_FOR_PRICING_MODULES, *gpus_only)) == []


def test_provision_help_builds_no_command(tmp_path: Path) -> None:
    exit_code, out, modules = _provision_modules(["--help"], tmp_path)
    assert exit_code in (0, None) and "gpus" in out and "gc" in out
    # the command modules are read for their summaries; what the commands run is not loaded
    light = tuple(m for m in NOT_FOR_PRICING_MODULES if not m.startswith("provision.commands."))
    assert _loaded(modules, (*NOT_FOR_PRICING, *light, "provision.catalog", "provision.cost")) == []


_HELP_CHILD = """
import sys, typer
from provision.cli import app
group = typer.main.get_command(app)
if {build_all!r}:
    for name in list(group.commands):
        group.commands[name]  # build every command for real
try:
    group.main(["--help"], prog_name="provision")
except SystemExit:
    pass
"""


def test_provision_help_lists_what_the_built_commands_say() -> None:
    # --help reads each command's summary from its registration without building it; the listing
    # must be exactly the one the fully built commands give
    def help_text(build_all: bool) -> str:
        proc = subprocess.run(
            [sys.executable, "-c", _HELP_CHILD.format(build_all=build_all)],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
            env={**os.environ, "COLUMNS": "100", "TERM": "dumb"},
        )
        assert proc.returncode == 0, proc.stderr
        return proc.stdout

    lazy, built = help_text(False), help_text(True)
    assert lazy == built
    for name in ("gpus", "cost", "rig", "catalog", "image", "up", "ls", "ssh", "exec", "down", "gc"):
        assert f" {name} " in lazy


def test_every_command_a_module_registers_is_listed_for_the_lazy_group() -> None:
    """A command added to a module's register() but not to the lazy group's sources would be
    unreachable ("No such command"): each source module must register exactly its listed names."""
    import importlib

    import typer

    from provision.cli import _Commands

    for module in sorted(set(_Commands.sources.values())):
        probe = typer.Typer()
        importlib.import_module(module).register(probe)
        names = {c.name or (c.callback.__name__ if c.callback else "") for c in probe.registered_commands}
        names |= {g.name or "" for g in probe.registered_groups}
        listed = {name for name, src in _Commands.sources.items() if src == module}
        assert names == listed, (module, names ^ listed)


@pytest.mark.parametrize(
    ("argv", "offline"),
    [
        (["gpus"], True),
        (["gpus", "A100", "--json"], True),
        (["cost", "--params", "7e9", "--tokens", "2e12"], True),
        (["rig", "--gpu", "RTX 4090:2", "--plot", "x.png"], True),
        (["catalog", "--json"], True),
        (["catalog", "refresh"], False),
        (["catalog", "refresh", "--cloud", "aws"], False),
        (["up", "--gpu", "A10G:1"], False),
        (["image", "build"], False),
        (["--version"], False),
        ([], False),
    ],
)
def test_only_the_offline_pricing_commands_skip_the_interpreter_teardown(
    argv: list[str], offline: bool
) -> None:
    from provision.cli import _offline

    assert _offline(argv) is offline


def test_an_offline_command_that_skips_teardown_still_writes_all_its_output(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "provision", "gpus", "--all-regions", "--json"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env={**os.environ, "PROVISION_CATALOG_DIR": str(tmp_path)},
    )
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)  # every byte of a large document arrived before the fast exit
    assert len(doc["offerings"]) > 1000 and "warning:" in proc.stderr


def test_the_lazy_group_builds_a_command_only_when_it_is_looked_up() -> None:
    import typer

    from provision.cli import app
    from provision.commands._lazy import LazyCommands, LazyGroup

    group = typer.main.get_command(app)
    commands = group.commands  # type: ignore[attr-defined]
    assert isinstance(commands, LazyCommands)
    order = ["gpus", "cost", "rig", "up", "ls", "ssh", "exec", "down", "gc", "catalog", "image"]
    assert list(commands) == order == group.list_commands(None)  # type: ignore[attr-defined]
    assert not any(commands.built(n) for n in order) and "nope" not in commands
    assert [p.name for p in commands["gpus"].params][:2] == ["gpu", "list_all"]
    assert [n for n in order if commands.built(n)] == ["gpus"]
    assert group.get_command(None, "nope") is None  # type: ignore[attr-defined]
    assert set(commands["catalog"].commands) == {"refresh"}

    class Misnamed(LazyGroup):
        sources = {"gpu": "provision.commands.pricing"}

    broken = typer.Typer(cls=Misnamed, add_completion=False)
    broken.callback()(lambda: None)
    with pytest.raises(LookupError, match="does not add the command 'gpu'"):
        typer.main.get_command(broken).commands["gpu"]  # type: ignore[attr-defined]
