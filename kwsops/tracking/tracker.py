"""ClearML tracking of the pipeline stages: offline by default, online when a server is set up.

Each working stage is one ClearML task in project ``KWS``::

    with stage_task(ws.root, "train model", "training", params, tags=["batch_32"]) as tracker:
        tracker.scalar("loss", "fold 0 train", 0.41, iteration=epoch)
        tracker.artifact("fold_0", folder / "model.safetensors")

Offline (no credentials): ``Task.set_offline(True)`` before ``Task.init``; the session is written
to ``<ws>/.kwsops/clearml/cache/offline/<task-id>/`` (``task.json``: name, type, tags, params,
artifacts; ``metrics.jsonl``: scalars, single values, plot/image/audio events; ``log.jsonl``:
console; ``data/``: copies of the artifact, image and audio files) plus a ``.zip`` of it made at
close. ``kwsops clearml import`` uploads the sessions to a server later.

Tracking is observability, not the product: if ClearML fails to start, the stage runs on with a
tracker whose ``mode`` is ``"disabled"`` and one warning; a failing call warns once and goes on.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import signal
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

from kwsops.procs import identity
from kwsops.secrets import scrub
from kwsops.text import error_line
from kwsops.tracking.index import TaskRecord, append_record, scrub_session
from kwsops.tracking.setup import (
    NO_FRAMEWORKS,
    PROJECT,
    clearml_dir,
    clearml_env,
    server_reachable,
    server_url,
    tracking_mode,
)

log = logging.getLogger("kwsops.tracking")
STREAMS = {"stdout": True, "stderr": True, "logging": False}  # logging reaches stderr anyway


def _clean(value: Any) -> Any:
    """A JSON-safe copy with known secrets masked."""
    if isinstance(value, dict):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set):
        return [_clean(v) for v in value]
    if value is None or isinstance(value, bool | int | float):
        return value
    return scrub(str(value))


class Tracker:
    """What a stage logs to its ClearML task. Every method is safe: a ClearML error becomes one
    warning per method and the stage goes on."""

    def __init__(self, record: TaskRecord, task: Any = None, ws_root: Path | None = None) -> None:
        self.record = record
        self.task_id: str = record.task_id
        self.mode: str = record.mode
        self.web_url: str | None = record.web_url
        self.session: Path | None = Path(record.session) if record.session else None
        self._task = task
        self._ws_root = ws_root
        self._staging = Path(tempfile.mkdtemp(prefix="kwsops-tracking-")) if task else None
        self._warned: set[str] = set()
        self._outcome: tuple[str, str | None] | None = None

    def _guard(self, what: str, action: Callable[[], Any]) -> None:
        if self._task is None:
            return
        try:
            action()
        except Exception as exc:
            if what not in self._warned:
                self._warned.add(what)
                log.warning(
                    "ClearML %s failed for task %s: %s", what, self.task_id, error_line(exc)
                )

    def _stage_copy(self, path: Path) -> str:
        """ClearML uploads media in the background: copy the file so the caller may delete it."""
        assert self._staging is not None
        folder = Path(tempfile.mkdtemp(dir=self._staging))
        return str(shutil.copy2(path, folder / Path(path).name))

    def log_params(self, params: dict, name: str = "General") -> None:
        clean = _clean(params)
        if name == "General":
            self.record.params.update(clean)
        else:
            self.record.params[name] = clean
        self._guard("log_params", lambda: self._task.connect(clean, name=name))

    def scalar(self, title: str, series: str, value: float, iteration: int) -> None:
        logger = self._task.get_logger() if self._task else None
        self._guard(
            "scalar", lambda: logger.report_scalar(title, series, float(value), int(iteration))
        )

    def single(self, name: str, value: float | int) -> None:
        def report() -> None:
            self.record.values[name] = float(value)
            self._task.get_logger().report_single_value(name, float(value))

        self._guard("single", report)

    def figure(
        self, title: str, png_or_figure: Any, series: str = "plot", iteration: int = 0
    ) -> None:
        """A PNG file or a matplotlib figure, shown as an image (debug sample) in ClearML."""

        def report() -> None:
            if isinstance(png_or_figure, str | os.PathLike):
                local = self._stage_copy(Path(png_or_figure))
            else:
                local = str(Path(tempfile.mkdtemp(dir=self._staging)) / "figure.png")
                png_or_figure.savefig(local, format="png", dpi=100)
            self._task.get_logger().report_image(title, series, iteration, local_path=local)

        self._guard("figure", report)

    def audio(self, title: str, series: str, path: Path, iteration: int = 0) -> None:
        logger = self._task.get_logger() if self._task else None
        self._guard(
            "audio",
            lambda: logger.report_media(
                title, series, iteration, local_path=self._stage_copy(path)
            ),
        )

    def artifact(self, name: str, path: Path) -> None:
        """Upload a file (offline: copied into the session, so it outlives the workspace's)."""

        def upload() -> None:
            if not Path(path).exists():
                raise FileNotFoundError(f"{path} does not exist")
            self._task.upload_artifact(name, artifact_object=Path(path), wait_on_upload=True)
            self.record.artifacts[name] = str(self._task.artifacts[name].url)

        self._guard("artifact", upload)

    def text(self, message: str) -> None:
        logger = self._task.get_logger() if self._task else None
        self._guard("text", lambda: logger.report_text(scrub(message), print_console=False))

    def outcome(self, status: str, error: str | None = None) -> None:
        """Record the stage's real outcome (an imported offline session always says completed)."""
        self._outcome = (status, scrub(error) if error else None)

    def _finish(self, status: str, error: str | None) -> None:
        if self._task is None:
            return
        if status == "completed" and self._outcome:  # an exception always wins
            status, error = self._outcome
        self.record.status, self.record.error = status, error
        tic = time.monotonic()
        self._guard("outcome", lambda: self._task.set_user_properties(outcome=status))
        if status != "completed":
            self._guard("outcome", lambda: self._task.add_tags([status]))
            self.text(f"kwsops: stage {status}: {error or ''}")
        with quiet_console():
            self._guard("close", self._task.close)
        if self.session is not None:
            self._guard("scrub", lambda: scrub_session(self.session))
        shutil.rmtree(self._staging or "", ignore_errors=True)
        self.record.tracking_seconds += time.monotonic() - tic
        if self._ws_root is not None:
            self._guard("index", lambda: append_record(self._ws_root, self.record))


@contextlib.contextmanager
def quiet_console() -> Iterator[None]:
    """ClearML prints session banners to the terminal; send them to the run log instead.

    The redirect is at the file-descriptor level: ClearML patches the ``sys.stdout`` object to
    capture console output, so that object must stay in place for the stage that follows."""
    with tempfile.TemporaryFile() as sink:
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(Exception):
                stream.flush()
        saved = [os.dup(1), os.dup(2)]
        os.dup2(sink.fileno(), 1)
        os.dup2(sink.fileno(), 2)
        try:
            yield
        finally:
            for stream in (sys.stdout, sys.stderr):
                with contextlib.suppress(Exception):
                    stream.flush()
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            for fd in saved:
                os.close(fd)
        sink.seek(0)
        for line in sink.read().decode("utf-8", "replace").splitlines():
            if line.strip() and "\x1b" not in line:  # not the CLI's live progress redraws
                log.info("clearml: %s", scrub(line))


def _disabled(name: str, task_type: str, reason: str) -> Tracker:
    log.warning("ClearML tracking disabled for stage %r: %s", name, reason)
    now = datetime.now().isoformat()
    return Tracker(TaskRecord("", name, task_type, now, "disabled", status="disabled"))


@contextlib.contextmanager
def _signal_handlers_kept() -> Iterator[None]:
    """Keep the process's SIGTERM/SIGINT handlers across ``Task.init``. ClearML installs its
    own, which close the task from inside the handler: landing in, say, an import, that waits
    on a thread that waits on the import lock, and a cancelled stage hangs for good. With ours
    kept, a cancel unwinds the stage and ``stage_task`` closes the task on the way out."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    saved = {sig: signal.getsignal(sig) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield
    finally:
        for sig, handler in saved.items():
            if handler is not None:
                signal.signal(sig, handler)


def _open(ws_root: Path, name: str, task_type: str, params: dict, tags: list[str]) -> Tracker:
    tic = time.monotonic()
    tags = [scrub(tag) for tag in tags]
    task = None
    try:
        mode = tracking_mode(ws_root)
        from clearml import Task
        from clearml.config.cache import SessionCache

        SessionCache.SESSION_CACHE_FOLDER = str(clearml_dir(ws_root))  # not ~/.clearml
        if Task.current_task() is not None:
            return _disabled(name, task_type, "another ClearML task is open in this process")
        if mode == "online" and not server_reachable(server_url()):
            log.warning("ClearML server %s unreachable: tracking %r offline", server_url(), name)
            mode = "offline"
        Task.set_offline(mode == "offline")
        with quiet_console(), _signal_handlers_kept():
            task = Task.init(
                project_name=PROJECT,
                task_name=name,
                task_type=task_type,
                tags=tags or None,
                reuse_last_task_id=False,
                continue_last_task=False,
                auto_connect_arg_parser=False,
                auto_connect_frameworks=NO_FRAMEWORKS,
                auto_resource_monitoring=False,
                auto_connect_streams=STREAMS,
            )
        if type(task) is not Task:  # a stub: ClearML decided this process may not track
            return _disabled(name, task_type, f"ClearML returned {type(task).__name__}")
        session = task.get_offline_mode_folder() if mode == "offline" else None
        record = TaskRecord(
            task_id=task.id,
            name=name,
            type=task_type,
            created=datetime.now().isoformat(),
            mode=mode,
            params=_clean(params),
            tags=tags,
            session=str(session) if session else None,
            web_url=None if mode == "offline" else task.get_output_log_web_page(),
            pid=os.getpid(),
            pid_started=identity()["pid_started"],
        )
        append_record(ws_root, record)
        tracker = Tracker(record, task, ws_root)
        tracker.log_params(params)
        record.tracking_seconds = time.monotonic() - tic
        return tracker
    except Exception as exc:
        if task is not None:  # never leave a half-opened task: it would block the next stage
            with contextlib.suppress(Exception):
                task.close()
        return _disabled(name, task_type, error_line(exc))


@contextlib.contextmanager
def stage_task(
    ws_root: Path, name: str, task_type: str, params: dict, tags: list[str] | tuple = ()
) -> Iterator[Tracker]:
    """A ClearML task around one stage; its outcome is recorded as completed, or failed with
    the error's first line (the exception still propagates)."""
    ws_root = Path(ws_root)
    system_exit = sys.exit  # ClearML wraps sys.exit and leaves it wrapped after close
    with contextlib.ExitStack() as stack:
        try:
            stack.enter_context(clearml_env(ws_root))
            tracker = _open(ws_root, name, task_type, params, list(tags))
        except Exception as exc:  # e.g. .kwsops/ not writable
            tracker = _disabled(name, task_type, error_line(exc))
        try:
            yield tracker
        except Exception as exc:
            tracker._finish("failed", error_line(exc))
            raise
        except BaseException as exc:  # KeyboardInterrupt, SystemExit
            tracker._finish("aborted", error_line(exc))
            raise
        else:
            tracker._finish("completed", None)
        finally:
            sys.exit = system_exit


def preload(ws_root: Path) -> None:
    """Import ClearML and read its config now (~1.5 s once per process), e.g. before Luigi
    forks its workers, so each forked stage does not pay it again."""
    with clearml_env(Path(ws_root)):
        from clearml import Task  # noqa: F401
        from clearml.config import config_obj

        config_obj.get("sdk.development")
