"""Does launching a cluster from the Lepton sidebar freeze JupyterLab?

Anchor: the naive server extension, which calls launch_cluster() inside the Tornado handler, so
the event loop (every notebook, file save and kernel message of that server) waits for it, and
the cluster lives in the server process. Ours: lepton_nb's POST lepton/api/clusters, which
starts the cluster in a detached process of its own (it outlives the server) from a thread
pool and connects a Client; the launch column shows what that process start costs.

One `jupyter server` runs both routes (this file doubles as a tiny server extension that adds the
anchor route).  While each launch is in flight a thread pings GET /api/status every 20 ms; we
report how long those pings took.  Reproduce with:

    python benchmarks/server_responsiveness.py [--workers 2] [--repeats 3]
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

ANCHOR_ROUTE = "bench/blocking-launch"


def _load_jupyter_server_extension(serverapp: Any) -> None:
    """The anchor: a handler that launches the cluster in the server process, on the event
    loop (as the naive extension would; lepton_nb's route starts a detached process from a
    thread pool)."""
    import uuid

    import tornado.web
    from jupyter_server.base.handlers import APIHandler
    from jupyter_server.utils import url_path_join

    import lepton_nb as ln

    clusters: dict[str, Any] = {}

    class BlockingLaunch(APIHandler):
        @tornado.web.authenticated
        def post(self) -> None:
            body = json.loads(self.request.body)
            cluster = ln.launch_cluster(
                n_workers=body["n_workers"],
                threads_per_worker=body["threads_per_worker"],
                gpu=False,
                host="127.0.0.1",
                dashboard_address="127.0.0.1:0",
            )
            cluster.wait_for_workers(body["n_workers"], timeout=120)
            cluster_id = uuid.uuid4().hex[:12]
            clusters[cluster_id] = cluster
            self.finish(json.dumps({"id": cluster_id}))

        @tornado.web.authenticated
        def delete(self, cluster_id: str) -> None:
            clusters.pop(cluster_id).close()
            self.finish("{}")

    base = serverapp.web_app.settings["base_url"]
    route = url_path_join(base, ANCHOR_ROUTE)
    serverapp.web_app.add_handlers(
        ".*$", [(route, BlockingLaunch), (route + "/(?P<cluster_id>[0-9a-f]+)", BlockingLaunch)]
    )


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Server:
    def __init__(self) -> None:
        self.token, port = secrets.token_hex(16), _free_port()
        self.url = f"http://127.0.0.1:{port}/"
        self.tmp = tempfile.TemporaryDirectory()
        env = {
            **os.environ,
            "PYTHONPATH": f"{Path(__file__).parent}{os.pathsep}{os.environ.get('PYTHONPATH', '')}",
            "LEPTON_HOME": self.tmp.name,
        }
        self.log = open(Path(self.tmp.name) / "server.log", "wb")
        config = Path(self.tmp.name) / "bench_config.json"
        exts = {"lepton_nb": True, Path(__file__).stem: True}
        config.write_text(json.dumps({"ServerApp": {"jpserver_extensions": exts}}))
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "jupyter",
                "server",
                "--no-browser",
                "--allow-root",
                f"--port={port}",
                "--ServerApp.port_retries=0",
                "--ServerApp.ip=127.0.0.1",
                f"--IdentityProvider.token={self.token}",
                f"--ServerApp.root_dir={self.tmp.name}",
                f"--ServerApp.jpserver_extensions={exts}",
            ],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        deadline = time.monotonic() + 60
        while True:
            try:
                self.call("GET", "api/status")
                return
            except OSError:
                if time.monotonic() > deadline or self.proc.poll() is not None:
                    log = (Path(self.tmp.name) / "server.log").read_text()[-3000:]
                    raise RuntimeError(f"jupyter server did not start:\n{log}") from None
                time.sleep(0.3)

    def call(self, method: str, path: str, body: Any = None, timeout: float = 300) -> Any:
        req = urllib.request.Request(
            self.url + path,
            method=method,
            headers={"Authorization": f"token {self.token}"},
            data=None if body is None else json.dumps(body).encode(),
        )
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return json.loads(r.read() or b"null")

    def close(self) -> None:
        self.proc.send_signal(signal.SIGINT)
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.log.close()
        self.tmp.cleanup()


def pings_during(server: Server, route: str, workers: int) -> tuple[list[float], float]:
    """Ping latencies (ms) while POST ``route`` launches a cluster, and the launch time (s)."""
    latencies: list[float] = []
    stop = threading.Event()

    def ping() -> None:
        while not stop.is_set():
            t0 = time.perf_counter()
            server.call("GET", "api/status")
            latencies.append((time.perf_counter() - t0) * 1000)
            stop.wait(0.02)

    pinger = threading.Thread(target=ping)
    pinger.start()
    time.sleep(0.3)  # a few pings before the launch starts
    t0 = time.perf_counter()
    info = server.call("POST", route, {"n_workers": workers, "threads_per_worker": 1, "gpu": "off"})
    launch_s = time.perf_counter() - t0
    stop.set()
    pinger.join()
    server.call("DELETE", f"{route}/{info['id']}")
    return latencies, launch_s


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    server = Server()
    rows: dict[str, list[tuple[float, float, float]]] = {"anchor": [], "ours": []}
    try:
        for _ in range(args.repeats):
            for name, route in (("anchor", ANCHOR_ROUTE), ("ours", "lepton/api/clusters")):
                lat, launch_s = pings_during(server, route, args.workers)
                rows[name].append((max(lat), statistics.median(lat), launch_s))
    finally:
        server.close()
    med = {k: [statistics.median(col) for col in zip(*v, strict=True)] for k, v in rows.items()}
    print(f"cluster launch with {args.workers} workers, {args.repeats} repeats (medians)")
    print(f"{'':8}{'worst ping ms':>15}{'median ping ms':>16}{'launch s':>10}")
    for name in ("anchor", "ours"):
        worst, median, launch = med[name]
        print(f"{name:8}{worst:15.1f}{median:16.1f}{launch:10.2f}")
    print(
        f"worst-ping ratio anchor/ours: {med['anchor'][0] / med['ours'][0]:.1f}x "
        f"(launch time ratio ours/anchor: {med['ours'][2] / med['anchor'][2]:.2f})"
    )
    print(f"load average (1, 5, 15 min) at the end: {os.getloadavg()}")
    print(
        f"reproduce: python benchmarks/server_responsiveness.py --workers {args.workers} "
        f"--repeats {args.repeats}"
    )


if __name__ == "__main__":
    main()
