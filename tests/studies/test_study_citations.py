"""Studies cite their sources by authors, title and year, never by a tracker number, and say which is the paper's
data."""

import re
from pathlib import Path

from featurekit.studies import load_study, plan_study, references_of, shipped_studies

REPO = Path(__file__).resolve().parents[2]
TRACKER = re.compile(r"\bissue\s+#?\d+", re.IGNORECASE)


def _cited_texts():
    yield REPO / "README.md"
    yield from sorted((REPO / "pipelines").glob("*"))
    yield from sorted((REPO / "featurekit").rglob("*.py"))


def test_no_source_is_cited_by_an_issue_number():
    hits = [f"{path.relative_to(REPO)}: {line.strip()}" for path in _cited_texts() if path.is_file()
            for line in path.read_text(encoding="utf-8", errors="replace").splitlines() if TRACKER.search(line)]
    assert not hits, hits


def test_study_5_names_the_papers_data_set_so_its_reference_rows_can_say_same_data(tmp_path):
    study = load_study(shipped_studies()["breastmnist_resnet18"])
    refs = references_of(plan_study(study, "quick", [f"breastmnist={tmp_path / 'breastmnist.npz'}"]))
    assert refs["paper_dataset"] == "breastmnist"
    others = [load_study(p).paper.dataset for n, p in shipped_studies().items() if n != "breastmnist_resnet18"]
    assert others and not any(others)  # the other studies run on substitutes of their papers' data
