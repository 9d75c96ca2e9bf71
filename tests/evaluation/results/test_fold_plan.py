"""A run records its cv as the text parse_cv reads back, whatever type it was given as."""

import numpy as np
import pytest

from featurekit.evaluation.folds.protocols import parse_cv
from featurekit.evaluation.results.crossval import plan_folds

Y = np.array([0, 1] * 6)


@pytest.mark.parametrize("cv", [3, np.int64(3), "3"])
def test_cv_text_is_the_specification_text(cv):
    text = plan_folds(cv, Y, seed=0).cv_text
    assert text == "3"
    assert parse_cv(text, random_state=0).get_n_splits() == 3


def test_cv_text_of_a_splitter_is_its_repr():
    splitter = parse_cv("2x2", random_state=0)
    assert plan_folds(splitter, Y, seed=0).cv_text == repr(splitter)
