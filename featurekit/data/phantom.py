"""A synthetic, ultrasound-like "phantom" dataset for offline demos and tests.

Each image is a speckled, layered soft-tissue background with one hypoechoic
lesion and its mask. The two classes mimic the BI-RADS ultrasound descriptors
[1]_ [2]_ that separate benign from malignant breast lesions:

============================  ================================  ===================================
cue                           ``benign``                        ``malignant``
============================  ================================  ===================================
margin                        smooth oval, thin bright capsule  lobulated, spiculated, blurred,
                                                                echogenic halo
orientation                   parallel to the skin (wide)       random (often taller than wide)
internal texture              homogeneous, fine speckle         heterogeneous, coarser speckle
posterior features            mild enhancement (brighter)       shadowing (darker)
============================  ================================  ===================================

Every cue is driven by one latent "malignancy" score per image drawn from two
overlapping normal distributions (benign N(-1, 1), malignant N(+1, 1), squashed
to [0, 1]), so the classes overlap on purpose: an ideal observer reaches an
AUC of about 0.92 and texture or CNN features typically 0.8-0.95, never a
trivial 1.0. Generation is deterministic: sample ``k`` of a class depends only
on ``(seed, class, k, size)``, so a smaller ``n_per_class`` gives a prefix of a
larger one.

References
----------
.. [1] Stavros AT, Thickman D, Rapp CL, et al. Solid breast nodules: use of
   sonography to distinguish between benign and malignant lesions.
   Radiology 196 (1995) 123-134.
.. [2] Mendelson EB, Böhm-Vélez M, Berg WA, et al. ACR BI-RADS Ultrasound. In:
   ACR BI-RADS Atlas, 5th ed. American College of Radiology, 2013.
"""

from __future__ import annotations

import io
import json
import os
from pathlib import Path

import numpy as np

from featurekit.data.dataset import Dataset
from featurekit.data.sources import ArrayImages, ArrayMasks
from featurekit.errors import DataError

__all__ = ["make_phantom", "write_phantom", "PHANTOM_CLASSES"]

PHANTOM_CLASSES = ("benign", "malignant")

_LATENT_MEAN = {"benign": -1.0, "malignant": 1.0}
_PARAMS_FILE = "phantom.json"


def _check_args(n_per_class: int, size: int) -> None:
    if int(n_per_class) < 1:
        raise DataError(f"phantom: n_per_class must be >= 1, got {n_per_class}")
    if int(size) < 32:
        raise DataError(f"phantom: size must be >= 32 pixels, got {size}")


def _smooth_noise(rng, shape, sigma) -> np.ndarray:
    """Zero-mean, unit-variance Gaussian-filtered noise."""
    from scipy import ndimage as ndi  # imported only to generate

    f = ndi.gaussian_filter(rng.standard_normal(shape), sigma, mode="wrap")
    return (f - f.mean()) / (f.std() + 1e-12)


def _speckle(rng, shape, grain) -> np.ndarray:
    """Fully developed speckle: magnitude of correlated complex Gaussian noise, mean 1."""
    from scipy import ndimage as ndi  # imported only to generate

    re = ndi.gaussian_filter(rng.standard_normal(shape), grain, mode="wrap")
    im = ndi.gaussian_filter(rng.standard_normal(shape), grain, mode="wrap")
    amp = np.hypot(re, im)
    return amp / amp.mean()


def _lesion_mask(rng, size: int, m: float) -> np.ndarray:
    """Lesion outline: ellipse with lobulation and spicules growing with ``m``."""
    cx, cy = size * (0.5 + rng.uniform(-0.08, 0.08, 2))
    a = size * rng.uniform(0.15, 0.24)
    b = a * rng.uniform(0.55, 0.85)
    tilt = rng.normal(0.0, 0.25 + 1.0 * m)
    yy, xx = np.mgrid[0:size, 0:size] + 0.5
    dx, dy = xx - cx, yy - cy
    phi = np.arctan2(dy, dx)
    rho = np.hypot(dx, dy)
    t = phi - tilt
    r = a * b / np.sqrt((b * np.cos(t)) ** 2 + (a * np.sin(t)) ** 2)
    bump = np.zeros_like(phi)
    for k in range(2, 6):  # lobulation
        bump += (0.015 + 0.09 * m) * rng.uniform(0, 1) / np.sqrt(k) * np.cos(k * phi + rng.uniform(0, 2 * np.pi))
    for k in range(8, 21):  # fine irregularity
        bump += 0.04 * m * rng.standard_normal() / np.sqrt(k) * np.cos(k * phi + rng.uniform(0, 2 * np.pi))
    for _ in range(int(round(4 + 10 * m))):  # spicules
        c = rng.uniform(-np.pi, np.pi)
        d = np.angle(np.exp(1j * (phi - c)))
        bump += 0.45 * m * rng.uniform(0.4, 1.0) * np.exp(-(d / rng.uniform(0.04, 0.08)) ** 2)
    return rho <= r * (1.0 + bump)


def _phantom_image(rng, size: int, latent: float) -> tuple[np.ndarray, np.ndarray]:
    from scipy import ndimage as ndi  # imported only to generate

    m = float(1.0 / (1.0 + np.exp(-1.6 * latent)))
    f = size / 128.0  # geometric scales are defined at 128 px; speckle grain stays in pixels
    shape = (size, size)
    mask = _lesion_mask(rng, size, m)

    # background: tissue layers parallel to the skin + slow echogenicity variation
    rows = np.arange(size)[:, None] / size
    warp = 0.04 * _smooth_noise(rng, shape, size / 8)
    layers = 0.12 * np.sin(2 * np.pi * (rows * rng.uniform(2.0, 4.0) + warp) + rng.uniform(0, 2 * np.pi))
    echo = 0.6 + layers + 0.08 * _smooth_noise(rng, shape, size / 10)

    # lesion: hypoechoic, heterogeneous when malignant, blurred margin when malignant
    soft = ndi.gaussian_filter(mask.astype(float), (0.6 + 1.8 * m) * f)
    inside = rng.uniform(0.22, 0.38) * (1.0 + 0.55 * m * _smooth_noise(rng, shape, (1.5 + 1.5 * m) * f))
    echo = echo * (1 - soft) + np.clip(inside, 0.05, None) * soft
    rim = np.hypot(*np.gradient(ndi.gaussian_filter(mask.astype(float), 0.8 * f)))
    echo += (1 - m) * 0.5 * rim / (rim.max() + 1e-12)  # thin capsule
    halo = ndi.gaussian_filter(ndi.binary_dilation(mask, iterations=max(1, round(3 * f))) & ~mask, 1.5 * f)
    echo += m * 0.25 * halo / (halo.max() + 1e-12)  # echogenic halo

    # posterior enhancement (benign) or shadowing (malignant) below the lesion
    below = np.maximum.accumulate(mask, axis=0) & ~mask
    depth = np.cumsum(below, axis=0) / size
    posterior = ndi.gaussian_filter(below * np.exp(-depth * 3.0), (1.0 * f, 2.5 * f))
    echo *= 1.0 + 0.45 * (0.5 - m) * posterior

    # speckle: finer grain in tissue and benign lesions, coarser in malignant ones
    fine = _speckle(rng, shape, (0.7, 1.4))
    coarse = _speckle(rng, shape, (0.7 * (1 + 0.8 * m), 1.4 * (1 + 0.8 * m)))
    amp = np.clip(echo, 0.01, None) * (fine * (1 - soft) + coarse * soft)
    img = np.log1p(6.0 * amp) / np.log1p(6.0 * 2.5)
    img += 0.02 * rng.standard_normal(shape)
    return np.clip(np.round(img * 255), 0, 255).astype(np.uint8), mask


def _generate(n_per_class: int, size: int, seed: int):
    images, masks, ids, labels = [], [], [], []
    for c, cls in enumerate(PHANTOM_CLASSES):
        for k in range(n_per_class):
            rng = np.random.default_rng([int(seed), c, k, int(size)])
            latent = rng.normal(_LATENT_MEAN[cls], 1.0)
            img, mask = _phantom_image(rng, size, latent)
            images.append(img)
            masks.append(mask)
            ids.append(f"{cls}/{cls} ({k + 1})")
            labels.append(c)
    return np.stack(images), np.stack(masks), ids, labels


def make_phantom(n_per_class: int = 40, size: int = 128, seed: int = 0) -> Dataset:
    """Build the phantom dataset in memory.

    Parameters
    ----------
    n_per_class : int
        Images per class (``benign``, ``malignant``).
    size : int
        Side of the square ``uint8`` gray images, >= 32.
    seed : int
        Seed; the result is a deterministic function of the three arguments.

    Returns
    -------
    Dataset
        ``2 * n_per_class`` samples, ids ``benign/benign (1)``... (the ids
        :func:`load_folder` gives the folder :func:`write_phantom` writes),
        lesion masks, ``positive='malignant'``.
    """
    _check_args(n_per_class, size)
    images, masks, ids, labels = _generate(int(n_per_class), int(size), seed)
    src = f"phantom(n_per_class={n_per_class}, size={size}, seed={seed})"
    return Dataset(
        ids, labels, list(PHANTOM_CLASSES), ArrayImages([images], names=[f"{src}.images"]),
        ArrayMasks([masks], names=[f"{src}.masks"]), positive="malignant", name="phantom", source=src,
    )


def _png_bytes(arr: np.ndarray, bilevel: bool = False) -> bytes:
    from PIL import Image

    im = Image.fromarray(arr.astype(np.uint8) * 255 if bilevel else arr)
    if bilevel:
        im = im.convert("1")
    buf = io.BytesIO()
    im.save(buf, format="PNG")
    return buf.getvalue()


def _write_if_changed(path: Path, data: bytes) -> None:
    if path.is_file() and path.read_bytes() == data:
        return
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def write_phantom(folder, n_per_class: int = 40, size: int = 128, seed: int = 0) -> Path:
    """Write the phantom as a BUSI-style class folder and return the folder.

    Layout: ``folder/benign/benign (1).png`` with ``benign (1)_mask.png``
    (1-bit), same for ``malignant``, plus ``phantom.json`` recording the
    parameters. Idempotent: files already holding the right bytes are left
    untouched, so repeated calls do not change modification times.

    Raises
    ------
    DataError
        ``folder`` already holds a phantom written with other parameters.
    """
    _check_args(n_per_class, size)
    root = Path(folder)
    params = {"generator": "featurekit.data.phantom", "n_per_class": int(n_per_class),
              "size": int(size), "seed": int(seed)}
    params_path = root / _PARAMS_FILE
    if params_path.is_file():
        try:
            old = json.loads(params_path.read_text())
        except ValueError:
            old = None
        if old != params:
            raise DataError(f"{root}: already holds a phantom with other parameters ({old}); "
                            "use another folder")
    images, masks, ids, _ = _generate(int(n_per_class), int(size), seed)
    for cls in PHANTOM_CLASSES:
        (root / cls).mkdir(parents=True, exist_ok=True)
    for sid, img, mask in zip(ids, images, masks):
        _write_if_changed(root / f"{sid}.png", _png_bytes(img))
        _write_if_changed(root / f"{sid}_mask.png", _png_bytes(mask, bilevel=True))
    _write_if_changed(params_path, (json.dumps(params, indent=2) + "\n").encode())
    return root
