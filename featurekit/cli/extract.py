"""``featurekit extract``: fill a feature cache with CNN layers and handcrafted features."""

from __future__ import annotations

from featurekit.cli.cluster import add_executor_arguments, executor_from_args
from featurekit.cli.common import EXAMPLES_FORMATTER, add_data_arguments, load_data
from featurekit.specs import Weights, parse_handcrafted

EXAMPLES = """layer specs (see 'featurekit layers MODEL' for the names):
  vgg16:8-17                      Keras indices 8..17 = block3_conv2 .. block5_conv3
  vgg16:block4_pool               one layer by name
  resnet50:conv4_block6_out,conv5_block3_out
  inception_v3:mixed0-mixed10     ranges take names too
  resnet50:conv5_*                wildcards

examples:
  featurekit extract ../shared/data/busi --classes benign,malignant --positive malignant \\
      --layers vgg16:8-17 --weights imagenet
  featurekit extract busi/ --roi mask --handcrafted gabor,glcm,haar --layers vgg16:8-17
  featurekit extract busi/ --roi mask --handcrafted radiomics,lbp          # pyradiomics' classes + LBP
  featurekit extract busi/ --roi mask --handcrafted radiomics:params=Params.yaml   # a pyradiomics file
  featurekit extract data.csv --layers resnet50:conv5_* --layers inception_v3:mixed0-mixed10 --pool gapgmp
  featurekit extract breastmnist.npz --layers resnet18:all --weights none --size 64 --quiet
  featurekit extract phantom --layers mobilenet_v2:all --weights none
  featurekit extract busi/ --roi mask --handcrafted glcm --on-error skip   # list unreadable images, go on
  featurekit extract busi/ --layers timm-vit_small_patch16_224.augreg_in21k:blocks.* --pool cls
  featurekit extract busi/ --layers vgg16:8-17 --handcrafted gabor,glcm,haar --scheduler local:2
  featurekit extract busi/ --layers vgg16:8-17 --executor dask --scheduler tcp://head:8786 --shard-size 256
"""


def add_parser(sub) -> None:
    from featurekit.options import EXTRACT  # the declaration as it is when the parser is built

    p = sub.add_parser("extract", help="extract features into the HDF5 cache (reuses what is there)",
                       description=__doc__, epilog=EXAMPLES, formatter_class=EXAMPLES_FORMATTER)
    add_data_arguments(p)
    EXTRACT.add_arguments(p)
    add_executor_arguments(p)
    p.set_defaults(run=run)


def run(args) -> int:
    from featurekit.extraction.pipeline import read_handcrafted_params
    from featurekit.options import EXTRACT

    values = EXTRACT.from_args(args)
    # the families read here, pyradiomics parameter files included, before the data are loaded
    values["handcrafted"] = parse_handcrafted(values["handcrafted"], read_params=read_handcrafted_params)
    with executor_from_args(args) as executor:
        return _run(args, values, executor)


def _run(args, values: dict, executor) -> int:
    from featurekit.extraction.pipeline import extract

    dataset = load_data(args)
    result = extract(dataset, **values, executor=executor, shard_size=args.shard_size)
    if result.skipped:  # printed even with --quiet: never dropped silently
        print(f"skipped {len(result.skipped)} unreadable image(s), recorded in the cache, no rows:")
        for sample_id, reason in result.skipped.items():
            print(f"  {sample_id}: {reason}")
    if values["progress"]:
        print(f"dataset: {dataset.name} ({len(dataset)} images; {_counts(dataset)})")
        models: dict[str, tuple[str, str]] = {}
        for spec in result.specs:
            if spec.params.get("family") == "cnn":
                sha = spec.attrs.get("weights_sha256") or spec.params.get("weights_sha256") or ""
                models.setdefault(spec.params["model"], (str(spec.params.get("weights")), str(sha)))
        for name, (weights, sha) in models.items():
            note = "" if Weights.parse(weights).pretrained else "  (random init: NOT pretrained)"
            print(f"model: {name} weights={weights}{f' sha256={sha[:12]}' if sha else ''}{note}")
        print(f"cache: {result.cache.path}")
        if result.reused_rows:
            print(f"  {result.reused_rows} rows reused from earlier caches of the same images")
        for spec in result.specs:
            state = "computed" if spec in result.computed else "reused"
            print(f"  {spec.key:<32} {spec.dim:>7} dims  {state}")
    return 0


def _counts(dataset) -> str:
    import numpy as np

    counts = np.bincount(dataset.labels[dataset.labels >= 0], minlength=len(dataset.class_names))
    return ", ".join(f"{c}: {n}" for c, n in zip(dataset.class_names, counts))
