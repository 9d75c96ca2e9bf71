#!/usr/bin/env python
"""Time featurekit's handcrafted features against scikit-image (and pyradiomics).

Every family runs on the same BUSI images: ``--n-images`` lesion-centred
``--size`` x ``--size`` crops (with their masks) read from
``$FEATUREKIT_SHARED/data/busi`` (default ``../shared`` beside the repository).
Times are per image: featurekit's batch call divided by the number of images
(best of ``--repeats``), the references as their usual per-image loop. The
last column checks, on the same run, that both sides computed the same numbers.

Rows
----
gabor     64 features (8 orientations x 4 frequencies, magnitude mean + var)
          vs ``skimage.filters.gabor`` per filter on the float image; one
          process, plus a row with ``--n-jobs`` joblib workers.
glcm-sk   4 distances x 4 angles at 256 levels, graycoprops' 6 classic
          properties vs ``graycomatrix`` + ``graycoprops`` (no mask).
glcm-pyr  pyradiomics' 24 features, bin width 25, with the lesion mask, vs
          ``radiomics.glcm.RadiomicsGLCM`` (class) and the
          ``RadiomicsFeatureExtractor`` (GLCM only), featurekit on the batch and one
          image per call, all timed in turn (best of ``--repeats`` rounds); the
          ratios also in CPU time, and featurekit's time per step (input checks,
          quantisation, counting, features); skipped if pyradiomics is not installed.
first     pyradiomics' first-order (18) and 2-D shape (9) features, bin width 25,
          with the lesion mask, the same comparison (``bench_pyradiomics_classes``).
lbp       rotation-invariant uniform LBP, radii 1, 2, 3, histogram over the mask, vs
          ``skimage.feature.local_binary_pattern`` on each whole image.
texture   pyradiomics' GLRLM (16), GLSZM (16), GLDM (14) and NGTDM (5) features, bin
          width 25, with the lesion mask, the same comparison (``bench_pyradiomics_classes``);
          again with featurekit given the crops as uint8 when they are 8-bit gray values
          (decoded PNGs are; pyradiomics keeps the float64 crops).
haar      the full 24 x 24 set (``feature_set='full'``, 162,336 features)
          and the default grid set (2,763) on the resized ROI vs
          ``skimage.feature.haar_like_feature`` (all features, or the grid's
          ``feature_coord``); the resize is excluded from both ("window")
          and included in featurekit's end-to-end rows; the resize itself
          (featurekit's sparse operator) vs ``skimage.transform.resize``.

``--only`` runs some groups of rows (``texture``, ``first``, ...) or some of pyradiomics'
families (``shape,glrlm``); ``--reference DIR`` times the families of another checkout (the
code before a change, e.g. ``git worktree add /tmp/old HEAD~3``) in turn with these, rows
"(before)" beside pyradiomics, same images, same run.

Example::

    .venv/bin/python benchmarks/bench_handcrafted.py --n-images 10 --size 256
    .venv/bin/python benchmarks/bench_handcrafted.py --only texture,shape --repeats 5 --reference /tmp/old
"""

from __future__ import annotations

import argparse
import logging
import math
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def shared_root() -> Path:
    return Path(os.environ.get("FEATUREKIT_SHARED", REPO.parent / "shared")).resolve()


def load_busi(n: int, size: int):
    from featurekit.imageio import read_image, read_mask, to_gray

    root = shared_root() / "data" / "busi"
    if not root.is_dir():
        sys.exit(f"BUSI not found at {root}; set FEATUREKIT_SHARED")
    paths = []
    for k in range(1, 10 * n + 10):  # alternate benign / malignant, natural numbering
        for cls in ("benign", "malignant"):
            p = root / cls / f"{cls} ({k}).png"
            if p.exists():
                paths.append(p)
    images, masks = [], []
    for p in paths:
        img = to_gray(read_image(p))
        mask = read_mask(str(p).replace(".png", "_mask.png"))
        if img.shape[0] < size or img.shape[1] < size or not mask.any():
            continue
        rows, cols = np.nonzero(mask)
        cy, cx = int(rows.mean()), int(cols.mean())
        y0 = min(max(0, cy - size // 2), img.shape[0] - size)
        x0 = min(max(0, cx - size // 2), img.shape[1] - size)
        crop_m = mask[y0 : y0 + size, x0 : x0 + size]
        if not crop_m.any() or crop_m.all():
            continue
        images.append(np.ascontiguousarray(img[y0 : y0 + size, x0 : x0 + size]))
        masks.append(np.ascontiguousarray(crop_m))
        if len(images) == n:
            break
    if len(images) < n:
        sys.exit(f"only {len(images)} BUSI images of at least {size}x{size} found")
    return images, masks


def load_reference(path: str):
    """``featurekit.handcrafted`` of another checkout ``path`` (e.g. ``git worktree add /tmp/old
    <commit>``), imported as ``featurekit_reference`` so that both versions run in this process,
    timed in turn on the same images (the "before" of a change)."""
    import importlib
    import re
    import shutil
    import tempfile

    dst = Path(tempfile.mkdtemp(prefix="fk_reference_")) / "featurekit_reference"
    shutil.copytree(Path(path) / "featurekit", dst)
    for f in dst.rglob("*.py"):  # its own imports point at the copy
        f.write_text(re.sub(r"\bfeaturekit(?=[.\s])", "featurekit_reference", f.read_text()))
    sys.path.insert(0, str(dst.parent))
    return importlib.import_module("featurekit_reference.handcrafted")


def per_image(fn, n_images: int, repeats: int) -> float:
    best = math.inf
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t)
    return best / n_images


def rel_diff(a, b) -> float:
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    scale = np.maximum(np.abs(b), 1e-12 * max(1.0, float(np.abs(b).max())))
    return float(np.max(np.abs(a - b) / scale))


def best_interleaved(fns, repeats: int, cpu: bool = False):
    """Best time of each callable, the callables run in turn ``repeats`` times (so that
    a slow minute of the shared machine hits every side alike). ``cpu=True`` also returns
    the best CPU time of this process (``time.process_time``: all its threads), which a
    loaded machine disturbs less than the wall clock."""
    best, best_cpu = [math.inf] * len(fns), [math.inf] * len(fns)
    for _ in range(repeats):
        for i, fn in enumerate(fns):
            t, c = time.perf_counter(), time.process_time()
            fn()
            best[i] = min(best[i], time.perf_counter() - t)
            best_cpu[i] = min(best_cpu[i], time.process_time() - c)
    return (best, best_cpu) if cpu else best


def glcm_stages(images, masks, repeats: int) -> list:
    """Where featurekit's GLCM time goes on these crops: ms per image of each step."""
    from featurekit.handcrafted._input import load_images
    from featurekit.handcrafted.glcm_counts import count_matrices
    from featurekit.handcrafted.glcm_formulas import PYRADIOMICS_FEATURES, haralick_features
    from featurekit.handcrafted.glcm_quantize import quantize_levels

    n = len(images)
    dists, angs = [1.0], [0.0, 45.0, 90.0, 135.0]
    imgs, msks = load_images(images, masks, keep_integers=True)  # as glcm_features reads them
    q = [quantize_levels(im, m, None, None, "roi", crop=True) for im, m in zip(imgs, msks)]
    lv, Ng = [v[0] for v in q], np.array([v[2] for v in q])
    P, G = count_matrices(lv, Ng, dists, angs, True)
    P = (P / P.sum(axis=(2, 3), keepdims=True)).reshape(-1, G, G)
    Ngr, two = np.repeat(Ng, 4), np.full(len(P), 2)
    steps = {
        "input checks (load_images)": lambda: load_images(images, masks, keep_integers=True),
        "quantisation (mask box, uint8)": lambda: [quantize_levels(im, m, None, None, "roi", crop=True)
                                                   for im, m in zip(imgs, msks)],
        "counting (graycomatrix on the box)": lambda: count_matrices(lv, Ng, dists, angs, True),
        "24 features of 4n matrices": lambda: haralick_features(P, Ngr, two, PYRADIOMICS_FEATURES),
    }
    times = best_interleaved(list(steps.values()), max(repeats, 5))
    return [(name, t / n) for name, t in zip(steps, times)]


def bench_glcm(images, masks, k: int, repeats: int):
    """GLCM rows: vs skimage (4 distances, 256 levels) and vs pyradiomics (class and extractor)."""
    from skimage.feature import graycomatrix, graycoprops

    from featurekit.handcrafted import glcm_features, quantize
    from featurekit.handcrafted.glcm import PYRADIOMICS_FEATURES

    n = len(images)
    rows, notes = [], []
    dists, angs = [1, 2, 3, 4], [0, 45, 90, 135]
    props = ["contrast", "dissimilarity", "homogeneity", "ASM", "energy", "correlation"]
    kw = dict(bin_count=256, distances=dists, angles=angs, features=[f"sk-{p}" for p in props], aggregate="angle")
    levels = [(quantize(img, bin_count=256) - 1).astype(np.uint8) for img in images[:k]]

    def sk_ref(out=None):
        for lv in levels:
            P = graycomatrix(lv, dists, np.deg2rad(angs), levels=256, symmetric=True, normed=True)
            row = np.concatenate([[graycoprops(P, p)[d] for p in props] for d in range(4)]).ravel()
            if out is not None:
                out.append(row)

    glcm_features(images[:1], **kw)  # warm-up
    ours, ref = best_interleaved([lambda: glcm_features(images, **kw), sk_ref], repeats)
    ref_rows = []
    sk_ref(ref_rows)
    rows.append(("glcm 4d x 4a, 256 levels", "skimage graycomatrix+props", ours / n, ref / k,
                 rel_diff(glcm_features(images[:k], **kw), ref_rows)))

    try:
        import SimpleITK as sitk
        from radiomics import featureextractor
        from radiomics import glcm as rglcm
    except ImportError:
        rows.append(("glcm pyradiomics set", "pyradiomics (not installed)", float("nan"), float("nan"), float("nan")))
        return rows, notes
    logging.getLogger("radiomics").setLevel(logging.ERROR)
    sims = [(sitk.GetImageFromArray(im), sitk.GetImageFromArray(m.astype(np.uint8)))
            for im, m in zip(images[:k], masks[:k])]
    # force2D=True on a 2-D image would keep only the 0-degree pairs (axis 0 is
    # taken as the out-of-plane axis): plain 2-D extraction is the comparable setting
    ext = featureextractor.RadiomicsFeatureExtractor(binWidth=25)
    ext.disableAllFeatures()
    ext.enableFeatureClassByName("glcm")

    def cls_ref(out=None):
        for a, b in sims:
            cls = rglcm.RadiomicsGLCM(a, b, binWidth=25)
            cls.enableAllFeatures()
            res = cls.execute()
            if out is not None:
                out.append([float(res[f]) for f in PYRADIOMICS_FEATURES])

    def ext_ref(out=None):
        for a, b in sims:
            res = ext.execute(a, b)
            if out is not None:
                out.append([float(res[f"original_glcm_{f}"]) for f in PYRADIOMICS_FEATURES])

    def ours_single():
        for im, m in zip(images, masks):
            glcm_features([im], [m], features="pyradiomics")

    glcm_features(images[:1], masks[:1], features="pyradiomics")  # warm-up
    cls_ref()
    (t_ours, t_single, t_cls, t_ext), (c_ours, _, c_cls, c_ext) = best_interleaved(
        [lambda: glcm_features(images, masks, features="pyradiomics"), ours_single, cls_ref, ext_ref], repeats,
        cpu=True)
    F = glcm_features(images[:k], masks[:k], features="pyradiomics")
    cls_rows, ext_rows = [], []
    cls_ref(cls_rows)
    ext_ref(ext_rows)
    t_ours, t_single, t_cls, t_ext = t_ours / n, t_single / n, t_cls / k, t_ext / k
    d_cls, d_ext = rel_diff(F, cls_rows), rel_diff(F, ext_rows)
    rows.append(("glcm 24 features, mask", "pyradiomics RadiomicsGLCM", t_ours, t_cls, d_cls))
    rows.append(("glcm 24 features, mask", "pyradiomics FeatureExtractor", t_ours, t_ext, d_ext))
    rows.append(("glcm (one image per call)", "pyradiomics RadiomicsGLCM", t_single, t_cls, d_cls))
    notes.append(f"glcm vs pyradiomics, same run: {t_cls / t_ours:.1f}x the RadiomicsGLCM class, "
                 f"{t_ext / t_ours:.1f}x the RadiomicsFeatureExtractor (one image per call: "
                 f"{t_cls / t_single:.1f}x / {t_ext / t_single:.1f}x); in CPU time: "
                 f"{c_cls / c_ours:.1f}x / {c_ext / c_ours:.1f}x ({c_ours * 1e3 / n:.2f} ms per image)")
    stages = glcm_stages(images, masks, repeats)
    notes.append("glcm steps (ms per image): " + "; ".join(f"{name} {t * 1e3:.3f}" for name, t in stages))
    return rows, notes


def bench_pyradiomics_classes(images, masks, k: int, repeats: int, classes, ours=None, suffix="", reference=None):
    """Rows of featurekit families vs pyradiomics' class and its extractor (that class only), bin
    width 25, the lesion mask, all timed in turn on the same images.

    ``classes``: ``(family, pyradiomics module, class name, pyradiomics' class key)`` tuples.
    ``ours``: the same images as featurekit is given them, when not ``images`` (e.g. 8-bit
    arrays, which pyradiomics' binning cannot take: its bin edges overflow in uint8);
    ``suffix`` marks those rows. ``reference``: another featurekit's ``handcrafted`` module
    (:func:`load_reference`), timed in turn with the others: a row "(before)" per family.
    """
    ours = images if ours is None else ours
    import importlib

    from featurekit.handcrafted import FAMILIES

    n = len(images)
    rows, notes = [], []
    try:
        import SimpleITK as sitk
        from radiomics import featureextractor
    except ImportError:
        rows.append(("/".join(c[0] for c in classes), "pyradiomics (not installed)", float("nan"), float("nan"),
                     float("nan")))
        return rows, notes
    logging.getLogger("radiomics").setLevel(logging.ERROR)
    sims = [(sitk.GetImageFromArray(im), sitk.GetImageFromArray(m.astype(np.uint8)))
            for im, m in zip(images[:k], masks[:k])]
    for family, module, class_name, key in classes:
        est = FAMILIES[family]()
        names = [name.split("_", 1)[1] for name in est.get_feature_names_out()]
        klass = getattr(importlib.import_module(f"radiomics.{module}"), class_name)
        ext = featureextractor.RadiomicsFeatureExtractor(binWidth=25)
        ext.disableAllFeatures()
        ext.enableFeatureClassByName(key)

        def cls_ref(out=None, klass=klass, names=names):
            for a, b in sims:
                cls = klass(a, b, binWidth=25)
                cls.enableAllFeatures()
                res = cls.execute()
                if out is not None:
                    out.append([float(res[f]) for f in names])

        def ext_ref(out=None, ext=ext, key=key, names=names):
            for a, b in sims:
                res = ext.execute(a, b)
                if out is not None:
                    out.append([float(res[f"original_{key}_{f}"]) for f in names])

        est.featurize(ours[:1], masks[:1])  # warm-up (imports)
        cls_ref()
        fns = [lambda est=est: est.featurize(ours, masks), cls_ref, ext_ref]
        if reference is not None:
            old = reference.FAMILIES[family]()
            old.featurize(ours[:1], masks[:1])
            fns.append(lambda old=old: old.featurize(ours, masks))
        times, cpu = best_interleaved(fns, repeats, cpu=True)
        (t_ours, t_cls, t_ext), (c_ours, c_cls, c_ext) = times[:3], cpu[:3]
        F = est.featurize(ours[:k], masks[:k]).astype(np.float64)  # float32, as cached
        cls_rows, ext_rows = [], []
        cls_ref(cls_rows)
        ext_ref(ext_rows)
        t_ours, t_cls, t_ext = t_ours / n, t_cls / k, t_ext / k
        label = f"{family} {len(names)} features, mask{suffix}"
        rows.append((label, f"pyradiomics {class_name}", t_ours, t_cls, rel_diff(F, cls_rows)))
        rows.append((label, "pyradiomics FeatureExtractor", t_ours, t_ext, rel_diff(F, ext_rows)))
        notes.append(f"{family}{suffix} vs pyradiomics, same run: {t_cls / t_ours:.1f}x the class, "
                     f"{t_ext / t_ours:.1f}x the extractor; in CPU time: {c_cls * n / (c_ours * k):.1f}x / "
                     f"{c_ext * n / (c_ours * k):.1f}x ({c_ours * 1e3 / n:.2f} ms per image)")
        if reference is not None:
            t_old, c_old = times[3] / n, cpu[3]
            F_old = old.featurize(ours[:k], masks[:k]).astype(np.float64)
            rows.append((f"{label} (before)", f"pyradiomics {class_name}", t_old, t_cls, rel_diff(F_old, cls_rows)))
            notes.append(f"{family}{suffix} before: {t_cls / t_old:.1f}x the class ({c_cls * n / (c_old * k):.1f}x in "
                         f"CPU time, {c_old * 1e3 / n:.2f} ms per image); after / before: {t_old / t_ours:.2f}x "
                         f"faster ({c_old / c_ours:.2f}x in CPU time)")
    return rows, notes


def bench_lbp(images, masks, k: int, repeats: int):
    """LBP row: radii 1, 2, 3 (8, 16, 24 points) histograms over the lesion mask vs skimage's
    local_binary_pattern('uniform') on each whole image, then the same histogram."""
    import warnings

    from skimage.feature import local_binary_pattern

    from featurekit.handcrafted import lbp_features

    n = len(images)

    def ref(out=None):
        for img, m in zip(images[:k], masks[:k]):
            row = []
            for R, P in ((1, 8), (2, 16), (3, 24)):
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", UserWarning)  # skimage's note on float images
                    codes = local_binary_pattern(img, P, R, method="uniform")
                row.extend(np.bincount(codes[m].astype(int), minlength=P + 2) / m.sum())
            if out is not None:
                out.append(row)

    lbp_features(images[:1], masks[:1])
    (t_ours, t_ref), (c_ours, c_ref) = best_interleaved([lambda: lbp_features(images, masks), ref], repeats,
                                                        cpu=True)
    ref_rows = []
    ref(ref_rows)
    t_ours, t_ref = t_ours / n, t_ref / k
    rows = [("lbp 54 features (3 radii), mask", "skimage local_binary_pattern", t_ours, t_ref,
             rel_diff(lbp_features(images[:k], masks[:k]), ref_rows))]
    notes = [f"lbp vs skimage (whole image, then the mask's histogram), same run: {t_ref / t_ours:.1f}x; in CPU "
             f"time {c_ref * n / (c_ours * k):.1f}x ({c_ours * 1e3 / n:.2f} ms per image)"]
    return rows, notes


def bench_gabor(images, k: int, repeats: int, n_jobs: int):
    """Gabor rows: 64 features vs ``skimage.filters.gabor`` per filter (float32 and float64 FFT, and
    with ``n_jobs`` joblib workers)."""
    from skimage.filters import gabor as sk_gabor

    from featurekit.handcrafted import gabor_features

    n = len(images)
    rows = []
    gabor_features(images[:1], device="cpu")  # warm-up (imports, FFT plans)
    ours = per_image(lambda: gabor_features(images, device="cpu"), n, repeats)
    ours64 = per_image(lambda: gabor_features(images, device="cpu", dtype="float64"), n, repeats)
    F = gabor_features(images[:k], device="cpu")
    ref_rows = []
    t = time.perf_counter()
    for img in images[:k]:
        row = []
        for f in (0.5, 0.25, 0.125, 0.1):
            for o in range(8):
                re, im = sk_gabor(img, f, o * math.pi / 8)
                mag = np.hypot(re, im)
                row += [mag.mean(), mag.var()]
        ref_rows.append(row)
    ref = (time.perf_counter() - t) / k
    rows.append(("gabor (float32 FFT)", "skimage.filters.gabor", ours, ref, rel_diff(F, ref_rows)))
    rows.append(("gabor (float64 FFT)", "skimage.filters.gabor", ours64, ref,
                 rel_diff(gabor_features(images[:k], device="cpu", dtype="float64"), ref_rows)))
    if n_jobs and n_jobs != 1:
        gabor_features(images, device="cpu", n_jobs=n_jobs)  # warm-up: starts the workers
        par = per_image(lambda: gabor_features(images, device="cpu", n_jobs=n_jobs), n, repeats)
        rows.append((f"gabor (float32, n_jobs={n_jobs})", "skimage.filters.gabor", par, ref,
                     rel_diff(gabor_features(images[:k], device="cpu", n_jobs=n_jobs), ref_rows)))
    return rows


def bench_haar(images, masks, k: int, repeats: int):
    """Haar-like rows: the full and the grid set on the 24 x 24 ROI window (resize excluded and
    included) vs ``skimage.feature.haar_like_feature``, and the ROI resize vs ``skimage.transform.resize``."""
    from skimage.feature import haar_like_feature
    from skimage.transform import integral_image
    from skimage.transform import resize as sk_resize

    from featurekit.handcrafted import haar_feature_coords, haar_features
    from featurekit.handcrafted.haar import _resize

    n = len(images)
    rows = []
    wins = [_resize(img, m, (24, 24)) for img, m in zip(images, masks)]
    for fset in ("full", "grid"):
        haar_features(wins[:1], feature_set=fset)  # warm-up: builds the sparse operator once
        ours = per_image(lambda fset=fset: haar_features(wins, feature_set=fset), n, repeats)
        ours_e2e = per_image(lambda fset=fset: haar_features(images, masks, feature_set=fset), n, repeats)
        F = haar_features(wins[:k], feature_set=fset)
        coord, ftype = haar_feature_coords(24, feature_set=fset).to_skimage()
        kw = {} if fset == "full" else dict(feature_type=ftype, feature_coord=coord)
        ref_rows = []
        t = time.perf_counter()
        for w in wins[:k]:
            ref_rows.append(haar_like_feature(integral_image(w), 0, 0, 24, 24, **kw))
        ref = (time.perf_counter() - t) / k
        diff = float(np.max(np.abs(F - np.array(ref_rows))) / np.abs(np.array(ref_rows)).max())
        label = "all 162,336" if fset == "full" else "grid 2,763"
        rows.append((f"haar {label} (window)", "skimage haar_like_feature", ours, ref, diff))
        rows.append((f"haar {label} (+resize)", "skimage haar_like_feature", ours_e2e, ref, diff))
    crops = []
    for img, m in zip(images, masks):
        r, c = np.flatnonzero(m.any(axis=1)), np.flatnonzero(m.any(axis=0))
        crops.append(img[r[0] : r[-1] + 1, c[0] : c[-1] + 1])
    ours = per_image(lambda: [_resize(cr, None, (24, 24)) for cr in crops], n, repeats)
    t = time.perf_counter()
    ref_wins = [sk_resize(cr, (24, 24), order=1, mode="reflect", anti_aliasing=True, preserve_range=True)
                for cr in crops[:k]]
    ref = (time.perf_counter() - t) / k
    diff = max(float(np.max(np.abs(w - r)) / np.abs(r).max()) for w, r in zip(wins[:k], ref_wins))
    rows.append(("haar ROI resize to 24x24", "skimage.transform.resize", ours, ref, diff))
    return rows


#: the script's groups of rows, in their order (``--only``)
GROUPS = ("gabor", "glcm", "texture", "first", "lbp", "haar")
#: pyradiomics' feature classes compared: (family, pyradiomics module, class name, class key)
TEXTURE = tuple((f, f, f"Radiomics{f.upper()}", f) for f in ("glrlm", "glszm", "gldm", "ngtdm"))
FIRST = (("firstorder", "firstorder", "RadiomicsFirstOrder", "firstorder"),
         ("shape", "shape2D", "RadiomicsShape2D", "shape2D"))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n-images", type=int, default=10, help="BUSI images (default 10)")
    ap.add_argument("--size", type=int, default=256, help="crop side in pixels (default 256)")
    ap.add_argument("--repeats", type=int, default=3, help="featurekit: best of R runs (default 3)")
    ap.add_argument("--ref-images", type=int, default=None,
                    help="run the slow references on the first K images only (default all)")
    ap.add_argument("--threads", type=int, default=None, help="torch intra-op threads (default torch's)")
    ap.add_argument("--n-jobs", type=int, default=2,
                    help="extra Gabor row with this many joblib workers (default 2; 1 = skip)")
    ap.add_argument("--only", default=None, metavar="NAMES",
                    help="comma-separated groups (" + ", ".join(GROUPS) + ") or pyradiomics families ("
                         + ", ".join(f for f, *_ in TEXTURE + FIRST) + "): only those rows (default all)")
    ap.add_argument("--reference", default=None, metavar="DIR",
                    help="another checkout of featurekit (the code before a change): its families are timed "
                         "in turn with these in the pyradiomics comparisons, rows '(before)'")
    ap.add_argument("--smoke", action="store_true",
                    help="the smallest run of every code path, in seconds (what CI runs); its figures mean nothing")
    args = ap.parse_args(argv)
    if args.smoke:
        args.n_images, args.size, args.repeats, args.ref_images = 2, 64, 1, 1
    families = {f for f, *_ in TEXTURE + FIRST}
    only = set(GROUPS) if args.only is None else {v.strip() for v in args.only.split(",") if v.strip()}
    if only - set(GROUPS) - families:
        ap.error(f"--only: unknown {sorted(only - set(GROUPS) - families)}; choose from {GROUPS} or {sorted(families)}")
    picked = only & families  # families named: only those of the pyradiomics comparisons
    texture = [c for c in TEXTURE if "texture" in only or c[0] in picked]
    first = [c for c in FIRST if "first" in only or c[0] in picked]
    reference = load_reference(args.reference) if args.reference else None

    import torch

    if args.threads:
        torch.set_num_threads(args.threads)

    images, masks = load_busi(args.n_images, args.size)
    n = len(images)
    k = min(n, args.ref_images or n)
    rows, notes = [], []
    if "gabor" in only:
        rows += bench_gabor(images, k, args.repeats, args.n_jobs)
    if "glcm" in only:
        glcm_rows, glcm_notes = bench_glcm(images, masks, k, args.repeats)
        rows += glcm_rows
        notes += glcm_notes
    for classes in (texture, first):
        if classes:
            more, more_notes = bench_pyradiomics_classes(images, masks, k, args.repeats, classes, reference=reference)
            rows += more
            notes += more_notes
    ints = [im.astype(np.uint8) for im in images]
    if (texture or first) and all(np.array_equal(a, b) for a, b in zip(ints, images)):  # 8-bit gray, as decoded
        rows8, notes8 = bench_pyradiomics_classes(images, masks, k, args.repeats, texture + first, ours=ints,
                                                  suffix=" u8", reference=reference)
        rows += rows8
        notes += notes8
    if "lbp" in only:
        lbp_rows, lbp_notes = bench_lbp(images, masks, k, args.repeats)
        rows += lbp_rows
        notes += lbp_notes
    if "haar" in only:
        rows += bench_haar(images, masks, k, args.repeats)

    # ---------------------------------------------------------------- report
    print(f"featurekit handcrafted benchmark: {n} BUSI crops {args.size}x{args.size} "
          f"(references on {k}); {os.cpu_count()} CPUs, torch threads {torch.get_num_threads()}, "
          f"load avg {os.getloadavg()[0]:.2f}; {platform.processor() or platform.machine()}")
    head = (f"{'family / setup':<28} {'reference':<30} {'featurekit':>11} {'reference':>11} {'speed-up':>9} "
            f"{'max rel diff':>13}")
    print(head)
    print("-" * len(head))
    for name, refname, a, b, d in rows:
        ratio = b / a if a == a and b == b else float("nan")
        print(f"{name:<28} {refname:<30} {a * 1e3:>8.2f} ms {b * 1e3:>8.1f} ms {ratio:>8.1f}x {d:>13.1e}")
    print("times per image; max rel diff: featurekit vs the reference on the same images "
          "(haar: relative to the largest |feature|)")
    for note in notes:
        print(note)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
