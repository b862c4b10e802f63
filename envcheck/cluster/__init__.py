"""``envcheck cluster``: envcheck on every node of a cluster, and which node is different and why.

The shape: an engine adapter (Ray, Slurm, SSH, Kubernetes, or saved files) runs
``envcheck cluster-node`` on each node and hands back what each node printed
(:class:`~envcheck.cluster.models.NodeRun`); :mod:`~envcheck.cluster.protocol` turns that into a
:class:`~envcheck.cluster.models.NodeResult` with a status (ok, unreachable, hung, crashed,
failed); :mod:`~envcheck.cluster.aggregate` is pure and turns the list of results into one
:class:`~envcheck.cluster.models.ClusterReport` (layer table, drift, outliers, per-node findings).

Nothing here imports an engine's library at import time: ray and asyncssh load inside their
adapter when that adapter runs, so ``envcheck`` and ``envcheck --help`` stay fast.
"""
