"""Luigi's worker, with a stop of its forked workers that always ends.

When ``luigi.build`` unwinds (a cancel, a lost central scheduler), Luigi's worker terminates
each forked task process and then waits for it with no time limit; a task that cannot finish
unwinding (a process pool whose workers never return, a child stuck on a lock) would hold the
run forever. Here each one gets :data:`WORKER_STOP_S` to go through its ``finally`` blocks
(:mod:`tasks.process` turns the SIGTERM into a cancel), then it and everything it started are
killed, so the run always ends and leaves no process behind.
"""

from __future__ import annotations

import multiprocessing
import time

import luigi.interface
import luigi.worker

from kwsops.procs import descendants, end_processes

WORKER_STOP_S = 30.0  # a cancelled task unwinds within this (ClearML's close takes ~10 s)


def stop_task_processes(
    processes: list[multiprocessing.Process], grace: float = WORKER_STOP_S
) -> None:
    """SIGTERM the forked task processes all at once, SIGKILL those still running after
    ``grace`` s, then end what they started (decoders, git or dvc) in the same way."""
    running = [p for p in processes if p.pid is not None and p.is_alive()]
    started = [child for p in running for child in descendants(p.pid)]
    for process in running:
        process.terminate()
    deadline = time.monotonic() + grace
    for process in running:
        process.join(max(0.0, deadline - time.monotonic()))
    for process in running:
        if process.is_alive():
            started += descendants(process.pid)  # what it started while unwinding
            process.kill()
            process.join(grace)
    end_processes(started, grace)


class StoppingWorker(luigi.worker.Worker):
    """Luigi's worker; its exit ends every task process it forked, in bounded time."""

    def __exit__(self, kind: object, value: object, traceback: object) -> bool:
        stop_task_processes(list(self._running_tasks.values()))
        return super().__exit__(kind, value, traceback)


class WorkerFactory(luigi.interface._WorkerSchedulerFactory):
    """For ``luigi.build(..., worker_scheduler_factory=...)``: Luigi's, with our worker."""

    def create_worker(
        self, scheduler: object, worker_processes: int, assistant: bool = False
    ) -> StoppingWorker:
        return StoppingWorker(
            scheduler=scheduler, worker_processes=worker_processes, assistant=assistant
        )
