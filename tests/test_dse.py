"""Design-space exploration building blocks: Pareto fronts, the result cache."""

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from accelsim.cache import ResultCache, content_key
from accelsim.dse.pareto import dominates, pareto_mask

points = hnp.arrays(np.float64, st.tuples(st.integers(1, 40), st.integers(1, 4)),
                    elements=st.integers(0, 6).map(float))


@settings(max_examples=300, deadline=None)
@given(points)
def test_point_is_on_front_exactly_when_nothing_dominates_it(v):
    mask = pareto_mask(v)
    for i in range(len(v)):
        dominated = any(dominates(v[j], v[i]) for j in range(len(v)) if j != i)
        assert mask[i] == (not dominated)


@settings(max_examples=100, deadline=None)
@given(points)
def test_front_is_nonempty_and_mutually_nondominated(v):
    front = v[pareto_mask(v)]
    assert len(front) >= 1
    for a in front:
        assert not any(dominates(b, a) for b in front)


def test_dominates_basics():
    assert dominates([1, 2], [2, 2]) and not dominates([2, 2], [2, 2])
    assert not dominates([1, 3], [2, 2]) and not dominates([2, 2], [1, 3])


def test_cache_roundtrip_and_keys(tmp_path):
    c = ResultCache("t", tmp_path)
    k = content_key("graph-hash", "w8a8", {"lanes": 32})
    assert k == content_key("graph-hash", "w8a8", {"lanes": 32})
    assert k != content_key("graph-hash", "w8a8", {"lanes": 64})
    assert c.get(k) is None and k not in c
    c.put(k, {"cycles": 12.5})
    assert c.get(k) == {"cycles": 12.5} and k in c
    # a torn write never leaves a readable partial entry: only .tmp files could remain
    assert not list(tmp_path.rglob("*.tmp"))
