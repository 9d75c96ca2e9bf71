"""Limits that fit the machine, and what the command line shows: job counts, warnings."""

import os
import subprocess
import sys
import textwrap
import warnings

import numpy as np
import pytest
from conftest import random_dataset

import featurekit.devices as devices
from featurekit.cli import format_warning, main
from featurekit.devices import resolve_jobs
from featurekit.errors import DataError, ResourceError


@pytest.fixture
def two_cores(monkeypatch):
    monkeypatch.setattr(devices, "cpu_cores", lambda: 2)


def test_jobs_read_as_scikit_learn_reads_n_jobs(two_cores):
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # none of these warns
        assert [resolve_jobs(n) for n in (None, 1, 2, -1, -2, "2")] == [1, 1, 2, 2, 1, 2]
    for bad, message in ((0, "n_jobs=0 runs nothing"), (-3, "n_jobs=-3 leaves no core"),
                         ("ten", "must be an integer"), (True, "must be an integer")):
        with pytest.raises(ResourceError, match=message):
            resolve_jobs(bad)


def test_more_jobs_than_cores_are_capped_with_a_warning(two_cores):
    with pytest.warns(UserWarning, match="--jobs=200: this machine has 2 core"):
        assert resolve_jobs(200, "--jobs") == 2


def test_evaluate_jobs_zero_is_refused_before_the_data_are_read(tmp_path, capsys):
    assert main(["evaluate", str(tmp_path / "no-such-data"), "--features", "gabor", "--jobs", "0"]) == 2
    err = capsys.readouterr().err
    assert "n_jobs=0 runs nothing" in err and "Traceback" not in err
    with pytest.raises(ResourceError, match="n_jobs=0"):  # the API too, before any feature is extracted
        from featurekit.orchestration import evaluate_features

        evaluate_features(random_dataset(8, size=32), ["gabor"], ["logreg"], "2", n_jobs=0)


def test_evaluate_runs_at_most_as_many_jobs_as_cores(two_cores, monkeypatch):
    import featurekit.orchestration

    seen = {}

    def fake(*args, n_jobs, **kwargs):
        seen["n_jobs"] = n_jobs
        raise DataError("stopped here")

    monkeypatch.setattr(featurekit.orchestration, "evaluate_features", fake)
    with pytest.warns(UserWarning, match="n_jobs=200"):
        assert main(["evaluate", "phantom", "--features", "gabor", "--jobs", "200", "--quiet"]) == 2
    assert seen["n_jobs"] == 2


def test_the_command_line_shows_a_warning_without_python_source(tmp_path):
    assert format_warning("careful", UserWarning, "/x/y.py", 3, "warnings.warn(...)") == "warning: careful\n"
    from PIL import Image

    data = tmp_path / "images"
    for cls in ("a", "b"):  # the plan reads the data's classes (no image decoded)
        (data / cls).mkdir(parents=True)
        Image.fromarray(np.zeros((8, 8), np.uint8)).save(data / cls / "x.png")
    study = tmp_path / "s.toml"
    study.write_text(textwrap.dedent(f"""
        [[steps]]
        name = "compare"
        kind = "evaluate"
        data = "{data}"
        positive = "b"
        features = ["gabor"]
        n_jobs = 100000
    """))
    env = {**os.environ, "PYTHONWARNINGS": "default"}
    proc = subprocess.run([sys.executable, "-c", "import sys; from featurekit.cli import main; "
                           "sys.exit(main(sys.argv[1:]))", "run", str(study), "--dry-run"],
                          capture_output=True, text=True, env=env, timeout=120)
    assert proc.returncode == 0, proc.stderr
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert lines and lines[0].startswith("warning: n_jobs=100000: this machine has ")
    assert not any(".py:" in ln or "warnings.warn" in ln or "UserWarning" in ln for ln in lines), proc.stderr


def test_evaluate_after_a_skipping_extract_advises_only_what_it_can_do(tmp_path, capsys):
    """evaluate has no --on-error: its error about images an extract skipped must not advise it."""
    import numpy as np
    from PIL import Image

    root = tmp_path / "data"
    rng = np.random.default_rng(0)
    for cls in ("a", "b"):
        (root / cls).mkdir(parents=True)
        for k in range(4):
            Image.fromarray(rng.integers(0, 256, (24, 24), dtype=np.uint8)).save(root / cls / f"{k}.png")
    (root / "a" / "broken.png").write_bytes(b"not a png")
    cache = str(tmp_path / "c.h5")
    assert main(["extract", str(root), "--handcrafted", "glcm", "--cache", cache, "--on-error", "skip",
                 "--quiet"]) == 0
    capsys.readouterr()
    assert main(["evaluate", str(root), "--positive", "b", "--features", "glcm", "--cache", cache, "--cv", "2",
                 "--classifier", "logreg", "--n-boot", "20", "--out", str(tmp_path / "run"), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "a/broken" in err and "fix or remove those files" in err
    assert "pass --on-error skip" not in err and "Traceback" not in err
