"""tfbnn.parallel: groups of a batch, and calls run side by side on threads."""

from __future__ import annotations

import threading

import pytest

from tfbnn import parallel


@pytest.mark.parametrize("n, groups, sizes", [
    (5, 2, [3, 2]), (4, 2, [2, 2]), (5, 3, [2, 2, 1]), (1, 1, [1]), (7, 7, [1] * 7),
])
def test_partition_covers_every_item_once_in_near_equal_contiguous_groups(n, groups, sizes):
    slices = parallel.partition(n, groups)
    assert [s.stop - s.start for s in slices] == sizes
    assert [i for s in slices for i in range(n)[s]] == list(range(n))


def test_threads_resolve_to_cores_and_never_exceed_the_items(monkeypatch):
    monkeypatch.setattr(parallel, "available_cores", lambda: 2)
    assert parallel.resolve_threads("auto", 5) == 2
    assert parallel.resolve_threads("auto", 1) == 1
    assert parallel.resolve_threads(8, 3) == 3
    assert parallel.resolve_threads(1, 3) == 1


def test_calls_run_on_separate_threads_and_return_in_order():
    barrier = threading.Barrier(3, timeout=10)  # passes only if all three run at once

    def call(i):
        barrier.wait()
        return i, threading.get_ident()

    results = parallel.run_concurrently([lambda i=i: call(i) for i in range(3)])
    assert [r[0] for r in results] == [0, 1, 2]
    assert len({r[1] for r in results}) == 3


def test_an_error_in_any_call_is_raised_after_all_have_finished():
    finished = []

    def slow():
        threading.Event().wait(0.2)
        finished.append(True)

    def fail():
        raise RuntimeError("group 0 failed")

    with pytest.raises(RuntimeError, match="group 0 failed"):
        parallel.run_concurrently([fail, slow])
    assert finished == [True]


@pytest.mark.parametrize("n, cores, groups", [(4, 2, 2), (3, 2, 3), (1, 2, 1), (6, 4, 6), (8, 4, 4),
                                              (5, 1, 1)])
def test_equal_groups_are_the_fewest_that_keep_every_core_busy(monkeypatch, n, cores, groups):
    monkeypatch.setattr(parallel, "available_cores", lambda: cores)
    assert parallel.resolve_threads("auto", n, equal_groups=True) == groups
    assert n % groups == 0
