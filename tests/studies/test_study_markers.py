"""A step's marker file that is unreadable or not a JSON object means the step runs again."""

import json

import pytest

from featurekit.studies import execute


@pytest.mark.parametrize("text", ["[1, 2]", "3", '"done"', "null", "{not json"])
def test_a_marker_that_is_no_json_object_is_a_step_to_run(tmp_path, text):
    out = tmp_path / "model.pt"
    out.write_bytes(b"x")
    marker = tmp_path / "model.pt.study-step.json"
    marker.write_text(text)
    assert execute.marker_state(marker, "h", [out], cv=False) == ("to run", None)
    assert execute._finished([marker]) == {str(marker): None}


def test_a_marker_object_is_read_done_or_changed(tmp_path):
    out = tmp_path / "model.pt"
    out.write_bytes(b"x")
    marker = tmp_path / "model.pt.study-step.json"
    rec = {"hash": "h", "finished": "2026-01-01T00:00:00+00:00"}
    marker.write_text(json.dumps(rec))
    assert execute.marker_state(marker, "h", [out], cv=False) == ("done", rec)
    assert execute.marker_state(marker, "other", [out], cv=False) == ("changed", rec)
    assert execute._finished([marker]) == {str(marker): rec["finished"]}
