"""The local stack: emulator + resources + worker pool, up and down as one thing."""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path

from lambda_pkg.profiles import PipelineConfig, load_named
from lambda_pkg.settings import ENV_MEMORY_SIZE, function_environment
from pipeline.aws import CREDENTIALS, REGION, client
from pipeline.cli.targets import (
    DEFAULT_LOCAL_STACK,
    PROJECT,
    Target,
    save_state,
    saved_state,
    state_dir,
    state_file,
)
from pipeline.delivery.edge import EdgeFunctionError
from pipeline.local import provision, sandbox, state
from pipeline.local.cdn import LocalCdn, node_available
from pipeline.local.emulator import Emulator
from pipeline.local.instance import AlreadyRunning, InstanceLock, Process
from pipeline.local.runs import new_run_dir
from pipeline.local.workers import DEFAULT_RETRY_DELAYS_S, WorkerPool
from pipeline.program.names import resource_names
from pipeline.program.stack import StackSettings

logger = logging.getLogger("imgpipe.local")


class LocalStack:
    """Start with `with LocalStack(...) as stack:`; everything stops on exit, even on Ctrl-C."""

    def __init__(
        self,
        profile: str | PipelineConfig = "thumbnail",
        stack: str = DEFAULT_LOCAL_STACK,
        port: int = 0,
        workers: int | None = None,
        settings: StackSettings | None = None,
        retry_delays_s: tuple[float, ...] = DEFAULT_RETRY_DELAYS_S,
        fault_environment: dict[str, str] | None = None,
        write_state: bool = True,
        visibility_timeout_s: int | None = None,
        pin_cores: bool = False,
        state_folder: Path | None = None,
        persist: bool = False,
        fresh: bool = False,
        cdn_port: int = 0,
    ) -> None:
        self.config = (
            profile
            if isinstance(profile, PipelineConfig)
            else PipelineConfig.single(load_named(profile))
        )
        self.stack = stack
        self.settings = settings or StackSettings(profile=self.config.profiles[0].name)
        self.names = resource_names(PROJECT, stack)
        self.workers = workers or os.cpu_count() or 1
        self._retry_delays_s = retry_delays_s
        # How long a message held by a worker that died stays hidden before another worker
        # gets it. Workers extend it while they hold a message (workers.Heartbeat), so it
        # need not cover the retries; tests make it short to exercise that.
        self.visibility_timeout_s = (
            self.settings.timeout_s + 30 if visibility_timeout_s is None else visibility_timeout_s
        )
        self.fault_environment = dict(fault_environment or {})
        self._write_state = write_state
        self.pin_cores = pin_cores  # each worker's function on a core of its own
        self._emulator = Emulator(port)
        self.pool: WorkerPool | None = None
        self.resources: provision.LocalResources | None = None
        self.state_folder = state_dir(state_folder).absolute()
        self.log_dir: Path | None = None  # runs/<time>/, made as the stack starts
        self._lock = InstanceLock(self.state_folder / f"{stack}.lock")
        # The emulator's state kept across restarts (state.py): `imgpipe local` keeps it.
        self.saved_state_dir = self.state_folder / "state" if persist else None
        self.fresh = fresh
        self.restored: state.Restored | None = None
        self._snapshots: state.Snapshotter | None = None
        self._cdn_port = cdn_port
        self.cdn: LocalCdn | None = None  # the output bucket over HTTP (needs node)

    @property
    def endpoint(self) -> str:
        return self._emulator.endpoint

    @property
    def function_arn(self) -> str:
        return f"arn:aws:lambda:{REGION}:{provision.ACCOUNT}:function:{self.names.function}"

    def function_environment(self) -> dict[str, str]:
        """What the Pulumi program sets, plus where AWS is and the Lambda runtime's own vars."""
        return {
            **function_environment(
                self.names.output_bucket,
                self.names.metadata_table,
                self.config,
                self.names.event_bus,
            ),
            "AWS_ENDPOINT_URL": self.endpoint,
            "AWS_DEFAULT_REGION": REGION,
            "AWS_REGION": REGION,
            **CREDENTIALS,
            "AWS_LAMBDA_FUNCTION_NAME": self.names.function,
            ENV_MEMORY_SIZE: str(self.settings.memory_mb),
            **self.fault_environment,
        }

    def claim(self) -> None:
        """Fail at once, before any build, if this stack cannot start: another process
        serves it from this state folder, or the chosen port is taken."""
        if self._write_state and not self._lock.acquire():
            raise AlreadyRunning(self._running_elsewhere())
        try:
            self._emulator.check_port()
        except BaseException:
            self._lock.release()
            raise

    def _running_elsewhere(self) -> str:
        path = state_file(self.stack, self.state_folder)
        saved = saved_state(path)
        pid = self._lock.holder()
        # A state file from a crashed run names another PID until the new one is up.
        up = saved is not None and saved.server is not None and saved.server.pid == pid
        where = f"endpoint {saved.endpoint}" if up and saved else "still starting"
        return (
            f"a local stack already runs from {self.state_folder}: PID {pid}, {where}. "
            f"Stop it with Ctrl-C in its terminal (or `kill {pid}`), or start a second "
            "one with --state-dir DIR (and --port N if you pick ports); the commands "
            "then take the same --state-dir"
        )

    def start(self) -> LocalStack:
        self.claim()
        try:
            saved = self._saved_state()  # an unreadable state fails before any build
            image = sandbox.prepare()  # before the emulator: a broken artifact fails fast
            self.log_dir = new_run_dir(self.state_folder / "runs")
            self._emulator.start()
            self.resources = provision.provision(
                self.endpoint,
                self.names,
                self.config.routes,
                visibility_timeout_s=self.visibility_timeout_s,
            )
            self._restore(saved)
            self._start_pool(image)
            self._start_cdn()
            if self._snapshots is not None:
                self._snapshots.start()
            if self._write_state:
                save_state(self.target(), state_file(self.stack, self.state_folder))
        except BaseException:  # Ctrl-C included: nothing half-started stays behind
            self.stop()
            raise
        return self

    def _saved_state(self) -> state.Saved | None:
        if self.saved_state_dir is None:
            return None
        if self.fresh:
            aside = state.set_aside(self.saved_state_dir)
            kept = f"; the previous state is kept in {aside}" if aside else ""
            logger.info("Starting empty (--fresh)%s.", kept)
            return None
        return state.load(self.saved_state_dir)

    def _restore(self, saved: state.Saved | None) -> None:
        """Bring the saved state back into the new resources; snapshots start after."""
        if self.saved_state_dir is None:
            return
        self._snapshots = state.Snapshotter(self.saved_state_dir, self.names)
        if saved is None:
            if not self.fresh:
                logger.info("No saved state in %s: starting empty.", self.saved_state_dir)
        else:
            self.restored = self._snapshots.restore(saved, self.config)
            logger.info("%s.", self.restored.summary())

    def _start_cdn(self) -> None:
        """The output bucket over HTTP, as imgpipe:cdn serves it; the stack runs without it
        when node is missing or the profiles cannot be compiled into the function."""
        if not node_available():
            logger.warning("No local CDN: node is not installed (Debian: apt-get install nodejs)")
            return
        output = self.names.output_bucket
        try:
            self.cdn = LocalCdn(self.endpoint, output, self.config, self._cdn_port).start()
        except EdgeFunctionError as problem:
            logger.warning("No local CDN: %s", problem)

    def _start_pool(self, image: sandbox.RuntimeImage) -> None:
        assert self.resources is not None and self.log_dir is not None
        self.pool = WorkerPool(
            endpoint=self.endpoint,
            event_queue_url=self.resources.event_queue_url,
            dead_letter_queue_url=self.resources.dead_letter_queue_url,
            image=image,
            environment=self.function_environment(),
            function_arn=self.function_arn,
            workers=self.workers,
            timeout_s=self.settings.timeout_s,
            memory_mb=self.settings.memory_mb,
            log_dir=self.log_dir,
            visibility_timeout_s=self.visibility_timeout_s,
            retry_delays_s=self._retry_delays_s,
            pin_cores=self.pin_cores,
        ).start()

    def redeploy(self, config: PipelineConfig) -> None:
        """What `pulumi up` after a profile edit does: new function environment, same data."""
        self.config = config
        provision.notify(self.endpoint, self.names, config.routes)
        if self.pool is not None:
            self.pool.stop()
        self._start_pool(sandbox.prepare())
        if self.cdn is not None:
            try:
                self.cdn.redeploy(config)
            except EdgeFunctionError as problem:
                logger.warning("The local CDN keeps the previous profiles: %s", problem)
        if self._write_state:
            save_state(self.target(), state_file(self.stack, self.state_folder))

    def restart_emulator(self, down_s: float = 0.0) -> None:
        """Stop the emulator, wait, start it again on the same port: a fault for the
        reliability suite. moto's backends live in this process, so the data survives;
        every connection fails while it is down, as during an outage."""
        port = int(self.endpoint.rsplit(":", 1)[1])
        self._emulator.stop()
        time.sleep(down_s)
        self._emulator = Emulator(port).start()

    def target(self) -> Target:
        assert self.resources is not None
        return Target(
            names=self.names,
            endpoint=self.endpoint,
            event_queue_url=self.resources.event_queue_url,
            dead_letter_queue_url=self.resources.dead_letter_queue_url,
            extra={"profile_config": self.config.to_json()},
            server=Process.current(),
            log_dir=str(self.log_dir) if self.log_dir else None,
            cdn=self.cdn.url if self.cdn is not None else None,
        )

    def stop(self) -> None:
        """Safe at any point of start(): each part stops only if it started."""
        try:
            if self.cdn is not None:
                self.cdn.stop()
                self.cdn = None
            if self.pool is not None:
                self.pool.stop()
            if self._snapshots is not None:
                self._snapshots.stop()  # the last snapshot, with the workers already gone
            self._emulator.stop()
        finally:
            if self._lock.held:
                state_file(self.stack, self.state_folder).unlink(missing_ok=True)
            self._lock.release()

    def __enter__(self) -> LocalStack:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def wait_until_idle(self, timeout_s: float = 60) -> bool:
        """True once the event queue is empty and nothing is in flight."""
        assert self.resources is not None
        sqs = client("sqs", self.endpoint)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            attributes = sqs.get_queue_attributes(
                QueueUrl=self.resources.event_queue_url,
                AttributeNames=[
                    "ApproximateNumberOfMessages",
                    "ApproximateNumberOfMessagesNotVisible",
                ],
            )["Attributes"]
            if not any(int(v) for v in attributes.values()):
                return True
            time.sleep(0.2)
        return False
