"""Kubernetes: an Indexed Job with one pod per node, and a runner that drives it with kubectl.

``render_manifest`` is pure: ``completionMode: Indexed`` with one completion per node, the GPUs
of a whole node requested (``nvidia.com/gpu``), required pod anti-affinity on
``kubernetes.io/hostname`` so no two pods share a node, the GPU taint tolerated, and the node's
name passed in through the downward API. Every object carries a run label we chose, and the
runner deletes only the Job it created, by name and that label.

``KubectlEngine`` applies the manifest, waits for the pods, reads each pod's log (the same
protocol lines as every engine) and deletes the Job: a pod that never scheduled is an
unreachable node with the scheduler's reason, a failed container a crash with its reason.
"""

from __future__ import annotations

import contextlib
import json
import secrets
import shutil
import subprocess
import time
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from envcheck.cluster.engine import Progress
from envcheck.cluster.models import NodeRef, NodeRun
from envcheck.errors import EnvcheckError

if TYPE_CHECKING:
    from envcheck.cluster.driver import ClusterOptions

RUN_LABEL = "envcheck.mlrig.dev/run"
MANAGED = {"app.kubernetes.io/name": "envcheck", "app.kubernetes.io/managed-by": "envcheck-cluster"}
#: image when none is given: plain Python, envcheck installed at start (checks the node, not your image)
BOOTSTRAP_IMAGE = "python:3.12-slim"
#: seconds a pod may take to be scheduled and pull its image, beyond the node deadline
_START_S = 300


def _yaml_scalar(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return str(value)
    return json.dumps(str(value))  # a JSON string is a valid YAML double-quoted scalar


def to_yaml(value: Any, indent: int = 0) -> str:
    """Plain dicts/lists/scalars as block YAML (no YAML library needed to write a manifest)."""
    pad = "  " * indent
    if isinstance(value, dict):
        if not value:
            return f"{pad}{{}}\n"
        out = []
        for k, v in value.items():
            if isinstance(v, (dict, list)) and v:
                out.append(f"{pad}{k}:\n{to_yaml(v, indent + 1)}")
            else:
                out.append(
                    f"{pad}{k}: {to_yaml(v, 0).strip() if isinstance(v, (dict, list)) else _yaml_scalar(v)}\n"
                )
        return "".join(out)
    if isinstance(value, list):
        if not value:
            return f"{pad}[]\n"
        out = []
        for item in value:
            body = (
                to_yaml(item, indent + 1)
                if isinstance(item, (dict, list))
                else f"{pad}  {_yaml_scalar(item)}\n"
            )
            out.append(f"{pad}- {body.lstrip()}")
        return "".join(out)
    return f"{pad}{_yaml_scalar(value)}\n"


def node_command(opts: ClusterOptions, image: str | None) -> list[str]:
    from envcheck.cluster.driver import node_args

    args = ["envcheck", *node_args(opts)]
    if image:
        return args
    quoted = " ".join(json.dumps(a) for a in args)
    return ["sh", "-c", f"pip install --quiet --disable-pip-version-check mlrig && exec {quoted}"]


def manifest(
    *,
    opts: ClusterOptions,
    nodes: int,
    image: str | None,
    gpus: int,
    namespace: str,
    run_id: str | None = None,
) -> dict[str, Any]:
    """The Indexed Job as plain data (pure)."""
    run_id = run_id or secrets.token_hex(4)
    name = f"envcheck-cluster-{run_id}"
    labels = {**MANAGED, RUN_LABEL: run_id}
    container: dict[str, Any] = {
        "name": "envcheck",
        "image": image or BOOTSTRAP_IMAGE,
        "command": node_command(opts, image),
        "env": [
            {"name": "ENVCHECK_NODE_NAME", "valueFrom": {"fieldRef": {"fieldPath": "spec.nodeName"}}},
            {"name": "NODE_NAME", "valueFrom": {"fieldRef": {"fieldPath": "spec.nodeName"}}},
        ],
        "resources": {"requests": {"cpu": "1", "memory": "2Gi"}, "limits": {"memory": "8Gi"}},
    }
    if gpus:
        container["resources"]["limits"]["nvidia.com/gpu"] = gpus
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": name, "namespace": namespace, "labels": labels},
        "spec": {
            "completionMode": "Indexed",
            "completions": nodes,
            "parallelism": nodes,
            "backoffLimit": 0,
            "activeDeadlineSeconds": int(opts.node_timeout()) + _START_S,
            "ttlSecondsAfterFinished": 3600,
            "template": {
                "metadata": {"labels": labels},
                "spec": {
                    "restartPolicy": "Never",
                    "affinity": {
                        "podAntiAffinity": {
                            "requiredDuringSchedulingIgnoredDuringExecution": [
                                {
                                    "labelSelector": {"matchLabels": {RUN_LABEL: run_id}},
                                    "topologyKey": "kubernetes.io/hostname",
                                }
                            ]
                        }
                    },
                    "tolerations": [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}],
                    "containers": [container],
                },
            },
        },
    }


def render_manifest(
    *,
    opts: ClusterOptions,
    nodes: int,
    image: str | None,
    gpus: int,
    namespace: str,
    run_id: str | None = None,
) -> str:
    """``envcheck cluster --k8s-manifest``: the Job as YAML, with a comment saying how to read it back."""
    job = manifest(opts=opts, nodes=nodes, image=image, gpus=gpus, namespace=namespace, run_id=run_id)
    run = job["metadata"]["labels"][RUN_LABEL]
    head = (
        "# envcheck on every node: one pod per node (Indexed Job, anti-affinity), GPUs requested.\n"
        "# kubectl apply -f THIS; then, when the pods are done:\n"
        f"#   for p in $(kubectl get pods -n {namespace} -l {RUN_LABEL}={run} -o name); do\n"
        "#     kubectl logs -n NAMESPACE $p > $(basename $p).log; done\n".replace("NAMESPACE", namespace)
        + "#   envcheck cluster --from *.log\n"
        "# or let envcheck do all of it: envcheck cluster --k8s\n"
    )
    return head + "---\n" + to_yaml(job)


class KubectlEngine:
    """Runs the Job with kubectl (the user's context and credentials), reads the pods, cleans up."""

    name = "k8s"

    def __init__(
        self,
        *,
        opts: ClusterOptions,
        nodes: int,
        image: str | None,
        gpus: int,
        namespace: str,
        kubectl: str | None = None,
    ) -> None:
        exe = kubectl or shutil.which("kubectl")
        if exe is None:
            raise EnvcheckError(
                "--k8s needs kubectl on PATH",
                hint="or render the Job with envcheck cluster --k8s-manifest and apply it yourself",
            )
        self.kubectl = exe
        self.opts, self.nodes, self.image, self.gpus, self.namespace = opts, nodes, image, gpus, namespace
        self.run_id = secrets.token_hex(4)
        self.job = f"envcheck-cluster-{self.run_id}"
        self._created = False

    def _kubectl(self, *args: str, stdin: str | None = None, timeout: float = 60) -> str:
        try:
            proc = subprocess.run(
                [self.kubectl, "-n", self.namespace, *args],
                input=stdin,
                capture_output=True,
                text=True,
                timeout=timeout,
                check=False,
            )
        except subprocess.TimeoutExpired as exc:
            raise EnvcheckError(f"kubectl {args[0]} did not answer in {timeout:g}s") from exc
        if proc.returncode != 0:
            last = proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else f"exit {proc.returncode}"
            raise EnvcheckError(
                f"kubectl {' '.join(args[:2])} failed: {last}",
                hint="kubectl cluster-info shows whether kubectl reaches a cluster",
            )
        return proc.stdout

    def discover(self) -> list[NodeRef]:
        """Pods are the nodes; they exist once the Job runs, so discovery is the Job's indexes."""
        return [NodeRef(name=f"index-{i}", handle=i) for i in range(self.nodes)]

    def run(
        self,
        nodes: Sequence[NodeRef],
        args: Sequence[str],
        *,
        timeout: float,
        env: Mapping[str, str] | None = None,
        progress: Progress | None = None,
    ) -> list[NodeRun]:
        if list(args[:1]) != ["cluster-node"]:
            return [
                NodeRun(name=n.name, engine_error="the collective is not run through --k8s yet")
                for n in nodes
            ]
        job = manifest(
            opts=self.opts,
            nodes=len(nodes),
            image=self.image,
            gpus=self.gpus,
            namespace=self.namespace,
            run_id=self.run_id,
        )
        self._kubectl("create", "-f", "-", stdin=json.dumps(job))
        self._created = True
        start = time.perf_counter()
        limit = timeout + _START_S
        pods: list[dict[str, Any]] = []
        while time.perf_counter() - start < limit:
            pods = self._pods()
            if len(pods) >= len(nodes) and all(
                p.get("status", {}).get("phase") in ("Succeeded", "Failed") for p in pods
            ):
                break
            time.sleep(2)
        return [self._node_run(i, pods, time.perf_counter() - start) for i in range(len(nodes))]

    def _pods(self) -> list[dict[str, Any]]:
        out = self._kubectl("get", "pods", "-l", f"{RUN_LABEL}={self.run_id}", "-o", "json")
        items = json.loads(out).get("items", [])
        return [p for p in items if p.get("metadata", {}).get("labels", {}).get(RUN_LABEL) == self.run_id]

    def _node_run(self, index: int, pods: list[dict[str, Any]], seconds: float) -> NodeRun:
        key = "batch.kubernetes.io/job-completion-index"
        pod = next(
            (p for p in pods if str(p.get("metadata", {}).get("annotations", {}).get(key)) == str(index)),
            None,
        )
        run = NodeRun(name=f"index-{index}", seconds=seconds)
        if pod is None:
            run.unreachable = "no pod was created for this index"
            return run
        spec, status = pod.get("spec", {}), pod.get("status", {})
        run.name = spec.get("nodeName") or run.name
        run.address = status.get("hostIP")
        phase = status.get("phase")
        if phase == "Pending" and not spec.get("nodeName"):
            conds: list[dict[str, Any]] = status.get("conditions", [])
            cond = next((c for c in conds if c.get("type") == "PodScheduled"), {})
            run.unreachable = f"pod not scheduled: {cond.get('message') or cond.get('reason') or 'pending'}"
            return run
        try:
            run.stdout = self._kubectl("logs", pod["metadata"]["name"], "--tail=-1", timeout=120)
        except EnvcheckError as exc:
            run.stderr = exc.message
        term = next(
            (
                c.get("state", {}).get("terminated")
                for c in status.get("containerStatuses", [])
                if c.get("state")
            ),
            None,
        )
        if phase in ("Pending", "Running") or term is None:
            run.timed_out = True
        elif term.get("exitCode", 0) >= 128 and term.get("reason") != "Completed":
            run.exit_code = term.get("exitCode")
            run.engine_error = f"container {term.get('reason') or 'died'} (exit {term.get('exitCode')})"
        else:
            run.exit_code = term.get("exitCode")
        return run

    def close(self) -> None:
        """Delete the Job this run created (its pods go with it); nothing else is touched."""
        if self._created:
            with contextlib.suppress(EnvcheckError):
                # by the run label we wrote (random per run): never a Job that is not ours
                selector = f"{RUN_LABEL}={self.run_id}"
                self._kubectl("delete", "job", "-l", selector, "--cascade=foreground", "--wait=false")
