"""Issue 11 item 5: clusters launched by the server use TLS; only their user can connect."""

from __future__ import annotations

import stat
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from lepton_nb.errors import LeptonError
from lepton_nb.server._models import LaunchRequest
from lepton_nb.server.clusters import ClusterManager

pytestmark = pytest.mark.integration


def test_rest_clusters_are_tls_and_the_connect_code_connects(tmp_path: Path) -> None:
    manager = ClusterManager(runtime_dir=tmp_path / "runtime")
    info = manager.launch(LaunchRequest(n_workers=1, threads_per_worker=1, gpu="off"))
    try:
        assert info.secure and str(info.scheduler_address).startswith("tls://"), info
        creds = Path(str(info.credentials))
        assert creds.is_relative_to(tmp_path / "runtime")
        assert stat.S_IMODE(creds.stat().st_mode) == 0o700
        files = sorted(creds.iterdir())
        assert [f.name for f in files] == ["cert.pem", "key.pem"]
        assert all(stat.S_IMODE(f.stat().st_mode) == 0o600 for f in files)

        # "Insert connect code", run by another process of the user (a notebook kernel)
        code = f"{info.connect_code}\nprint(cluster.client.submit(sum, [40, 2]).result())"
        out = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, timeout=120
        )
        assert out.returncode == 0 and out.stdout.strip().endswith("42"), out.stderr[-2000:]

        # without the credentials: plain TCP, or TLS with a key of one's own, is refused
        hostport = str(info.scheduler_address).removeprefix("tls://")
        probe = textwrap.dedent(f"""
            import sys
            from distributed import Client
            from distributed.security import Security
            other = Security.temporary()
            for addr, sec in (("tcp://{hostport}", None), ("tls://{hostport}", other)):
                try:
                    Client(addr, security=sec, timeout=4).close()
                except (OSError, TimeoutError) as e:
                    print("refused", type(e).__name__)
                else:
                    sys.exit("connected without the credentials: " + addr)
        """)  # fmt: skip
        out = subprocess.run(
            [sys.executable, "-c", probe], capture_output=True, text=True, timeout=120
        )
        assert out.returncode == 0 and out.stdout.count("refused") == 2, out.stdout + out.stderr
    finally:
        manager.stop(info.id)
    assert not creds.exists()  # the credentials go with the cluster


def test_connect_without_the_credentials_says_how(tmp_path: Path) -> None:
    import lepton_nb as ln

    with pytest.raises(LeptonError, match="credentials="):
        ln.connect("tls://127.0.0.1:1")
    with pytest.raises(LeptonError, match="no TLS credentials"):
        ln.connect("tls://127.0.0.1:1", credentials=tmp_path)
