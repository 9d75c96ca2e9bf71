"""``featurekit extract``: fill a feature cache with CNN layers and handcrafted features."""

from __future__ import annotations

from featurekit.cli.cluster import add_executor_arguments, executor_from_args
from featurekit.cli.common import (EXAMPLES_FORMATTER, add_data_arguments, load_data, non_negative_int, positive_int,
                                   spec_type)
from featurekit.devices import AMP_CHOICES, PREPROCESS_CHOICES
from featurekit.specs import POOLS, RESIZE_MODES, LayerSpec, Weights, parse_handcrafted

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
    p = sub.add_parser("extract", help="extract features into the HDF5 cache (reuses what is there)",
                       description=__doc__, epilog=EXAMPLES, formatter_class=EXAMPLES_FORMATTER)
    add_data_arguments(p)
    p.add_argument("--layers", action="append", default=[], metavar="SPEC", type=spec_type(LayerSpec.parse),
                   help="MODEL:LAYERS to extract; repeat for several models")
    p.add_argument("--handcrafted", default=[], metavar="FAMILIES", type=spec_type(handcrafted_families),
                   help="comma-separated handcrafted families: gabor,glcm,haar,firstorder,shape,lbp (radiomics: "
                        "pyradiomics' feature classes); parameters after a colon, separated by ';' (e.g. "
                        "glcm:bin_count=64;symmetric=true, gabor:frequencies=0.25,0.1); radiomics:params=FILE.yaml "
                        "takes the classes and settings of a pyradiomics parameter file")
    p.add_argument("--weights", default="imagenet",
                   help="imagenet (torchvision's, from the torch hub cache; for timm-* models the pretrained "
                        "weights of the tag, from the Hugging Face hub cache), none (random, seeded), or a "
                        "state_dict (.pth, .safetensors) / featurekit checkpoint PATH (default: imagenet)")
    p.add_argument("--size", type=int, default=None, help="input size (default: the weights')")
    p.add_argument("--resize", default="crop", choices=RESIZE_MODES,
                   help="crop: shorter side + centre crop as the weights do; squash: straight to size x size")
    p.add_argument("--pool", default="gap", choices=POOLS,
                   help="pooling of each map or token sequence to a vector: gap (default), gmp, gapgmp, spp, "
                        "none; for vision transformers also cls (class token), mean (patch tokens), clsmean")
    p.add_argument("--batch-size", type=positive_int, default=16)
    p.add_argument("--workers", type=non_negative_int, default=None,
                   help="DataLoader workers (default: cores-1, at most 4; on CUDA every core but one)")
    p.add_argument("--device", default="auto", help="auto (CUDA when present), cpu, cuda, cuda:1 ...")
    p.add_argument("--amp", default="auto", choices=AMP_CHOICES,
                   help="autocast precision, recorded with the features: auto (float16 on CUDA, float32 on the "
                        "CPU), fp16, bf16 (GPUs from Ampere on; CPUs too), none (default: auto)")
    p.add_argument("--no-amp", action="store_true", help="the same as --amp none")
    p.add_argument("--preprocess", default="host", choices=PREPROCESS_CHOICES,
                   help="where resize and normalisation run: host (DataLoader workers), device (on the GPU after "
                        "uploading the decoded uint8 images; same values, same cache entries), auto (device on "
                        "CUDA) (default: host)")
    p.add_argument("--float16", action="store_true", help="store features as float16")
    p.add_argument("--seed", type=int, default=0, help="seed of random initialisation (--weights none)")
    p.add_argument("--cache", default=None, metavar="FILE",
                   help="cache file (default: cache/<dataset>-<fingerprint>.h5)")
    p.add_argument("--lock-timeout", type=float, default=600.0,
                   help="seconds to wait for another process writing the same cache (default: 600)")
    p.add_argument("--on-error", default="raise", choices=["raise", "skip"],
                   help="an image that cannot be read or processed: raise (stop, naming it; finished work is "
                        "kept) or skip (leave it out of the cache and list it) (default: raise)")
    p.add_argument("--quiet", action="store_true", help="no progress bar or summary")
    add_executor_arguments(p)
    p.set_defaults(run=run)


def handcrafted_families(text: str) -> list:
    """``--handcrafted``: families, groups and pyradiomics parameter files, read once here."""
    from featurekit.extraction.pipeline import read_handcrafted_params

    return parse_handcrafted(text, read_params=read_handcrafted_params)


def run(args) -> int:
    with executor_from_args(args) as executor:
        return _run(args, executor)


def _run(args, executor) -> int:
    from featurekit.extraction.pipeline import extract

    dataset = load_data(args)
    result = extract(
        dataset, args.layers, args.handcrafted, cache=args.cache, weights=Weights.parse(args.weights, seed=args.seed),
        size=args.size,
        pool=args.pool, mode=args.resize, batch_size=args.batch_size, device=args.device,
        amp="none" if args.no_amp else args.amp, num_workers=args.workers, preprocess=args.preprocess,
        dtype="float16" if args.float16 else "float32", progress=not args.quiet,
        lock_timeout=args.lock_timeout, on_error=args.on_error, executor=executor, shard_size=args.shard_size,
    )
    if result.skipped:  # printed even with --quiet: never dropped silently
        print(f"skipped {len(result.skipped)} unreadable image(s), recorded in the cache, no rows:")
        for sample_id, reason in result.skipped.items():
            print(f"  {sample_id}: {reason}")
    if not args.quiet:
        print(f"dataset: {dataset.name} ({len(dataset)} images; {_counts(dataset)})")
        models = {}
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
