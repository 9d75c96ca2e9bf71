"""``featurekit explain``: where each layer of a run looks, and how much of its evidence lies on the lesion.

For the CNN / ViT layers of a run folder (or ``--layers``), computes each
image's map per layer -- the class activation map of a linear probe on the
layer's pooled features (``--map probe``, default), the channel-mean
activation (``--map mean``) or Grad-CAM of a fine-tuned checkpoint's head
(``--map gradcam --weights CKPT``) -- from the same model, weights and input size as
the run's features (maps are cached beside the features, verified on every
read). With lesion masks (or MIAS circles) it scores the share of each map's
positive energy inside the lesion, per class, with a bootstrap interval over
the run's independent unit, and writes ``lesion_energy.csv`` and
``explain_examples_<map>.npz`` (example images of each class, correctly and wrongly
classified, with their maps) into the run folder; ``featurekit report RUN``
then draws the lesion-energy curve beside the AUC curve, its table and the
example panel. DATA and its options must name the run's data (same fingerprint).
"""

from __future__ import annotations

from pathlib import Path

from featurekit.cli.common import EXAMPLES_FORMATTER, add_data_arguments, non_negative_int, positive_int

EXAMPLES = """examples:
  featurekit explain runs/busi-mnv2 ../shared/data/busi --classes benign,malignant --positive malignant \\
      --group-duplicates --subsample 80      # the run's own data options
  featurekit explain runs/busi-mnv2 busi/ --positive malignant --map mean --layers mobilenet_v2:features.2-features.18
  featurekit report runs/busi-mnv2          # the report now shows the maps and the lesion-energy curve
"""

#: side of the example images stored for the report panel (pixels)
THUMB = 96


def add_parser(sub) -> None:
    p = sub.add_parser("explain", help="per-layer activation / class-activation maps and their lesion energy",
                       description=__doc__, epilog=EXAMPLES, formatter_class=EXAMPLES_FORMATTER)
    p.add_argument("run_folder", metavar="RUN", help="run folder written by featurekit evaluate")
    add_data_arguments(p)
    p.add_argument("--layers", default=None, metavar="SPEC",
                   help="layers of one model, e.g. mobilenet_v2:1-18 (default: the layers the run evaluated of the "
                        "model of its best CNN row)")
    p.add_argument("--map", dest="kind", choices=["probe", "mean", "gradcam"], default="probe",
                   help="probe: class activation map of a linear probe on the layer's gap features (default); "
                        "mean: channel-mean activation; gradcam: Grad-CAM of a fine-tuned checkpoint's head "
                        "for each image's class (give the checkpoint with --weights)")
    p.add_argument("--weights", default=None, metavar="WEIGHTS",
                   help="the model's weights (default: the run's): imagenet, none, or a checkpoint file")
    p.add_argument("--gabor", action="store_true",
                   help="also score the Gabor bank's response energy on the lesion (the handcrafted counterpart, "
                        "on the images as the handcrafted features see them)")
    p.add_argument("--examples", type=positive_int, default=1,
                   help="example images per class and outcome (correct / wrong) in the panel (default: 1)")
    p.add_argument("--n-boot", type=non_negative_int, default=2000, help="bootstrap replicates (default: 2000)")
    p.add_argument("--seed", type=int, default=0, help="seed of the bootstrap (default: 0)")
    p.add_argument("--maps-cache", default=None, metavar="FILE",
                   help="cache of the maps (default: cache/maps/<dataset>-<fingerprint12>.h5)")
    p.add_argument("--batch-size", type=positive_int, default=16)
    p.add_argument("--device", default="auto", help="auto (CUDA when present), cpu, cuda, cuda:1 ...")
    p.set_defaults(run=run)


def _run_layers(run, spec):
    """``(model, layer spec, weights, input size, resize mode)`` of the run's CNN rows (or of ``spec``)."""
    from featurekit.errors import DataError
    from featurekit.specs import parse_layers

    prov = run.provenance
    entries = [e for e in prov.get("entries") or [] if e.get("family") == "cnn" or e.get("layer")]
    extraction = (prov.get("options") or {}).get("extraction") or {}
    if spec:
        model = parse_layers([spec])[0].model
    else:
        deep = run.results[run.results["kind"] == "deep"]
        if deep.empty:
            raise DataError(f"{run.path}: the run has no CNN layer rows; name the layers with --layers")
        from featurekit.report.maps import auc_column

        model = str(deep.sort_values(auc_column(deep), ascending=False)["model"].iloc[0])
        layers = list(dict.fromkeys(deep.loc[deep["model"] == model].sort_values("layer_index")["layer"]))
        spec = f"{model}:" + ",".join(layers)
    mine = [e for e in entries if str(e.get("model")) == model]
    weights = mine[0].get("weights") if mine else extraction.get("weights")
    size = mine[0].get("input_size") if mine else extraction.get("size")
    mode = extraction.get("resize") or extraction.get("mode") or "crop"
    return model, spec, weights or "imagenet", int(size) if size else None, mode


def _panel_layers(run, table, model):
    """The layers the panel shows (at most five, in depth order): first, best two by AUC, the selected
    row's favourite, last."""
    from featurekit.report.maps import auc_column

    res = run.results
    deep = res[(res["kind"] == "deep") & (res["model"] == model)]
    chosen = [table[0], table[-1]]
    if not deep.empty:
        chosen += list(deep.sort_values(auc_column(deep), ascending=False)["layer"].head(2))
    freq = (run.provenance.get("selection") or {}).get("frequency") or {}
    if freq:
        fs = max(freq, key=freq.get).split(" | ")[0]
        chosen += list(res.loc[(res["feature_set"] == fs) & (res["model"] == model), "layer"])
    order = {name: i for i, name in enumerate(table)}
    return sorted({c for c in chosen if c in order}, key=order.get)


def _example_row(run, model):
    """The row whose out-of-fold calls pick the examples: the selected row, else the best CNN row."""
    res = run.results
    sel = res[res["kind"] == "selected"]
    rows = sel if not sel.empty else res[(res["kind"] == "deep") & (res["model"] == model)]
    if rows.empty:
        return None
    from featurekit.report.maps import auc_column

    best = rows.sort_values(auc_column(rows), ascending=False).iloc[0]
    return str(best["feature_set"]), str(best["classifier"])


def _examples(run, ds, result, picked_layers, model, per_group):
    """Arrays of the example panel (see :mod:`featurekit.report.maps`); None when there are
    no predictions to pick from, or when the run folder already holds this very panel (nothing to draw:
    no torch imported)."""
    import numpy as np

    from featurekit.io import canonical_json
    from featurekit.report.maps import EXAMPLES_NPZ, oriented, pick_examples

    row = _example_row(run, model)
    if row is None or run.predictions.empty:
        return None
    names = {i: ds.class_names[k] for i, k in zip(ds.ids, ds.labels) if k >= 0}
    picks = pick_examples(run.predictions, row[0], row[1], names, per_group)
    if not picks:
        return None
    signature = canonical_json({"row": list(row), "picks": [list(p) for p in picks], "thumb": THUMB,
                                "maps": [list(result.entries[name]) for name in picked_layers]})
    path = Path(run.path) / EXAMPLES_NPZ.format(kind=result.kind)
    if path.is_file():
        with np.load(path, allow_pickle=False) as old:
            if "signature" in old.files and str(old["signature"]) == signature:
                return None
    import torch
    import torch.nn.functional as F

    from featurekit.extraction.map_hooks import model_view
    from featurekit.models.preprocessing import Preprocessing

    rows = ds.rows([i for i, _ in picks])
    pre = Preprocessing.from_dict(result.preprocessing)
    images = np.stack([model_view(ds.image(r), pre, (THUMB, THUMB)) for r in rows])
    masks = np.stack([model_view(np.asarray(m if m is not None else np.zeros(ds.image(r).shape[:2]), bool),
                                 pre, (THUMB, THUMB)) for r, m in ((r, ds.mask(r)) for r in rows)])
    is_pos = np.asarray([names[i] == ds.positive for i, _ in picks])
    maps = []
    for name in picked_layers:
        m = oriented(result.maps[name][rows], result.kind, is_pos)
        maps.append(F.interpolate(torch.from_numpy(m)[:, None], size=(THUMB, THUMB), mode="bilinear",
                                  align_corners=False)[:, 0].numpy())
    return {"images": images.astype(np.float32), "masks": masks.astype(np.float32), "maps": np.stack(maps),
            "layers": np.asarray(picked_layers), "ids": np.asarray([i for i, _ in picks]),
            "classes": np.asarray([names[i] for i, _ in picks]), "correct": np.asarray([c for _, c in picks]),
            "kind": np.asarray(result.kind), "row": np.asarray(" | ".join(row)),
            "signature": np.asarray(signature)}


def run(args) -> int:
    from featurekit.cli.common import load_data
    from featurekit.errors import DataError
    from featurekit.evaluation.results.runfolder import read_run
    from featurekit.extraction.maps import layer_maps
    from featurekit.report.maps import energy_table, write_explain

    run_folder = read_run(args.run_folder)
    ds = load_data(args)
    want = (run_folder.provenance.get("dataset") or {}).get("fingerprint")
    if want and want != ds.fingerprint():
        raise DataError(f"{args.data} with these options is not the data of run {run_folder.path} (fingerprint "
                        f"{ds.fingerprint()[:12]}, the run's {str(want)[:12]}): give the run's data options "
                        "(--classes, --positive, --roi, --group-duplicates, --subsample)")
    if ds.positive is None:
        ds = ds.with_positive(run_folder.provenance.get("positive"))
    if not ds.has_masks:
        raise DataError(f"{args.data}: no lesion masks (or MIAS circles): the lesion energy needs them")
    model, spec, weights, size, mode = _run_layers(run_folder, args.layers)
    weights = args.weights or weights
    cache = run_folder.provenance.get("cache")
    result = layer_maps(ds, spec, args.kind, weights=weights, size=size, mode=mode, cache=args.maps_cache,
                        features_cache=cache if cache and Path(cache).is_file() else None,
                        batch_size=args.batch_size, device=args.device, progress=True)
    layers = [(layer.name, layer.index) for layer in result.layers]
    table = energy_table(result.maps, result.lesion, layers, model=result.model, kind=args.kind,
                         class_names=ds.class_names, labels=ds.labels, positive=ds.positive,
                         groups=ds.groups, ids=ds.ids, n_boot=args.n_boot, seed=args.seed)
    if args.gabor:
        import pandas as pd

        from featurekit.extraction.texture_maps import gabor_maps

        g = gabor_maps(ds, cache=args.maps_cache)
        table = pd.concat([table, energy_table(g.maps, g.lesion, [("gabor", float("nan"))], model="gabor",
                                               kind="energy", class_names=ds.class_names, labels=ds.labels,
                                               positive=ds.positive, groups=ds.groups, ids=ds.ids,
                                               n_boot=args.n_boot, seed=args.seed)], ignore_index=True)
    panel = _panel_layers(run_folder, [name for name, _ in layers], result.model)
    examples = _examples(run_folder, ds, result, panel, result.model, args.examples)
    written = write_explain(run_folder.path, table, examples)
    print(f"maps: {len(result.computed)} entries computed, {len(result.reused)} reused ({result.cache.path})")
    show = table.pivot_table(index=["layer", "kind"], columns="class", values="lesion_energy", sort=False)
    show["chance"] = table[table["class"] == "all"].set_index(["layer", "kind"])["area_fraction"]
    print(show.reset_index().round(3).to_string(index=False))
    for path in written:
        print(f"wrote {path}")
    print(f"report: featurekit report {run_folder.path}")
    return 0
