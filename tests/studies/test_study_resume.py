"""``featurekit run`` resumes from every kill point: a step killed after its output, before its marker, runs again."""

import json

import pytest
from conftest import write_medmnist
from test_studies import SMALL_STUDY, _write

from featurekit.cli import main
from featurekit.studies import execute

pytestmark = pytest.mark.filterwarnings("ignore:for .*copying from a non-meta parameter:UserWarning")

CHAIN = """
[[steps]]
name = "chain"
kind = "finetune"
data = "{images}"
recipe = "breastmnist"
batch_size = 8
progress = false
  [[steps.stages]]
  name = "one"
  out = "{out}/one.pt"
"""


class Killed(BaseException):
    """Stands for SIGKILL: nothing after it runs, nothing catches it."""


def test_a_study_killed_between_an_output_and_its_marker_resumes(tmp_path, monkeypatch, capsys):
    npz = write_medmnist(tmp_path / "data.npz", n=(16, 8, 8))
    study = _write(tmp_path, SMALL_STUDY.format(extra=CHAIN))
    out = tmp_path / "out"
    args = ["run", str(study), "--set", f"images={npz}", "--set", f"out={out}"]
    record = execute._write_marker

    def kill_at(step):
        def write_marker(plan, marker, hash_, name, *rest):
            if name == step:
                raise Killed(name)
            return record(plan, marker, hash_, name, *rest)
        return write_marker

    # killed after the cross-validated stage's run folder is complete, before its marker
    monkeypatch.setattr(execute, "_write_marker", kill_at("first"))
    with pytest.raises(Killed):
        main(args)
    assert (out / "first" / "results.csv").is_file() and not (out / "first" / "study-step.json").exists()
    # then after the checkpoint of stage "one" is written, before its marker
    monkeypatch.setattr(execute, "_write_marker", kill_at("one"))
    with pytest.raises(Killed):
        main(args)
    assert (out / "first" / "study-step.json").is_file()
    assert (out / "one.pt").is_file() and not (out / "one.pt.study-step.json").exists()
    monkeypatch.setattr(execute, "_write_marker", record)
    capsys.readouterr()
    assert main(args) == 0
    said = capsys.readouterr().out
    assert "first (finetune): done" in said and "one (finetune): featurekit finetune" in said
    assert json.loads((out / "one.pt.study-step.json").read_text())["step"] == "one"
    assert not list(out.rglob(".*.study-running"))  # claims are dropped once recorded
    # the study's claim covers only its own outputs: a file it never wrote is still refused
    (out / "one.pt.study-step.json").unlink()
    (out / ".one.pt.study-running").unlink(missing_ok=True)
    assert main(args) != 0
    assert "already exists" in capsys.readouterr().err
