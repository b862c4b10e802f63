"""Clusters: N machines that train together.

``nodes`` is the cluster as its nodes see it (who is the head, where each node is); ``bootstrap``
renders the cluster file and the first-boot script that writes it and starts an engine; ``remote``
runs commands on every node over SSH (asyncssh, imported lazily); ``capabilities`` says which
instance types can join a fast cluster (EFA), with the source of every row. Nothing here talks to a
cloud API: the launch targets create the machines and hand their addresses to these modules.
"""
