"""A multi-node engine cluster for tests: EngineNode JVMs on 127.0.0.1 that find each other
through discovery.seed_hosts (fixed transport ports). The first node bootstraps the cluster
(cluster.initial_cluster_manager_nodes names only it), so nodes can start one after another,
and killing any other node leaves a working cluster behind."""

from __future__ import annotations

import json
import urllib.request
from pathlib import Path

from tests.support.engine import EngineNode
from tests.support.ports import free_port


class EngineCluster:
    def __init__(self, folder: Path, size: int = 2):
        transports = [free_port() for _ in range(size)]
        seeds = ",".join(f"127.0.0.1:{port}" for port in transports)
        self.nodes = [
            EngineNode(Path(folder) / f"node-{i}", settings={
                "node.name": f"farm-engine-{i}", "transport.port": str(transports[i]),
                "discovery.seed_hosts": seeds,
                "cluster.initial_cluster_manager_nodes": "farm-engine-0"})
            for i in range(size)]

    @property
    def urls(self) -> list[str]:
        return [node.url for node in self.nodes]

    def start(self, timeout: float = 300) -> EngineCluster:
        for node in self.nodes:
            node.start(timeout=timeout)
        return self

    def health(self) -> dict:
        """_cluster/health from the first node that answers."""
        for url in self.urls:
            try:
                with urllib.request.urlopen(f"{url}/_cluster/health", timeout=10) as response:
                    return json.load(response)
            except OSError:
                continue
        return {}

    def not_manager(self) -> EngineNode:
        """A node that is not the elected cluster manager: killing it keeps the cluster up."""
        with urllib.request.urlopen(f"{self.urls[0]}/_cat/nodes?h=name,m&format=json",
                                    timeout=10) as response:
            rows = json.load(response)
        elected = next(row["name"] for row in rows if row["m"] == "*")
        return next(node for node in self.nodes if node.settings["node.name"] != elected)

    def stop(self) -> None:
        for node in reversed(self.nodes):
            node.stop()
