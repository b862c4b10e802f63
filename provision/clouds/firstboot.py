"""The first-boot script (AWS user-data, GCE/TPU startup-script): autostop timer, envcheck, setup.

Pure text rendering, so its content is tested without a cloud. The timer is a guest-side
``shutdown``; on AWS the instance is launched with InstanceInitiatedShutdownBehavior=terminate so
the shutdown terminates it, on Compute Engine ``max_run_duration`` enforces it from outside too.
"""

from __future__ import annotations

import shlex

from provision.plan import Plan

REPORT_PATH = "/var/lib/mlrig/envcheck.json"
LOG_PATH = "/var/log/mlrig-firstboot.log"


def render(plan: Plan, envcheck_spec: str, ssh_user: str) -> str:
    """A bash script run once as root on first boot; every step logs and none blocks the next."""
    lines = [
        "#!/bin/bash",
        f"# mlrig first boot for {plan.name} (launch {plan.launch_id})",
        "set -u",
        "mkdir -p /var/lib/mlrig",
        f"exec >>{LOG_PATH} 2>&1",
        'echo "mlrig first boot: $(date -u +%FT%TZ)"',
    ]
    if plan.autostop_minutes:
        lines += [
            f"# autostop: power off after {plan.autostop_minutes} min (launched to terminate on shutdown)",
            f"shutdown -h +{int(plan.autostop_minutes)} 'mlrig autostop' || "
            f"systemd-run --on-active={int(plan.autostop_minutes)}m /sbin/poweroff",
        ]
    spec = shlex.quote(envcheck_spec)
    user = shlex.quote(ssh_user)
    lines += [
        "# envcheck report of the fresh machine, kept for `provision ssh NAME cat " + REPORT_PATH + "`:",
        "# the mlrig release that launched it (pinned), wheels only, in a virtualenv of its own, and",
        "# installed and run as the login user (nobody if it does not exist yet), never pip as root",
        f'MLRIG_USER={user}; id -u "$MLRIG_USER" >/dev/null 2>&1 || MLRIG_USER=nobody',
        'install -d -m 0755 -o "$MLRIG_USER" /opt/mlrig',
        'AS_USER="runuser -u $MLRIG_USER --"; PY=/opt/mlrig/venv/bin/python',
        "$AS_USER python3 -m venv /opt/mlrig/venv"
        f" && $AS_USER $PY -m pip install --quiet --only-binary=:all: {spec}"
        f" && $AS_USER $PY -m envcheck --deep --json >{REPORT_PATH}"
        " || echo 'envcheck could not run'",
    ]
    if plan.setup_script:
        lines += [
            "# user setup script (--setup), run as the login user",
            "cat >/var/lib/mlrig/setup.sh <<'MLRIG_SETUP_EOF'",
            plan.setup_script.rstrip("\n"),
            "MLRIG_SETUP_EOF",
            "chmod 0755 /var/lib/mlrig/setup.sh",
            f"if id {user} >/dev/null 2>&1; then sudo -u {user} -H bash /var/lib/mlrig/setup.sh; "
            'else bash /var/lib/mlrig/setup.sh; fi; echo "setup exited with $?"',
        ]
    if plan.nodes > 1 or _slice_hosts(plan) > 1:
        lines += [
            "# the cluster: find my rank, write /etc/mlrig/cluster.env, start the engine",
            cluster(plan, ssh_user),
        ]
    lines.append("touch /var/lib/mlrig/firstboot.done")
    return "\n".join(lines) + "\n"


def _slice_hosts(plan: Plan) -> int:
    """Worker hosts of the plan's TPU slice (1 for anything else, or a type the table lacks)."""
    if not plan.tpu_runtime:
        return 1
    from provision.cluster.tpu import hosts_of

    return hosts_of(plan.instance_type) or 1


def cluster(plan: Plan, ssh_user: str) -> str:
    """The bootstrap fragment of a cluster's nodes (the same on each: every node finds its rank;
    the node list arrives after the launch, see provision.cluster.deliver)."""
    from provision import targets
    from provision.cluster import bootstrap
    from provision.cluster.nodes import ClusterSpec, Engine

    size = max(plan.nodes, _slice_hosts(plan))  # a slice's hosts find each other in its metadata
    spec = ClusterSpec(name=plan.name, size=size, engine=Engine(plan.engine), launch_id=plan.launch_id)
    metadata = bootstrap.Metadata(targets.get(plan.target).metadata_server)
    return bootstrap.snippet(spec, metadata=metadata, run_as=ssh_user)
