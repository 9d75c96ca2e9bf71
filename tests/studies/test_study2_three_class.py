"""Study 2's ``three_class`` profile: BUSI normal / benign / malignant, the multi-class answer.

The profile runs only its own steps (whole images, no positive class, near-duplicates grouped) and
leaves the binary profiles' steps as they are; on a small BUSI subset it runs end to end into a
multi-class run folder.
"""

import json

import pandas as pd

from featurekit.cli import main
from featurekit.studies import load_study, plan_study

STUDY = "handcrafted_vs_cnn"
CLASSES = ("normal", "benign", "malignant")


def _running(plan) -> dict:
    return {s.name: s for s in plan.steps if not s.skipped}


def test_three_class_profile_plans_busis_three_classes_on_whole_images(shared):
    study = load_study(STUDY)
    plan = plan_study(study, "three_class", [f"shared={shared}"])
    assert not plan.problems
    running = _running(plan)
    assert list(running) == ["features3", "compare3", "report"]
    extract, evaluate = running["features3"].step, running["compare3"].step
    for data in (extract.data, evaluate.data):
        # no positive class: three classes give the multi-class task; whole images, since the
        # normal images' masks are empty and --roi mask has nothing to crop there
        assert data.classes == CLASSES and data.positive is None and data.roi == "none"
    assert evaluate.data.group_duplicates == 8
    assert extract.options["resize"] == evaluate.options["resize"] == "squash"
    # the texture families on whole images too: no masks read (with them, refused: the lesion in
    # benign / malignant images, the whole of a normal one)
    assert [str(h) for h in extract.handcrafted] == ["gabor", "glcm", "haar"]
    assert extract.data.masks is False and evaluate.data.masks is False
    assert {"gabor", "glcm", "haar"} <= {str(f) for f in evaluate.options["features"]}
    assert running["report"].step.runs == (evaluate.out,)
    # the profile's substitutions replace the study's binary ones of the same topic
    topics = [s.split(": ")[0] for s in plan.substitutions]
    assert len(topics) == len(set(topics)) and "data" in topics
    assert not any("benign vs malignant ultrasound" in s for s in plan.substitutions)


def test_profile_substitutions_replace_the_studys_of_their_topic():
    from featurekit.studies.plan import merge_substitutions

    study = ["data: A", "protocol: B", "no topic here", "network: C"]
    assert merge_substitutions(study, ["protocol: B2", "input: D", "network: C2", "network: C3"]) == \
        ["data: A", "protocol: B2", "no topic here", "network: C2", "network: C3", "input: D"]
    assert merge_substitutions(study, []) == study
    assert merge_substitutions([], ["x: 1"]) == ["x: 1"]


def test_binary_profiles_keep_their_steps(shared):
    study = load_study(STUDY)
    for profile in ("quick", "paper"):
        running = _running(plan_study(study, profile, [f"shared={shared}"]))
        assert "features3" not in running and "compare3" not in running
        data = running["compare"].step.data
        assert data.classes == ("benign", "malignant") and data.positive == "malignant" and data.roi == "mask"


def test_three_class_profile_runs_to_a_multiclass_run_folder(shared, torch_home, tmp_path, monkeypatch):
    """45 images, two layers at 32 px, 2 folds, logistic regression: seconds on a CPU."""
    monkeypatch.setenv("TORCH_HOME", str(torch_home))
    out = tmp_path / "s2"
    sets = [f"shared={shared}", f"out={out}", "subsample=45", "size=32", "n_boot=50", "batch_size=8",
            "progress=false", "cv=2", f"cache={tmp_path / 'features.h5'}", 'compare3.classifiers=["logreg"]',
            'features3.layers=["mobilenet_v2:features.17-features.18"]', 'features3.handcrafted=["glcm"]',
            'compare3.features=["glcm", "mobilenet_v2:features.17-features.18"]', "compare3.fuse=[]",
            "report.skip=true"]
    assert main(["run", STUDY, "--profile", "three_class", *[x for s in sets for x in ("--set", s)]]) == 0
    prov = json.loads((out / "compare3" / "provenance.json").read_text())
    assert prov["task"] == "multiclass" and prov["positive"] is None and prov["classes"] == list(CLASSES)
    assert prov["grouped"] and prov["options"]["extraction"]["resize"] == "squash"
    results = pd.read_csv(out / "compare3" / "results.csv")
    assert {"roc_auc_pooled", "balanced_accuracy_pooled", "f1_macro_pooled", "kappa_pooled",
            *(f"sensitivity[{c}]_pooled" for c in CLASSES)} <= set(results.columns)
    assert results["roc_auc_pooled"].between(0, 1).all()
    assert "glcm" in set(results["feature_set"])  # a texture family of whole images, masks unread
    pred = pd.read_csv(out / "compare3" / "predictions.csv")
    assert {f"proba[{c}]" for c in CLASSES} <= set(pred.columns)
