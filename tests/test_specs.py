"""Typed specs refuse, when built, a value their methods could not use."""

import pytest

from featurekit.errors import DataError
from featurekit.specs import SlicePolicy


@pytest.mark.parametrize("kind, index", [("index", None), ("index", -1), ("middle", 2), ("top", None)])
def test_slice_policy_refuses_an_index_that_does_not_fit_its_kind(kind, index):
    with pytest.raises(DataError, match=f"slice policy {kind!r}"):
        SlicePolicy(kind, index)


def test_slice_policy_built_directly_picks_the_same_planes_as_parsed():
    assert SlicePolicy("index", 2) == SlicePolicy.parse("index:2")
    assert SlicePolicy("index", 2).planes(5, "x") == [2]
    assert SlicePolicy("middle").planes(5, "x") == [2]
    with pytest.raises(DataError, match="index:5, but it has 5 planes"):
        SlicePolicy("index", 5).planes(5, "x")
