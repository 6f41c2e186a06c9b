"""Simulated dropouts and stragglers: seeded, rates as configured, recorded, aggregated around."""

from fedpoison.strategies.availability import Availability


def test_no_faults_by_default():
    assert Availability().missing(list(range(50)), seed=0, server_round=1) == {}


def test_dropouts_are_seeded_and_near_the_rate():
    av = Availability(dropout_rate=0.3)
    ids = list(range(2000))
    a = av.missing(ids, seed=1, server_round=4)
    assert a == av.missing(ids, seed=1, server_round=4)
    assert a != av.missing(ids, seed=1, server_round=5)
    assert 0.25 < len(a) / len(ids) < 0.35
    assert set(a.values()) == {"dropped out (simulated)"}


def test_stragglers_miss_only_a_deadline_they_exceed():
    ids = list(range(2000))
    slow = Availability(straggler_fraction=0.5, straggler_slowdown=3.0, deadline=2.0).missing(
        ids, 0, 1
    )
    assert 0.45 < len(slow) / len(ids) < 0.55 and all("deadline" in why for why in slow.values())
    assert (
        Availability(straggler_fraction=0.5, straggler_slowdown=3.0, deadline=4.0).missing(
            ids, 0, 1
        )
        == {}
    )
    assert Availability(straggler_fraction=0.5, straggler_slowdown=3.0).missing(ids, 0, 1) == {}


def test_run_records_missing_clients_and_aggregates_the_rest(simulate):
    overrides = [
        "federation.num_clients=10",
        "federation.dropout_rate=0.3",
        "federation.straggler_fraction=0.3",
        "federation.straggler_slowdown=2",
        "federation.deadline=1.5",
        "num_rounds=3",
    ]
    first, second = simulate(overrides, "a"), simulate(overrides, "b")
    for row in first["rounds"]:
        assert row["participants"] + len(row["missing"]) == 10
        assert all(m["reason"] for m in row["missing"])
    assert any(row["missing"] for row in first["rounds"])

    def strip(res):
        return [{k: v for k, v in r.items() if not k.endswith("_s")} for r in res["rounds"]]

    assert strip(first) == strip(second)
