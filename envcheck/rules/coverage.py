"""What the report could not look at: failed or hung probes, and frameworks that die when imported.

A report that could not look must not say "no problems": a probe that failed or timed out is a
finding (an error when verdicts about GPUs and frameworks rest on it), and so is a framework
whose ``--deep`` child crashed, hung, ran out of memory or raised on import.
"""

from __future__ import annotations

from collections.abc import Iterator

from envcheck.models import Finding, Section, Severity, Snapshot
from envcheck.rules._base import MissingFacts, need, rule

E, W = Severity.ERROR, Severity.WARNING

#: sections the GPU, driver and framework verdicts rest on: without them the report cannot vouch
KEY_SECTIONS = ("system", "nvidia", "cuda", "frameworks")
#: framework name -> the module its import names
_MODULES = {"torch": "torch", "tensorflow": "tensorflow", "jax": "jax"}


@rule(
    "probe-failed",
    "a probe failed or did not answer in time, so the report could not look at that part of the "
    "machine (error for the system, NVIDIA, CUDA and framework probes)",
    E,
)
def probe_failed(s: Snapshot) -> Iterator[Finding]:
    if s.source == "collect_env":  # a paste has no probes: what it lacks is not a probe failure
        raise MissingFacts("probe outcomes are unknown for a pasted collect_env")
    sections = [(name, getattr(s, name)) for name in s.__struct_fields__]
    collected = [(name, sec) for name, sec in sections if isinstance(sec, Section)]
    if not collected:
        raise MissingFacts("probe outcomes unknown (no section collected)")
    for name, section in collected:
        if not section.error:
            continue
        key = name in KEY_SECTIONS
        timed_out = "did not answer" in section.error or "did not finish" in section.error
        yield Finding(
            id="probe-failed",
            severity=E if key else W,
            summary=f"the {name} probe could not look: {section.error}",
            facts={"section": name, "error": section.error},
            fix=(
                "Something on the machine is hanging (a wedged driver call or a slow filesystem); "
                "run again with a longer --timeout, and the verdicts that need these facts will run"
                if timed_out
                else "Run again with -v to see which facts are missing; ENVCHECK_DEBUG=1 shows more"
            ),
            commands=["envcheck --timeout 60 -v" if timed_out else "envcheck -v"],
        )


@rule(
    "framework-import-failed",
    "a framework crashed, hung, ran out of memory or raised when imported (--deep): code that "
    "imports it fails the same way",
    E,
)
def framework_import_failed(s: Snapshot) -> Iterator[Finding]:
    frameworks = need(s.frameworks, "framework facts").frameworks
    imported = [fw for fw in frameworks if fw.installed and fw.deep is not None]
    if not imported:
        raise MissingFacts("no framework was imported (run with --deep)")
    for fw in imported:
        if fw.deep is None or fw.deep.ok:
            continue
        why = fw.deep.error or "no answer"
        module = _MODULES.get(fw.name, fw.name)
        if "killed by SIGKILL" in why:
            fix = "The import was killed, most likely for lack of memory: check the memory limit."
        elif "timed out" in why:
            fix = "The import hangs: run it by hand to see where (faulthandler prints the stack)."
        else:
            fix = "Run the import by hand to see the whole error; a crash usually means mismatched " + (
                "native libraries: reinstall the framework in a clean environment."
            )
        yield Finding(
            id="framework-import-failed",
            severity=E,
            summary=f"{fw.name} {fw.version or ''} fails when imported: {why}".replace("  ", " "),
            facts={"framework": fw.name, "version": fw.version, "error": why, "seconds": fw.deep.seconds},
            fix=fix,
            commands=[f'python -X faulthandler -c "import {module}"'],
            subject=fw.name,
        )
