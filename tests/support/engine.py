"""Run a real single-node search engine (OpenSearch or Elasticsearch) in a local JVM.

The node is the Maven project in ``tests/engine`` (see its pom.xml); everything here is stdlib,
so the pytest fixture, the engine bench and ``make engine`` share it.

    node = EngineNode(tmp_path / "engine")   # a free port; engine from FARM_TEST_ENGINE
    node.start()                             # builds once, launches, waits for health; -> node.url
    node.kill(); node.start()                # same port and data dir: the indexed data survives
    node.stop()                              # or use the node as a context manager

From a shell: ``python -m tests.support.engine --port 9200 [--engine opensearch] [--data DIR]``.

Environment:
  FARM_TEST_ENGINE   ``opensearch`` (default: OpenSearch 2.19.6) or ``elasticsearch`` (8.19.21).
  FARM_M2_REPO       Maven local repository (default: Maven's own, ~/.m2/repository).
  FARM_ENGINE_JAVA_OPTS  extra JVM options, appended after the defaults (e.g. ``-Xmx2g``).
  JAVA_HOME          JDK to run and build with (default: ``java`` and ``mvn`` from PATH).
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from tests.support.ports import free_port

PROJECT_DIR = Path(__file__).resolve().parents[1] / "engine"
MAIN_CLASS_FILE = PROJECT_DIR / "target" / "classes" / "farm" / "engine" / "EngineMain.class"
ENGINES = ("opensearch", "elasticsearch")
DEFAULT_ENGINE = "opensearch"
READY_PREFIX = "engine ready on "
JVM_OPTIONS = [
    "-Xms512m",
    "-Xmx1g",
    # A node out of heap should die loudly rather than linger half-working under a test.
    "-XX:+ExitOnOutOfMemoryError",
    "-Dfile.encoding=UTF-8",
]


class EngineError(RuntimeError):
    """The engine could not be built or started; the message carries the relevant log tail."""


def default_engine() -> str:
    """The engine named by FARM_TEST_ENGINE, or OpenSearch."""
    engine = os.environ.get("FARM_TEST_ENGINE", "").strip().lower() or DEFAULT_ENGINE
    if engine not in ENGINES:
        raise EngineError(f"FARM_TEST_ENGINE={engine!r}: expected one of {', '.join(ENGINES)}")
    return engine


def _java() -> str | None:
    java_home = os.environ.get("JAVA_HOME")
    if java_home and (Path(java_home) / "bin" / "java").exists():
        return str(Path(java_home) / "bin" / "java")
    return shutil.which("java")


def unavailable_reason() -> str | None:
    """Why no engine can run here (no Java 17+, or no Maven to build it), or None when it can."""
    java = _java()
    if java is None:
        return "no `java` on PATH (nor in JAVA_HOME): the test search engine needs a JDK 17+"
    try:
        version = subprocess.run(
            [java, "-version"], capture_output=True, text=True, timeout=30
        ).stderr
    except (OSError, subprocess.SubprocessError) as error:
        return f"`{java} -version` failed: {error}"
    quoted = version.split('"')
    major = quoted[1].split(".")[0] if len(quoted) > 1 else ""
    if not major.isdigit() or int(major) < 17:
        found = version.strip().splitlines()[0] if version.strip() else "no version"
        return f"the test search engine needs Java 17+, found: {found}"
    if shutil.which("mvn") is None:
        return "no `mvn` on PATH: Maven is needed to build the test search engine (tests/engine)"
    return None


def java_available() -> bool:
    """True when Java 17+ and Maven are present; see unavailable_reason() for the why-not."""
    return unavailable_reason() is None


def _engine_dir(engine: str) -> Path:
    return PROJECT_DIR / "target" / engine


def _build_stamp(engine: str) -> Path:
    return _engine_dir(engine) / "build.stamp"


def _is_fresh(engine: str) -> bool:
    stamp = _build_stamp(engine)
    if not stamp.exists() or not MAIN_CLASS_FILE.exists():
        return False
    inputs = [PROJECT_DIR / "pom.xml", *PROJECT_DIR.joinpath("src").rglob("*.java")]
    return stamp.stat().st_mtime > max(path.stat().st_mtime for path in inputs)


def build(force: bool = False, engine: str | None = None) -> Path:
    """Build the engine with Maven unless its output is newer than pom.xml and the Java sources.

    Returns the engine's directory (target/<engine>). Safe to call from several processes at once.
    Raises EngineError with the tail of Maven's output when the build fails.
    """
    engine = engine or default_engine()
    if engine not in ENGINES:
        raise EngineError(f"unknown engine {engine!r}: expected one of {', '.join(ENGINES)}")
    if not force and _is_fresh(engine):
        return _engine_dir(engine)
    (PROJECT_DIR / "target").mkdir(exist_ok=True)
    with open(PROJECT_DIR / "target" / "build.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # one Maven run at a time; the others then find it fresh
        if not force and _is_fresh(engine):
            return _engine_dir(engine)
        # Stale jars of an older version would otherwise stay on the classpath next to the new ones.
        shutil.rmtree(_engine_dir(engine), ignore_errors=True)
        pom = str(PROJECT_DIR / "pom.xml")
        command = ["mvn", "-B", "-q", "-f", pom, f"-Dengine={engine}", "package"]
        if os.environ.get("FARM_M2_REPO"):
            command.append(f"-Dmaven.repo.local={os.environ['FARM_M2_REPO']}")
        started = time.monotonic()
        result = subprocess.run(
            command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        )
        if result.returncode != 0:
            tail = "\n".join(result.stdout.splitlines()[-40:])
            raise EngineError(
                f"Maven build of the {engine} test engine failed ({' '.join(command)}):\n{tail}"
            )
        _build_stamp(engine).write_text(f"built in {time.monotonic() - started:.1f}s\n")
    return _engine_dir(engine)


def _tail(path: Path, lines: int = 40) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


class EngineNode:
    """One engine JVM on 127.0.0.1:<port> keeping its data, config and logs under ``data_dir``.

    The port is fixed at construction (a free one when not given) so that a restart after stop()
    or kill() comes back at the same URL, on the same data.
    """

    def __init__(
        self, data_dir: str | os.PathLike, port: int | None = None, engine: str | None = None,
        settings: dict[str, str] | None = None,
    ):
        # settings: node settings added or replaced (tests/support/engine_cluster.py names them)
        self.settings = dict(settings or {})
        self.data_dir = Path(data_dir).resolve()
        self.port = port or free_port()
        self.engine = engine or default_engine()
        if self.engine not in ENGINES:
            raise EngineError(
                f"unknown engine {self.engine!r}: expected one of {', '.join(ENGINES)}"
            )
        # The JVM's stdout and stderr; the node's own log is logs/engine.log beside it.
        self.log_path = self.data_dir / "engine.out"
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 120.0) -> str:
        """Build if needed, launch the JVM and wait for its ready line; returns the URL.

        The node prints that line once cluster health is yellow or green (all primaries assigned).
        """
        if self.process is not None and self.process.poll() is None:
            raise EngineError(f"engine already running on {self.url} (pid {self.process.pid})")
        engine_dir = build(engine=self.engine)
        java = _java()
        if java is None:
            raise EngineError(unavailable_reason() or "no java")
        self.data_dir.mkdir(parents=True, exist_ok=True)
        classpath = os.pathsep.join(
            [str(PROJECT_DIR / "target" / "classes"), str(engine_dir / "lib" / "*")]
        )
        command = [
            java,
            *JVM_OPTIONS,
            *os.environ.get("FARM_ENGINE_JAVA_OPTS", "").split(),
            # The JVM exits (closing the node) when this Python process dies, even by SIGKILL.
            f"-Dfarm.engine.parentPid={os.getpid()}",
            *([f"-Dfarm.engine.settings={';'.join(f'{k}={v}' for k, v in self.settings.items())}"]
              if self.settings else []),
            "-cp",
            classpath,
            "farm.engine.EngineMain",
            str(self.port),
            str(self.data_dir),
        ]
        with open(self.log_path, "ab") as log:
            offset = log.tell()  # only this run's ready line counts
            log.write(f"\n=== {time.strftime('%Y-%m-%d %H:%M:%S')} {' '.join(command)}\n".encode())
            log.flush()
            # Own session: a Ctrl-C meant for the caller must not bypass stop()'s clean shutdown.
            self.process = subprocess.Popen(
                command, stdin=subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True
            )
        ready = f"{READY_PREFIX}{self.url}"
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with open(self.log_path, "rb") as log:
                log.seek(offset)
                if ready in log.read().decode(errors="replace"):
                    return self.url
            if self.process.poll() is not None:
                code = self.process.returncode
                self.process = None
                raise EngineError(
                    f"{self.engine} exited with code {code} before it was ready:\n{self._logs()}"
                )
            time.sleep(0.1)
        self.kill()
        raise EngineError(
            f"{self.engine} was not ready on {self.url} within {timeout:.0f}s:\n{self._logs()}"
        )

    def stop(self, grace: float = 30.0) -> None:
        """SIGTERM (the node closes cleanly), then SIGKILL if still running after ``grace`` s."""
        if self.process is None:
            return
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(grace)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None

    def kill(self) -> None:
        """SIGKILL the JVM, as a crash would; start() then reuses the same data dir and port."""
        if self.process is None:
            return
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        self.process = None

    def _logs(self) -> str:
        node_log = self.data_dir / "logs" / "engine.log"
        return f"--- {self.log_path}\n{_tail(self.log_path)}\n--- {node_log}\n{_tail(node_log)}"

    def __enter__(self) -> EngineNode:
        self.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self.stop()


def _interrupt(signum, frame):
    """SIGTERM ends a foreground run the way Ctrl-C does, so the node is always stopped."""
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    """Run a node in the foreground until Ctrl-C or SIGTERM."""
    parser = argparse.ArgumentParser(prog="python -m tests.support.engine",
                                     description=main.__doc__)
    parser.add_argument(
        "--port", type=int, default=9200, help="HTTP port on 127.0.0.1 (default 9200)"
    )
    parser.add_argument(
        "--engine", choices=ENGINES, default=None, help="default: FARM_TEST_ENGINE or opensearch"
    )
    parser.add_argument(
        "--data", help="data dir, kept afterwards (default: a temporary dir, removed on exit)"
    )
    parser.add_argument(
        "--timeout", type=float, default=180.0, help="seconds to wait for the node to be ready"
    )
    args = parser.parse_args(argv)
    reason = unavailable_reason()
    if reason:
        print(reason, file=sys.stderr)
        return 1
    signal.signal(signal.SIGTERM, _interrupt)
    with contextlib.ExitStack() as stack:
        data = args.data or stack.enter_context(tempfile.TemporaryDirectory(prefix="farm-engine-"))
        node = EngineNode(data, port=args.port, engine=args.engine)
        print(
            f"starting {node.engine} (data: {node.data_dir}, logs: {node.log_path})",
            file=sys.stderr,
            flush=True,
        )
        try:
            node.start(timeout=args.timeout)
            print(f"{READY_PREFIX}{node.url}", flush=True)
            while node.process is not None and node.process.poll() is None:
                time.sleep(0.5)
            print(f"{node.engine} exited unexpectedly:\n{node._logs()}", file=sys.stderr)
            return 1
        except KeyboardInterrupt:
            return 0
        except EngineError as error:
            print(error, file=sys.stderr)
            return 1
        finally:
            node.stop()


if __name__ == "__main__":
    sys.exit(main())
