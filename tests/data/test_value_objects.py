"""Data value objects refuse, when built, fields their methods could not use together."""

import pytest

from featurekit.data.mias import MiasRow
from featurekit.data.window import Window
from featurekit.errors import DataError


@pytest.mark.parametrize("center, width", [(None, None), (40.0, None), (40.0, 0.0), (float("nan"), 400.0)])
def test_an_explicit_window_needs_a_finite_centre_and_a_positive_width(center, width):
    with pytest.raises(DataError, match="explicit window needs"):
        Window("explicit", center, width)


def test_a_window_rule_takes_no_numbers_and_a_kind_must_be_known():
    with pytest.raises(DataError, match="is a rule"):
        Window("minmax", 40.0, 400.0)
    with pytest.raises(DataError, match="window kind 'lungs'"):
        Window("lungs")
    with pytest.raises(DataError, match="is a rule"):
        _ = Window.parse("range").center_width


def test_center_width_of_an_explicit_window():
    assert Window.parse("lung").center_width == (-600.0, 1500.0)
    assert Window.parse("-600,1500") == Window("explicit", -600.0, 1500.0, "-600,1500")


@pytest.mark.parametrize("coords", [dict(x=1.0), dict(x=1.0, y=2.0), dict(y=2.0, radius=3.0)])
def test_a_mias_row_has_all_of_its_coordinates_or_none(coords):
    with pytest.raises(DataError, match="mdb001.*come together"):
        MiasRow("mdb001", "F", "CIRC", "B", **coords)


def test_a_located_mias_row_has_a_severity_and_a_label():
    with pytest.raises(DataError, match="mdb001.*severity"):
        MiasRow("mdb001", "F", "CIRC", None, 1.0, 2.0, 3.0)
    row = MiasRow("mdb001", "F", "CIRC", "M", 10.0, 1000.0, 4.0)
    assert row.label == "malignant"
    assert row.circle(0.5) == (5.0, 12.0, 2.0)
    assert MiasRow("mdb002", "F", "NORM", None).label == "normal"
    assert MiasRow("mdb002", "F", "NORM", None).circle(0.5) is None
