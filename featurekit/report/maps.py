"""Where each layer looks, in the report: the lesion-energy curve beside the AUC, its table, example maps.

``featurekit explain RUN DATA`` writes two files into the run folder, read
here (no torch, no images: the report still reads only the run folder):

``lesion_energy.csv``
    One row per (model, layer, map kind, class) with
    :data:`~featurekit.evaluation.stats.lesion_energy.ENERGY_COLUMNS`: the mean share
    of the maps' positive energy inside the lesion, its bootstrap interval
    over the independent unit, and the chance level (the mean lesion area
    fraction, what a map blind to the lesion scores).
``explain_examples_<kind>.npz``
    The example panel of one map kind: ``images`` (K, S, S) gray in [0, 1] and ``masks``
    (K, S, S) as the model sees them, ``maps`` (L, K, s, s) on a common grid,
    ``layers`` (L,), ``ids``, ``classes``, ``correct`` (K,), ``kind``. Plain
    arrays, read with ``allow_pickle=False``.

Probe maps are oriented to each image's own class (the map for positive-class
images, its negative for the others), so the score is the share of the
evidence *for the class the image belongs to* that lies on the lesion; a
channel-mean map is used as it is.
"""

from __future__ import annotations

import io
import os
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import pandas as pd

from featurekit.evaluation.stats.lesion_energy import energy_summary, lesion_energy
from featurekit.io import atomic_write_bytes, atomic_write_text

__all__ = ["ENERGY_CSV", "EXAMPLES_NPZ", "energy_table", "pick_examples", "write_explain", "maps_items"]

ENERGY_CSV = "lesion_energy.csv"
EXAMPLES_NPZ = "explain_examples_{kind}.npz"


def auc_column(rows: pd.DataFrame) -> str:
    """The AUC a row is ranked by: the pooled out-of-fold estimate, the fold mean where it is missing."""
    return "roc_auc_pooled" if "roc_auc_pooled" in rows and rows["roc_auc_pooled"].notna().any() else "roc_auc"


def oriented(maps: np.ndarray, kind: str, is_positive: np.ndarray) -> np.ndarray:
    """Probe maps as evidence for each image's own class (see the module); mean maps unchanged."""
    if kind != "probe":
        return maps
    sign = np.where(np.asarray(is_positive, bool), 1.0, -1.0)
    return maps * sign[:, None, None]


def energy_table(maps: dict, lesion: dict, layers: Sequence[tuple[str, float]], *, model: str, kind: str,
                 class_names: Sequence[str], labels: np.ndarray, positive: str, groups=None,
                 ids: Sequence[str] | None = None, n_boot: int = 2000, seed: int = 0) -> pd.DataFrame:
    """:func:`~featurekit.evaluation.stats.lesion_energy.energy_summary` of every layer, one table."""
    labels = np.asarray(labels)
    names = np.asarray([class_names[k] if k >= 0 else "" for k in labels], dtype=object)
    pos = names == positive
    parts = []
    for name, index in layers:
        les = lesion[name]
        scores = lesion_energy(oriented(maps[name], kind, pos), les)
        area = np.nanmean(les.reshape(len(les), -1), axis=1) if les.size else np.zeros(0)
        parts.append(energy_summary(scores, names, area, groups=groups, ids=ids, n_boot=n_boot, seed=seed,
                                    model=model, layer=name, layer_index=index, kind=kind))
    return pd.concat(parts, ignore_index=True)


def pick_examples(predictions: pd.DataFrame, feature_set: str, classifier: str, labels: dict[str, str],
                  per_group: int = 1) -> list[tuple[str, bool]]:
    """Example ids of a row's out-of-fold predictions: per class, correctly then wrongly classified.

    The call is the mean score over repeats against the mean per-fold Youden
    threshold (0.5 without one); the most confident of each group is taken.
    Returns ``[(id, correct)]``, classes in ``labels``' order.
    """
    p = predictions[(predictions["feature_set"] == feature_set) & (predictions["classifier"] == classifier)]
    p = p[p["id"].astype(str).isin(labels)]
    if p.empty:
        return []
    thr = p["threshold"] if "threshold" in p.columns else pd.Series(0.5, index=p.index)
    agg = pd.DataFrame({"score": p.groupby("id")["score"].mean(),
                        "threshold": thr.groupby(p["id"]).mean().fillna(0.5),
                        "y": p.groupby("id")["y_true"].first()})
    agg["margin"] = (agg["score"] - agg["threshold"]) * np.where(agg["y"] == 1, 1.0, -1.0)
    out = []
    for cls in dict.fromkeys(labels.values()):
        mine = agg[[labels[str(i)] == cls for i in agg.index]]
        for correct in (True, False):
            part = mine[(mine["margin"] >= 0) == correct]
            part = part.sort_values("margin", ascending=not correct) if correct else part.sort_values("margin")
            out += [(str(i), correct) for i in part.index[:per_group]]
    return out


def write_explain(folder: str | os.PathLike, table: pd.DataFrame, examples: dict | None) -> list[Path]:
    """Write ``lesion_energy.csv`` (rows of other models and kinds already there are kept) and the examples."""
    folder = Path(folder)
    path = folder / ENERGY_CSV
    if path.is_file():
        old = pd.read_csv(path)
        same = old.set_index(["model", "kind"]).index.isin(table.set_index(["model", "kind"]).index)
        table = pd.concat([old[~same], table], ignore_index=True)
    written = [atomic_write_text(path, table.to_csv(index=False))]
    if examples:
        buf = io.BytesIO()
        arrays: dict[str, Any] = {k: np.asarray(v) for k, v in examples.items()}
        np.savez_compressed(buf, **arrays)
        name = EXAMPLES_NPZ.format(kind=str(np.asarray(examples["kind"])))
        written.append(atomic_write_bytes(folder / name, buf.getvalue()))
    return [Path(p) for p in written]


# ---------------------------------------------------------------------------
# report items
# ---------------------------------------------------------------------------


def _energy_figure(energy: pd.DataFrame, results: pd.DataFrame, model: str, kind: str, hand: pd.DataFrame):
    from featurekit.report.figures import Figure, _plt, _png

    plt = _plt()
    e = energy[(energy["model"] == model) & (energy["kind"] == kind)].sort_values("layer_index")
    deep = results[(results["model"] == model) & (results["kind"] == "deep")] if "model" in results else results[:0]
    fig, ax = plt.subplots(figsize=(8, 4))
    ax2 = ax.twinx()
    if not deep.empty:
        auc = auc_column(deep)
        best = deep.groupby("classifier")[auc].mean().idxmax()
        d = deep[deep["classifier"] == best].sort_values("layer_index")
        ax.plot(d["layer_index"], d[auc], "o-", color="#2b6cb0", label=f"ROC AUC ({best})")
        lo, hi = "roc_auc_ci_lo", "roc_auc_ci_hi"  # the interval of the pooled estimate
        if lo in d and d[lo].notna().any():
            ax.fill_between(d["layer_index"], d[lo], d[hi], color="#2b6cb0", alpha=0.15)
    ax.set_xlabel(f"{model} layer index")
    ax.set_ylabel("ROC AUC", color="#2b6cb0")
    palette = iter(["#2f855a", "#c53030", "#6b46c1", "#2c7a7b", "#b7791f"])
    for cls, part in e.groupby("class", sort=False):
        colour = "#c05621" if cls == "all" else next(palette, "#555")
        ax2.plot(part["layer_index"], part["lesion_energy"], "s-" if cls == "all" else "x--", color=colour,
                 label=f"lesion energy ({cls})")
        ax2.plot(part["layer_index"], part["area_fraction"], ":", color=colour, label=f"chance ({cls})")
        if cls == "all":
            ax2.fill_between(part["layer_index"], part["ci_lo"], part["ci_hi"], color=colour, alpha=0.15)
    for (h_model, h_kind), part in hand[hand["class"] == "all"].groupby(["model", "kind"], sort=False):
        ax2.axhline(float(part["lesion_energy"].iloc[0]), color="#718096", ls="-.",
                    label=f"{h_model} {h_kind} (all, whole image)")
    ax2.set_ylabel(f"share of {kind}-map energy on the lesion", color="#c05621")
    ax2.set_ylim(0, 1)
    handles = [h for a in (ax, ax2) for h in a.get_legend_handles_labels()[0]]
    fig.legend(handles, [h.get_label() for h in handles], fontsize=7, loc="upper center", ncol=3,
               bbox_to_anchor=(0.5, 0.0))
    name = f"lesion_energy_{model}_{kind}".replace("/", "_")
    return Figure(name, f"Lesion energy of {model} ({kind} maps)", _png(fig),
                  f"{model}: ROC AUC per layer (left axis, band: 95% CI) and the share of each layer's {kind}-map "
                  "positive energy inside the lesion (right axis, band: 95% bootstrap CI over the independent "
                  "unit; dotted, same colour: the mean lesion area fraction of those images, what a map blind to the "
                  "lesion scores).")


def _energy_table(energy: pd.DataFrame):
    from featurekit.report.tables import Table

    classes = [c for c in dict.fromkeys(energy["class"]) if c != "all"] + ["all"]
    rows = []
    for (model, kind, layer), part in energy.groupby(["model", "kind", "layer"], sort=False):
        by = part.set_index("class")
        cells = [f"{by.loc[c, 'lesion_energy']:.3f} [{by.loc[c, 'ci_lo']:.3f}, {by.loc[c, 'ci_hi']:.3f}] "
                 f"(chance {by.loc[c, 'area_fraction']:.3f})"
                 if c in by.index and np.isfinite(by.loc[c, "lesion_energy"]) else "" for c in classes]
        rows.append([model, layer, kind, *cells, int(by.loc["all", "n"]) if "all" in by.index else 0])
    units = ", ".join(sorted(set(energy["units"].astype(str))))
    return Table(["model", "layer", "map", *[f"lesion energy ({c})" for c in classes], "n"], rows,
                 [f"Share of the map's positive energy inside the lesion, mean over images [95% bootstrap CI over "
                  f"{units}] (chance: the mean lesion area fraction of the same images, a uniform map's score). "
                  "Probe maps count the evidence for each image's own class."])


def _panel_figure(ex) -> object:
    from featurekit.report.figures import Figure, _plt, _png

    plt = _plt()
    images, masks, maps = ex["images"], ex["masks"], ex["maps"]
    layers, classes, correct = ex["layers"], ex["classes"], ex["correct"]
    k, n_layers = len(images), len(layers)
    fig, axes = plt.subplots(k, n_layers + 1, figsize=(1.7 * (n_layers + 1), 1.8 * k), squeeze=False)
    side = images.shape[-1]
    for i in range(k):
        for j in range(n_layers + 1):
            ax = axes[i, j]
            ax.imshow(images[i], cmap="gray", vmin=0, vmax=1, extent=(0, side, side, 0))
            if j:
                m = maps[j - 1, i]
                top = np.nanmax(np.abs(m)) or 1.0
                ax.imshow(np.clip(m / top, 0, 1), cmap="jet", alpha=0.45, vmin=0, vmax=1,
                          extent=(0, side, side, 0), interpolation="bilinear")
            if masks[i].any():
                ax.contour(masks[i], levels=[0.5], colors="w", linewidths=0.8)
            ax.set_xticks([])
            ax.set_yticks([])
            if i == 0:
                ax.set_title("image + lesion" if j == 0 else str(layers[j - 1]), fontsize=7)
            if j == 0:
                ax.set_ylabel(f"{classes[i]}\n{'correct' if correct[i] else 'WRONG'}", fontsize=7)
    kind = str(ex["kind"])
    return Figure(f"maps_panel_{kind}", f"Where each layer looks ({kind} maps)", _png(fig),
                  "Example images of each class, correctly and wrongly classified by the best row (out-of-fold), "
                  f"as the model sees them, with the lesion outline (white) and each layer's {kind} map "
                  "(positive part, scaled per image and layer) overlaid; the same images in every column.")


def maps_items(folders) -> list:
    """Report items of the runs that ``featurekit explain`` has seen (empty list otherwise)."""
    items: list = []
    for folder in folders:
        path = Path(folder.path) / ENERGY_CSV
        if not path.is_file():
            continue
        energy = pd.read_csv(path)
        hand = energy[energy["layer_index"].isna()]  # handcrafted families: one value, a reference line
        for (model, kind), _ in energy[energy["layer_index"].notna()].groupby(["model", "kind"], sort=False):
            items.append(_energy_figure(energy, folder.results, model, kind, hand))
        items.append(_energy_table(energy))
        for npz in sorted(Path(folder.path).glob(EXAMPLES_NPZ.format(kind="*"))):
            with np.load(npz, allow_pickle=False) as ex:
                items.append(_panel_figure({k: ex[k] for k in ex.files}))
    return items
