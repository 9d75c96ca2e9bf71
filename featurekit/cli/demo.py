"""``featurekit demo``: the main job on the embedded default, offline.

Builds the synthetic phantom set (textured lesions; smooth benign vs
spiculated malignant borders; deterministic, generated on first use), extracts
handcrafted features and MobileNet-V2 layers into the cache, then evaluates
them with cross-validation and writes a report. ImageNet weights are used when the torch hub cache has them
(``TORCH_HOME``); otherwise the demo says so plainly and uses seeded random
weights, labelled as such everywhere.

Running it again replaces its own earlier run folder (one whose
``provenance.json`` says ``"demo": true``) as a whole; any other non-empty
``--out`` folder is refused unless ``--overwrite``.
"""

from __future__ import annotations

from pathlib import Path

from featurekit.cli.common import EXAMPLES_FORMATTER

EXAMPLES = """examples:
  featurekit demo                                  # phantom -> cache -> evaluation -> report under runs/demo
  TORCH_HOME=../shared/torch featurekit demo       # with the real ImageNet MobileNet-V2 weights
  featurekit demo --out runs/mydemo --quiet
"""

DEMO_LAYERS = "mobilenet_v2:features.4,features.7,features.11,features.14,features.17,features.18"
DEMO_HANDCRAFTED = ("gabor", "glcm")


def add_parser(sub) -> None:
    p = sub.add_parser("demo", help="run the whole job on the embedded synthetic phantom set (offline)",
                       description=__doc__, epilog=EXAMPLES, formatter_class=EXAMPLES_FORMATTER)
    p.add_argument("--out", default="runs/demo", help="output folder of the evaluation run (default: runs/demo)")
    p.add_argument("--cache", default=None, help="cache file (default: cache/phantom-<fingerprint>.h5)")
    p.add_argument("--overwrite", action="store_true",
                   help="replace a non-empty --out folder that is not an earlier demo run (an earlier demo "
                        "run is always replaced)")
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(run=run)


def imagenet_available(model: str = "mobilenet_v2") -> bool:
    from featurekit.models.weights import hub_file, imagenet_weights

    return hub_file(imagenet_weights(model)).is_file()


def earlier_demo(folder: Path) -> bool:
    """Whether ``folder`` is a run folder the demo wrote (its provenance says so)."""
    import json

    try:
        return json.loads((folder / "provenance.json").read_text()).get("demo") is True
    except (OSError, ValueError, AttributeError):
        return False


def run(args) -> int:
    from featurekit.data.phantom import make_phantom
    from featurekit.extraction.pipeline import extract
    from featurekit.io import refuse_existing
    from featurekit.models.weights import hub_file, imagenet_weights
    from featurekit.orchestration import run_demo_evaluation

    out = Path(args.out)
    overwrite = bool(getattr(args, "overwrite", False)) or earlier_demo(out)
    refuse_existing(out, overwrite, what="run folder", kind="folder")  # before any work
    dataset = make_phantom()
    say = (lambda *a: None) if args.quiet else print
    if imagenet_available():
        weights = "imagenet"
        say(f"weights: torchvision ImageNet MobileNet-V2 from {hub_file(imagenet_weights('mobilenet_v2'))}")
    else:
        weights = "none"
        say("weights: ImageNet weights for mobilenet_v2 are NOT available offline "
            f"(no {hub_file(imagenet_weights('mobilenet_v2'))}); using seeded RANDOM weights. "
            "The CNN rows below are random-feature baselines, not pretrained features. "
            "Set TORCH_HOME to a torch cache holding them (e.g. ../shared/torch).")
    say(f"dataset: {dataset!r}")
    result = extract(dataset, [DEMO_LAYERS], list(DEMO_HANDCRAFTED), cache=args.cache, weights=weights,
                     progress=not args.quiet)
    say(f"cache: {result.cache.path} ({len(result.computed)} entries computed, {len(result.reused)} reused)")
    for spec in result.specs:
        say(f"  {spec.key:<28} {spec.dim:>6} dims")
    from featurekit.evaluation.results.runfolder import read_run
    from featurekit.report.build import text_table

    report = run_demo_evaluation(dataset, result, out, progress=not args.quiet, overwrite=overwrite)
    say(f"\ncross-validated results (logistic regression, stratified 5-fold x3, positive = malignant; "
        f"95% bootstrap CIs):\n{text_table(read_run(out).results)}")
    say(f"run folder: {out}  (results.csv, predictions.csv, comparisons.csv, provenance.json)")
    say(f"report: {report}  and {report.with_suffix('.md')}")
    return 0
