from lepton_nb.widgets._cluster_table import fmt_bytes, workers_table_html


def test_fmt_bytes() -> None:
    assert fmt_bytes(None) == "-"
    assert fmt_bytes(512) == "512 B"
    assert fmt_bytes(3 * 2**30) == "3.0 GiB"


def test_gpu_columns_only_when_a_worker_has_a_gpu() -> None:
    cpu = [
        {"address": "tcp://127.0.0.1:1", "host": "127.0.0.1", "nthreads": 2, "memory_limit": 2**30}
    ]
    assert "GPU" not in workers_table_html(cpu)
    gpu = [dict(cpu[0], gpu_name="NVIDIA H200", gpu_memory=141 * 2**30)]
    html = workers_table_html(gpu)
    assert "<th>GPU</th>" in html and "NVIDIA H200" in html and "141.0 GiB" in html
    assert "no workers" in workers_table_html([])


def test_table_escapes_html() -> None:
    assert "&lt;b&gt;" in workers_table_html([{"address": "<b>", "host": "h"}])
