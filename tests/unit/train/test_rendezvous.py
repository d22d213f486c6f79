"""rendezvous.plan: which worker gets which rank, LOCAL_RANK per host."""

from __future__ import annotations

import socket

from lepton_nb.train._rendezvous import free_port, plan


def _w(host: str | None) -> dict[str, str | None]:
    return {"host": host}


def test_plan_groups_ranks_by_host() -> None:
    workers = {
        "tcp://10.0.0.2:7": _w("10.0.0.2"),
        "tcp://10.0.0.1:9": _w("10.0.0.1"),
        "tcp://10.0.0.1:5": _w("10.0.0.1"),
        "tcp://10.0.0.2:3": _w("10.0.0.2"),
    }
    assert plan(workers, 4) == [
        ("tcp://10.0.0.1:5", "10.0.0.1", 0, 2),
        ("tcp://10.0.0.1:9", "10.0.0.1", 1, 2),
        ("tcp://10.0.0.2:3", "10.0.0.2", 0, 2),
        ("tcp://10.0.0.2:7", "10.0.0.2", 1, 2),
    ]


def test_plan_takes_the_first_n_and_counts_only_chosen_ranks() -> None:
    workers = {"tcp://b:1": _w("b"), "tcp://a:2": _w("a"), "tcp://a:1": _w("a")}
    # 2 ranks: both on host a; the worker left out does not count in LOCAL_WORLD_SIZE
    assert plan(workers, 2) == [("tcp://a:1", "a", 0, 2), ("tcp://a:2", "a", 1, 2)]
    assert plan(workers, 3)[2] == ("tcp://b:1", "b", 0, 1)


def test_plan_is_independent_of_dict_order_and_tolerates_missing_host() -> None:
    a = {"tcp://x:2": _w(None), "tcp://x:1": {}}
    b = dict(reversed(list(a.items())))
    assert plan(a, 2) == plan(b, 2) == [("tcp://x:1", "", 0, 2), ("tcp://x:2", "", 1, 2)]
    assert plan(a, 5) == plan(a, 2)  # more ranks asked than workers: one per worker


def test_free_port_is_bindable() -> None:
    port = free_port("127.0.0.1")
    with socket.socket() as s:
        s.bind(("127.0.0.1", port))
