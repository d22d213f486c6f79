"""Fixtures of the integration tests that need more than one process of ours:

- ``s3_server``: a real S3-compatible server, ``moto_server`` on a free loopback port, reached by
  s3fs through ``AWS_ENDPOINT_URL`` with dummy credentials (storage tests);
- ``hosts``: a scheduler and worker "hosts" in network + mount namespaces of their own, with an
  S3 server all reach (storage tests without a shared file system, DDP across hosts).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
}


@dataclass
class S3:
    endpoint: str
    bucket: str

    def url(self, *parts: str) -> str:
        return "/".join([f"s3://{self.bucket}", *parts])

    def fs(self) -> Any:
        import s3fs

        return s3fs.S3FileSystem(endpoint_url=self.endpoint, skip_instance_cache=True)

    def keys(self, prefix: str) -> list[str]:
        fs = self.fs()
        return sorted(fs.find(f"{self.bucket}/{prefix}"))


def start_moto(host: str = "127.0.0.1") -> tuple[subprocess.Popen[str], str]:
    """Start ``moto_server`` on a free port of ``host``; returns (process, endpoint URL)."""
    exe = Path(sys.executable).with_name("moto_server")
    cmd = [str(exe)] if exe.exists() else [sys.executable, "-m", "moto.server"]
    proc = subprocess.Popen(
        [*cmd, "-H", host, "-p", "0"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    assert proc.stdout is not None
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        m = re.search(r"Running on (http://[\d.]+:\d+)", line)
        if m:  # keep draining its request log, or moto blocks once the pipe is full
            import threading

            threading.Thread(target=proc.stdout.read, daemon=True).start()
            return proc, m.group(1)
        if not line and proc.poll() is not None:
            break
    proc.kill()
    raise RuntimeError("moto_server did not start")


@pytest.fixture(scope="session")
def s3_server() -> Iterator[S3]:
    pytest.importorskip("s3fs")
    pytest.importorskip("moto")
    proc, endpoint = start_moto()
    saved = {k: os.environ.get(k) for k in [*ENV, "AWS_ENDPOINT_URL"]}
    os.environ.update({**ENV, "AWS_ENDPOINT_URL": endpoint})
    try:
        s3 = S3(endpoint, f"lepton-{uuid.uuid4().hex[:8]}")
        s3.fs().mkdir(s3.bucket)
        yield s3
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        proc.terminate()
        proc.wait(timeout=15)


def _sh(*cmd: str) -> None:
    subprocess.run(cmd, check=True, capture_output=True, text=True)


def _kept_under_tmp() -> list[str]:
    """Top folders under /tmp that the workers need (this interpreter's environment, this
    checkout: a fresh-clone check or CI may put them there): each host's private tmpfs on /tmp
    would hide them, so they are bound back in."""
    import lepton_nb

    needed = {Path(sys.prefix), Path(sys.base_prefix), Path(lepton_nb.__file__).parents[1]}
    tops = {
        Path("/tmp", p.relative_to("/tmp").parts[0])
        for p in needed
        if p.is_relative_to("/tmp") and p != Path("/tmp")
    }
    return sorted(str(t) for t in tops)


def _private_tmp_script(keep_root: str) -> str:
    """Shell lines that mount a private tmpfs on /tmp and bind back :func:`_kept_under_tmp`."""
    lines = []
    for j, top in enumerate(_kept_under_tmp()):
        lines += [f"mkdir -p {keep_root}/{j}", f"mount --bind {top} {keep_root}/{j}"]
    lines.append("mount -t tmpfs tmpfs /tmp")
    for j, top in enumerate(_kept_under_tmp()):
        lines += [f"mkdir -p {top}", f"mount --bind {keep_root}/{j} {top}"]
    return " && ".join(lines)


def can_make_hosts() -> str | None:
    """None when network + mount namespaces can be made here, else the reason why not."""
    import shutil

    for tool in ("ip", "unshare"):
        if shutil.which(tool) is None:
            return f"{tool!r} is not installed"
    if os.geteuid() != 0:
        return "network and mount namespaces need root"
    probe = f"lnprobe{uuid.uuid4().hex[:6]}"
    r = subprocess.run(["ip", "netns", "add", probe], capture_output=True, text=True)
    if r.returncode != 0:
        return f"cannot create a network namespace: {r.stderr.strip()}"
    try:
        r = subprocess.run(
            [
                "ip",
                "netns",
                "exec",
                probe,
                "unshare",
                "--mount",
                "--propagation",
                "private",
                "sh",
                "-c",
                "mount -t tmpfs tmpfs /tmp && test ! -e /tmp/.X11-unix-lnprobe",
            ],
            capture_output=True,
            text=True,
        )
        if r.returncode != 0:
            return f"cannot make a private mount namespace with a tmpfs: {r.stderr.strip()}"
    finally:
        subprocess.run(["ip", "netns", "del", probe], capture_output=True)
    return None


@dataclass
class Hosts:
    """A scheduler and worker "hosts" that share no network address and no /tmp with the client
    or each other (each in its own network and mount namespace), plus an S3 server every host
    reaches on the bridge."""

    scheduler: str
    worker_ips: list[str]
    endpoint: str
    bucket: str
    groups: dict[str, int]  # worker ip -> process group id of that host's processes

    @property
    def storage_options(self) -> dict[str, Any]:
        return {"endpoint_url": self.endpoint, "key": "testing", "secret": "testing"}

    def kill_host(self, ip: str) -> None:
        """The host is lost: every process on it dies, and its private /tmp with them."""
        import signal

        os.killpg(self.groups[ip], signal.SIGKILL)


def fake_hosts(n_workers: int = 2) -> Any:
    """Context manager: :class:`Hosts` with ``n_workers`` worker hosts (root only)."""
    import contextlib
    import random

    @contextlib.contextmanager
    def make() -> Iterator[Hosts]:
        tag = uuid.uuid4().hex[:4]
        subnet = f"10.{random.randint(100, 250)}.{random.randint(1, 250)}"
        br = f"lsbr{tag}"
        names = [f"ls{tag}{i}" for i in range(n_workers + 1)]
        procs: list[subprocess.Popen[Any]] = []
        moto = None
        try:
            _sh("ip", "link", "add", br, "type", "bridge")
            _sh("ip", "addr", "add", f"{subnet}.1/24", "dev", br)
            _sh("ip", "link", "set", br, "up")
            for i, ns in enumerate(names):
                _sh("ip", "netns", "add", ns)
                _sh("ip", "link", "add", f"v{tag}{i}", "type", "veth", "peer", "name", f"p{tag}{i}")
                _sh("ip", "link", "set", f"v{tag}{i}", "master", br)
                _sh("ip", "link", "set", f"v{tag}{i}", "up")
                _sh("ip", "link", "set", f"p{tag}{i}", "netns", ns)
                _sh("ip", "-n", ns, "addr", "add", f"{subnet}.{i + 2}/24", "dev", f"p{tag}{i}")
                _sh("ip", "-n", ns, "link", "set", f"p{tag}{i}", "up")
                _sh("ip", "-n", ns, "link", "set", "lo", "up")
            moto, endpoint = start_moto(f"{subnet}.1")
            sched = f"tcp://{subnet}.2:8786"
            procs.append(
                subprocess.Popen(
                    [
                        "ip",
                        "netns",
                        "exec",
                        names[0],
                        sys.executable,
                        "-m",
                        "distributed.cli.dask_scheduler",
                        "--host",
                        f"{subnet}.2",
                        "--port",
                        "8786",
                        "--dashboard-address",
                        ":0",
                    ],
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                    start_new_session=True,
                )
            )
            env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
            env["TMPDIR"] = "/tmp"
            ips, groups = [], {}
            for i in range(1, n_workers + 1):
                ip = f"{subnet}.{i + 2}"
                keep = f"/var/tmp/lepton-keep-{tag}-{i}"
                worker = (
                    f"{_private_tmp_script(keep)} && cd /tmp && exec {sys.executable} -m "
                    f"distributed.cli.dask_worker {sched} --host {ip} --nthreads 1 "
                    "--nworkers 1 --no-dashboard --local-directory /tmp/dask"
                )
                p = subprocess.Popen(
                    [
                        "ip",
                        "netns",
                        "exec",
                        names[i],
                        "unshare",
                        "--mount",
                        "--propagation",
                        "private",
                        "sh",
                        "-c",
                        worker,
                    ],
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                    env=env,
                    start_new_session=True,
                )
                procs.append(p)
                ips.append(ip)
                groups[ip] = p.pid
            bucket = f"lepton-{tag}"
            import s3fs

            s3fs.S3FileSystem(
                endpoint_url=endpoint, key="testing", secret="testing", skip_instance_cache=True
            ).mkdir(bucket)
            yield Hosts(sched, ips, endpoint, bucket, groups)
        finally:
            import signal

            for p in procs:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(p.pid, signal.SIGTERM)
            for p in procs:
                try:
                    p.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    with contextlib.suppress(ProcessLookupError):
                        os.killpg(p.pid, signal.SIGKILL)
                    p.wait(timeout=5)
            if moto is not None:
                moto.terminate()
                moto.wait(timeout=15)
            for ns in names:
                subprocess.run(["ip", "netns", "del", ns], capture_output=True)
            subprocess.run(["ip", "link", "del", br], capture_output=True)
            # Only empty folders are left out here (the binds lived in the hosts' namespaces):
            # rmdir, never a recursive delete, so nothing bound could be reached through them.
            for keep in Path("/var/tmp").glob(f"lepton-keep-{tag}-*"):
                for sub in keep.iterdir():
                    with contextlib.suppress(OSError):
                        sub.rmdir()
                with contextlib.suppress(OSError):
                    keep.rmdir()

    return make()


@pytest.fixture(scope="module")
def hosts() -> Iterator[Hosts]:
    reason = can_make_hosts()
    if reason:
        pytest.skip(reason)
    pytest.importorskip("s3fs")
    with fake_hosts(2) as h:
        yield h
