from fedpoison.strategies.robust import Participation
from fedpoison.strategies.sampling import sample_clients


def test_sampling_is_deterministic_sorted_and_order_free():
    ids = list(range(50))
    a = sample_clients(ids, 10, seed=3, server_round=7)
    assert a == sorted(a) and len(set(a)) == 10
    assert a == sample_clients(list(reversed(ids)), 10, seed=3, server_round=7)
    assert a != sample_clients(ids, 10, seed=3, server_round=8)


def test_full_participation_selects_everyone():
    assert sample_clients([4, 2, 9], 5, seed=0, server_round=1) == [2, 4, 9]


def test_assumed_f_scales_pool_to_round():
    p = Participation(num_clients=100, clients_per_round=10, malicious=frozenset(range(20)))
    assert p.assumed_f(100) == 20
    assert p.assumed_f(10) == 2
    assert p.assumed_f(11) == 3  # rounded up
    assert Participation(100, 10, frozenset(range(20)), defense_f=5).assumed_f(10) == 5
