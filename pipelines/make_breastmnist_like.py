"""Write a BreastMNIST-like npz from a BUSI folder (study 5 when breastmnist.npz cannot be downloaded).

BreastMNIST (MedMNIST v2) *is* BUSI: its 780 images resized to 28 x 28, label 0 = malignant and
1 = normal or benign, split 546 / 78 / 156 (train / val / test). This script rebuilds that from the BUSI
folder -- whole images squashed to SIZE x SIZE with an antialiased bilinear resize, a stratified random
7 : 1 : 2 split under a fixed seed -- so it is the same kind of data, not MedMNIST's exact images or split.

    python pipelines/make_breastmnist_like.py ../shared/data/busi busi28.npz
    featurekit run breastmnist_resnet18 --set breastmnist=busi28.npz
"""

from __future__ import annotations

import argparse

import numpy as np
from PIL import Image
from sklearn.model_selection import train_test_split

from featurekit.data import load_dataset
from featurekit.imageio import to_gray, to_unit_float


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("busi", help="BUSI folder (benign/, malignant/, normal/)")
    p.add_argument("out", help="the .npz to write")
    p.add_argument("--size", type=int, default=28)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)

    ds = load_dataset(args.busi, classes=["malignant", "benign", "normal"])
    labels = np.where(np.asarray(ds.labels) == 0, 0, 1)  # 0 malignant, 1 normal or benign
    images = []
    for i in range(len(ds)):
        unit = to_unit_float(ds.image(i))
        gray = to_gray(unit) if unit.ndim == 3 else unit
        img = Image.fromarray(np.round(gray * 255).astype(np.uint8))
        images.append(np.asarray(img.resize((args.size, args.size), Image.BILINEAR, reducing_gap=None)))
    images = np.stack(images)
    idx = np.arange(len(ds))
    rest, test = train_test_split(idx, test_size=0.2, stratify=labels, random_state=args.seed)
    train, val = train_test_split(rest, test_size=0.125, stratify=labels[rest], random_state=args.seed)
    arrays = {}
    for name, rows in (("train", train), ("val", val), ("test", test)):
        rows = np.sort(rows)
        arrays[f"{name}_images"] = images[rows]
        arrays[f"{name}_labels"] = labels[rows][:, None].astype(np.uint8)
    np.savez_compressed(args.out, **arrays)
    print(f"{args.out}: " + ", ".join(f"{n} {len(arrays[f'{n}_labels'])}" for n in ("train", "val", "test"))
          + f" ({args.size} px; label 0 = malignant: {int(np.sum(labels == 0))} images)")


if __name__ == "__main__":
    main()
