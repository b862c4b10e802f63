"""What every engine adapter offers: find the nodes, run one envcheck command on each, bring back output.

An adapter never interprets what a node printed (that is :mod:`envcheck.cluster.protocol`'s job)
and never waits past ``timeout``: a node still running then comes back ``timed_out`` with
whatever it printed so far. Each node gets ``ENVCHECK_NODE_INDEX`` (its place in the list) and
``ENVCHECK_NODE_NAME`` (the engine's name for it) in its environment, which the collective uses
for ranks.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Protocol

from envcheck.cluster.models import NodeRef, NodeRun

#: called with (node name, what happened) as nodes finish, for progress on stderr
Progress = Callable[[str, str], None]


class Engine(Protocol):
    #: ray, slurm, ssh, k8s
    name: str

    def discover(self) -> list[NodeRef]:
        """Every node the engine knows, including those it already knows are down."""
        ...

    def run(
        self,
        nodes: Sequence[NodeRef],
        args: Sequence[str],
        *,
        timeout: float,
        env: Mapping[str, str] | None = None,
        progress: Progress | None = None,
    ) -> list[NodeRun]:
        """``envcheck ARGS`` on each node at once; one NodeRun per node, in the order given."""
        ...

    def close(self) -> None:
        """Let go of the engine (disconnect); never stops anything the user runs."""
        ...


def node_env(index: int, node: NodeRef, extra: Mapping[str, str] | None) -> dict[str, str]:
    """The variables every engine sets for the command on ``node``."""
    return {"ENVCHECK_NODE_INDEX": str(index), "ENVCHECK_NODE_NAME": node.name, **(extra or {})}
