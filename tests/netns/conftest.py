"""Fixtures for the network-namespace tests (see netns_cluster.py)."""
from netns_cluster import cluster, netns_runnable  # noqa: F401  (fixtures)
