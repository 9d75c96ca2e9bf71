"""Build hook; the package's metadata is in pyproject.toml.

The shipped studies stay in the top-level ``pipelines/`` of the source tree (where users
and ``featurekit run pipelines/X.toml`` find them) and are copied into the built package as
``featurekit/studies/pipelines``, where :func:`featurekit.studies.study.studies_dir` finds
them in an installed wheel.
"""

from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

STUDIES = Path(__file__).resolve().parent / "pipelines"


class BuildWithStudies(build_py):
    def run(self):
        super().run()
        if self.editable_mode:  # an editable install reads pipelines/ of the checkout itself
            return
        files = sorted(STUDIES.glob("*.toml"))
        if not files:
            raise SystemExit(f"{STUDIES}: no study files (*.toml) to ship; build from a full source tree")
        target = Path(self.build_lib) / "featurekit" / "studies" / "pipelines"
        self.mkpath(str(target))
        for src in [*files, STUDIES / "README.md"]:
            self.copy_file(str(src), str(target / src.name))


setup(cmdclass={"build_py": BuildWithStudies})
