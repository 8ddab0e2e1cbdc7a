"""A cancel is never raised inside a finaliser, where Python only prints it and drops it
("Exception ignored in: <function Forward.__del__ ...> TaskCancelled"): it comes a moment later,
where it unwinds the task. A real signal in a real process, for both handlers."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

from tests.helpers.cli import REPO

SCRIPT = textwrap.dedent(
    """
    import gc, os, signal, sys, time, weakref
    from tasks.process import CancelHandler, Cancelled, TaskCancelled, cancel_task

    if sys.argv[1] == "worker":
        signal.signal(signal.SIGTERM, cancel_task)
    else:
        CancelHandler().install()

    def busy(seconds):  # the signal lands while this finaliser runs Python code
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            pass

    class Finalised:
        def __del__(self):
            os.kill(os.getpid(), signal.SIGTERM)
            busy(0.3)

    class Watched:
        pass

    try:
        if sys.argv[2] == "__del__":
            Finalised()  # dropped at once: its __del__ runs here
        elif sys.argv[2] == "gc callback":  # no frame says "finaliser": the backstop's case
            def once(phase, info):
                if phase == "start" and once in gc.callbacks:
                    gc.callbacks.remove(once)
                    os.kill(os.getpid(), signal.SIGTERM)
                    busy(0.3)
            gc.callbacks.append(once)
            gc.collect()
        else:
            watched = Watched()
            weakref.finalize(watched, lambda: (os.kill(os.getpid(), signal.SIGTERM), busy(0.3)))
            del watched
            gc.collect()
        busy(10)
        print("ran on")
    except (TaskCancelled, Cancelled) as exc:
        print("stopped:", type(exc).__name__, exc)
    """
)


@pytest.mark.parametrize("finaliser", ["__del__", "weakref.finalize", "gc callback"])
@pytest.mark.parametrize("where", ["worker", "run"])
def test_a_cancel_landing_in_a_finaliser_is_delivered_after_it(where: str, finaliser: str):
    result = subprocess.run(
        [sys.executable, "-c", SCRIPT, where, finaliser],
        cwd=REPO, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert "Exception ignored" not in result.stderr, result.stderr
    assert result.stdout.startswith("stopped: "), (result.stdout, result.stderr)
    assert "SIGTERM" in result.stdout


WORKER = textwrap.dedent(
    """
    import multiprocessing, sys, time
    from tasks.process import TaskCancelled, TaskProcessContext

    def work(out):
        with TaskProcessContext(None):  # as Luigi runs a task in a forked worker
            try:
                open(out + ".ready", "w").close()
                while True:
                    time.sleep(0.01)
            except TaskCancelled as exc:
                open(out, "w").write(str(exc))
                raise

    worker = multiprocessing.get_context("fork").Process(target=work, args=(sys.argv[1],))
    worker.start()
    print(worker.pid, flush=True)
    worker.join()
    """
)


@pytest.mark.parametrize("stop", ["cancel", "kill -9 of the run"])
def test_a_worker_says_why_it_stopped_and_prints_no_traceback(stop: str, tmp_path):
    import os
    import signal
    import time

    out = tmp_path / "why"
    run = subprocess.Popen([sys.executable, "-c", WORKER, str(out)], cwd=REPO, text=True,
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE)  # fmt: skip
    worker = int(run.stdout.readline())
    deadline = time.monotonic() + 60
    while not out.with_suffix(".ready").exists():
        assert time.monotonic() < deadline, "the worker never started"
        time.sleep(0.01)
    if stop == "cancel":
        os.kill(worker, signal.SIGTERM)
    else:
        run.kill()  # the kernel tells the worker (PR_SET_PDEATHSIG)
    _, stderr = run.communicate(timeout=60)  # to EOF: the worker holds the pipe too
    expected = "cancelled by SIGTERM" if stop == "cancel" else "the run's process died"
    assert expected in out.read_text()
    assert "Traceback" not in stderr, stderr
