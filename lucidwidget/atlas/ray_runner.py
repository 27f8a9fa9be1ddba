"""Running an atlas's units of work on Ray actors (`pip install "lucidwidget[ray]"`).

Each actor is a `work.Worker` (it loads the model once) holding one task at a time. A task whose actor
dies (a killed process, a lost node) goes back to the front of the queue and the actor is replaced, so
the atlas completes; an error inside a task (a bad setting, a diverged render) stops the run with that
error. Ray is imported here only, when a run asks for it.
"""

from __future__ import annotations

import collections
import logging

from lucidwidget.atlas.work import Worker

LOG = logging.getLogger("lucidwidget.atlas")

WORKER_ENVIRONMENT = {
    "TF_FORCE_GPU_ALLOW_GROWTH": "true",
    "XLA_PYTHON_CLIENT_PREALLOCATE": "false",
    "TF_CPP_MIN_LOG_LEVEL": "2",
}
"""Set in every actor: TensorFlow takes GPU memory as it needs it and JAX does not preallocate 75% of
the device, so actors can share a GPU (give each a fraction with `ray_options={"num_gpus": 0.5}`)."""

CPUS_PER_WORKER = 4
"""Cores an actor reserves on a CPU cluster when `workers` is not given (and the threads each one runs):
an assumption, not a measurement (this project's machine has 2 cores); set `workers` to choose."""

MAX_LOST_PER_WORKER = 3
"""Actors replaced per worker slot before the run gives up: a task that kills every actor it lands on
(out of host memory, say) must stop the run rather than loop."""

ACTOR_NAME = "lucidwidget-atlas-worker-{slot}-{generation}"
"""Actors are named, so a cluster's tools (and tests) can find them."""


class RayRunner:
    """Runs tasks on `workers` Ray actors, replacing any that die and retrying their task.

    Args:
        job: the `work.Job` (its model must be a name or a path every node can load).
        address: `"auto"` (this machine's cluster, else a new local one: `ray.init()`) or a Ray address.
        workers: number of actors. Defaults to None: one per GPU on a cluster with GPUs, else one per
            `CPUS_PER_WORKER` cores.
        ray_options: extra `ray.remote` options for each actor (e.g. `{"num_gpus": 0.5}`). Defaults to
            None.
    """

    def __init__(self, job, address="auto", workers=None, ray_options=None):
        import ray

        self._ray = ray
        self._started = not ray.is_initialized()
        if self._started:
            ray.init(address=None if address == "auto" else address, include_dashboard=False,
                     log_to_driver=False, logging_level=logging.WARNING)
        resources = ray.cluster_resources()
        gpus, cpus = int(resources.get("GPU", 0)), max(1, int(resources.get("CPU", 1)))
        count = workers or gpus or max(1, cpus // CPUS_PER_WORKER)
        threads = max(1, cpus // count)
        options = {"num_gpus": 1, "num_cpus": 1} if gpus else {"num_cpus": threads}
        environment = {**WORKER_ENVIRONMENT, "OMP_NUM_THREADS": str(threads), "TF_NUM_INTRAOP_THREADS": str(threads)}
        self._options = {**options, "runtime_env": {"env_vars": environment}, **(ray_options or {})}
        self._job = job
        self._actor_class = ray.remote(Worker)
        self._generation = collections.Counter()
        self.lost = 0
        self._actors = [self._start(slot) for slot in range(count)]
        try:
            self.names = ray.get([actor.identity.remote() for actor in self._actors])
        except ray.exceptions.RayActorError as error:
            self.close()
            raise RuntimeError(f"The Ray workers could not start (each loads the model): {error}") from None
        LOG.info("Ray: %d workers (%s each) on a cluster of %d CPUs and %d GPUs", count,
                 "1 GPU" if gpus else f"{threads} CPUs", cpus, gpus)

    def _start(self, slot):
        self._generation[slot] += 1
        name = ACTOR_NAME.format(slot=slot, generation=self._generation[slot])
        return self._actor_class.options(name=name, **self._options).remote(self._job)

    def map(self, tasks):
        """Yields each task's result as it completes; a task whose actor died runs again on a new one."""
        ray = self._ray
        queue = collections.deque(tasks)
        running = {}
        idle = collections.deque(range(len(self._actors)))
        while queue or running:
            while queue and idle:
                slot, task = idle.popleft(), queue.popleft()
                running[self._actors[slot].run.remote(task)] = (slot, task)
            (ready,), _ = ray.wait(list(running), num_returns=1)
            slot, task = running.pop(ready)
            try:
                result = ray.get(ready)
            except ray.exceptions.RayActorError:
                self._replace(slot, task)
                queue.appendleft(task)
                idle.append(slot)
                continue
            except ray.exceptions.RayTaskError as error:
                raise error.as_instanceof_cause() from None
            idle.append(slot)
            self.names[slot] = result.worker
            yield result

    def _replace(self, slot, task):
        self.lost += 1
        if self._generation[slot] > MAX_LOST_PER_WORKER:
            raise RuntimeError(f"Ray worker {slot} was lost {self._generation[slot]} times; the last time while "
                               f"running {task.label}. Received: workers={len(self._actors)}")
        LOG.warning("Ray worker %d (%s) was lost while running %s; that task runs again on a new worker",
                    slot, self.names[slot], task.label)
        self._actors[slot] = self._start(slot)

    def close(self):
        """Stops the actors, and Ray itself when this runner started it."""
        for actor in self._actors:
            self._ray.kill(actor)
        if self._started:
            self._ray.shutdown()
