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


def test_rank_column_only_while_a_worker_holds_a_rank() -> None:
    ws = [{"address": "tcp://h:1", "host": "h"}, {"address": "tcp://h:2", "host": "h"}]
    assert "<th>rank</th>" not in workers_table_html(ws, {})
    html = workers_table_html(ws, {"tcp://h:1": [("abcdef123456", 0), ("0123456789ab", 3)]})
    assert "<th>rank</th>" in html and 'title="run abcdef123456"' in html
    assert "r0 (run abcdef)</span>, <span" in html and "r3 (run 012345)" in html
    assert html.split("<tr>")[-1].startswith("<td>tcp://h:2</td>")
    assert "<td>-</td></tr></tbody>" in html  # the second worker holds none
