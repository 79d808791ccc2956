"""Ray, for the work that outgrows one machine: the connection, the resources of
one worker, and independent jobs (grid cells, study cells) as Ray tasks.

Workers read and write the same paths as the driver, so on a cluster every node
needs the project folder at the same path (a shared filesystem); each task
changes into the driver's working directory first, so relative paths in
settings and saved configs mean the same everywhere. Ray is an optional extra:
``pip install "spacy-dlfa[ray]"``.
"""
import logging
import os
from dataclasses import dataclass
from typing import Any, Callable, Dict, List, Optional, Sequence, TypeVar

from wasabi import msg

Item = TypeVar("Item")
ENGINES = ("local", "ray")


@dataclass(frozen=True)
class RaySettings:
    """``address`` None starts a local Ray (``auto``: the cluster ``ray start`` began on this node);
    ``concurrency`` workers at once, 0 for as many as the cluster's CPUs (GPUs) allow at
    ``num_cpus`` (``num_gpus``) each."""

    address: Optional[str] = None
    concurrency: int = 0
    num_cpus: float = 1.0
    num_gpus: float = 0.0


def require_ray():
    try:
        import ray
    except ImportError:
        raise ImportError('the ray engine needs Ray: pip install "spacy-dlfa[ray]"') from None
    return ray


def connect_ray(address: Optional[str]):
    """Join the cluster at ``address`` (None: start a local Ray on this machine), unless already connected."""
    ray = require_ray()
    if not ray.is_initialized():
        ray.init(address=address, include_dashboard=False, log_to_driver=False, logging_level=logging.WARNING)
    logging.getLogger("ray.data").setLevel(logging.WARNING)
    return ray


def worker_count(ray, cluster: RaySettings) -> int:
    """``cluster.concurrency``, or how many workers of this size the cluster holds at once."""
    if cluster.concurrency > 0:
        return cluster.concurrency
    resources = ray.cluster_resources()
    if cluster.num_gpus > 0:
        return max(1, int(resources.get("GPU", 0) / cluster.num_gpus))
    return max(1, int(resources.get("CPU", 1) / max(cluster.num_cpus, 1e-9)))


def _in_directory(function: Callable[[Any], Any], directory: str, item: Any) -> Any:
    os.chdir(directory)
    return function(item)


def run_jobs(function: Callable[[Item], Any], items: Sequence[Item], engine: str = "local",
             cluster: Optional[RaySettings] = None, describe: Callable[[Item], str] = str) -> List[Any]:
    """``[function(item) for item in items]``, one after another (local) or as Ray tasks of
    ``cluster``'s size; results in the order of ``items``. A failed job fails the call after
    the others have finished, so their results are kept on disk."""
    if engine not in ENGINES:
        raise ValueError(f"unknown engine {engine!r}: use {' or '.join(ENGINES)}")
    if engine == "local" or not items:
        return [function(item) for item in items]
    cluster = cluster or RaySettings()
    ray = connect_ray(cluster.address)
    task = ray.remote(num_cpus=cluster.num_cpus, num_gpus=cluster.num_gpus, max_retries=0)(_in_directory)
    limit = worker_count(ray, cluster)
    waiting = list(enumerate(items))
    running: Dict[Any, int] = {}
    results: Dict[int, Any] = {}
    failures: List[str] = []
    msg.info(f"ray: {len(items)} job(s), up to {limit} at a time, {cluster.num_cpus:g} CPU / {cluster.num_gpus:g} GPU each")
    while waiting or running:
        while waiting and len(running) < limit:
            index, item = waiting.pop(0)
            running[task.remote(function, os.getcwd(), item)] = index
        finished, _ = ray.wait(list(running), num_returns=1)
        index = running.pop(finished[0])
        try:
            results[index] = ray.get(finished[0])
        except Exception as err:  # noqa: BLE001 - reported below with the job it belongs to
            cause = getattr(err, "cause", None) or err  # a RayTaskError carries the job's own exception
            failures.append(f"{describe(items[index])}: {type(cause).__name__}: {cause}")
            msg.fail(f"ray: {describe(items[index])} failed", str(err))
    if failures:
        raise RuntimeError("ray jobs failed: " + "; ".join(failures))
    return [results[index] for index in range(len(items))]
