"""Per-image class probabilities from a fine-tuned checkpoint (``featurekit predict``)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import numpy as np
import pandas as pd
import torch

from featurekit.checkpoint import load_checkpoint
from featurekit.devices import check_workers
from featurekit.devices import torch_device as resolve_device
from featurekit.finetune.augment import BaseImages, View
from featurekit.finetune.errors import HeadMismatchError
from featurekit.finetune.modeling import quiet_load_model
from featurekit.finetune.training import predict_view
from featurekit.io import atomic_write_text
from featurekit.models.memory import check_memory
from featurekit.models.weights import LoadedModel


@dataclass
class Predictor:
    """A loaded fine-tuned checkpoint: model, preprocessing, class names."""

    loaded: LoadedModel
    class_names: list
    positive: Optional[str]
    path: Path
    small_input: bool = False

    @classmethod
    def load(cls, path) -> "Predictor":
        path = Path(path)
        ckpt = load_checkpoint(path)
        name = ckpt["arch"].get("name") or ckpt["meta"].get("model")
        if not name:
            raise HeadMismatchError(f"checkpoint {path} does not name its model architecture")
        lm = quiet_load_model(name, str(path))
        meta = ckpt["meta"]
        n_out = int(ckpt["arch"].get("num_classes") or 0)
        names = list(meta.get("class_names") or [str(k) for k in range(n_out)])
        if n_out and len(names) != n_out:
            raise HeadMismatchError(f"checkpoint {path} has a {n_out}-class head but lists {len(names)} "
                                    f"class names {names}")
        return cls(lm, names, meta.get("positive"), path, bool(ckpt["arch"].get("small_input", False)))

    def label_mapping(self, dataset) -> np.ndarray:
        """Dataset label -> checkpoint class index; a class the checkpoint does not know is an error."""
        labels = np.asarray(dataset.labels)
        used = sorted(set(labels[labels >= 0].tolist()))
        unknown = [dataset.class_names[k] for k in used if dataset.class_names[k] not in self.class_names]
        if unknown:
            raise HeadMismatchError(
                f"checkpoint {self.path} was trained on classes {self.class_names}; the data has images of "
                f"class(es) {unknown} it cannot predict (select or merge classes with --classes)")
        return np.array([self.class_names.index(c) if c in self.class_names else -1
                         for c in dataset.class_names], dtype=np.int64)

    def predict_proba(self, dataset, batch_size: int = 32, device: str = "auto", amp: bool = True,
                      num_workers: int = 0, progress: bool = False) -> np.ndarray:
        """``(N, K)`` probabilities in checkpoint class order, rows in dataset order."""
        dev = resolve_device(device)
        num_workers = check_workers(num_workers)
        pre = self.loaded.preprocessing
        check_memory(self.loaded.name, pre.size, min(batch_size, max(len(dataset), 1)), dev, channels=pre.channels,
                     small_input=self.small_input)
        base = BaseImages(dataset, self.loaded.preprocessing, cache=False, progress=progress)
        view = View(base, np.arange(len(dataset)), np.zeros(len(dataset), dtype=np.int64))
        model = self.loaded.model.to(dev)
        try:
            probs, _, rows = predict_view(model, view, batch_size, dev, amp, num_workers)
        finally:
            model.to("cpu")
        out = np.empty_like(probs)
        out[rows] = probs
        return out

    def predict(self, dataset, **kw) -> pd.DataFrame:
        """Table ``id, true_label, p_<class>... , predicted``; ``y_true`` (1 = positive) when the
        checkpoint has a positive class and the image a label."""
        mapping = self.label_mapping(dataset)
        probs = self.predict_proba(dataset, **kw)
        labels = np.asarray(dataset.labels)
        true = [self.class_names[mapping[c]] if c >= 0 and mapping[c] >= 0 else "" for c in labels]
        df = pd.DataFrame({"id": dataset.ids, "true_label": true})
        for k, c in enumerate(self.class_names):
            df[f"p_{c}"] = probs[:, k]
        df["predicted"] = [self.class_names[k] for k in probs.argmax(1)] if len(probs) else []
        if self.positive in self.class_names:
            df["y_true"] = [("" if t == "" else int(t == self.positive)) for t in true]
        return df


def predict(checkpoint, dataset, out=None, **kw) -> pd.DataFrame:
    """Predict ``dataset`` with a fine-tuned ``checkpoint``; write the table to ``out`` (CSV) when given."""
    table = Predictor.load(checkpoint).predict(dataset, **kw)
    if out is not None:
        atomic_write_text(out, table.to_csv(index=False))
    return table


@torch.no_grad()
def logits(checkpoint, batch: torch.Tensor) -> torch.Tensor:
    """Raw outputs of a checkpoint's model for an already preprocessed batch (for tests and notebooks)."""
    return Predictor.load(checkpoint).loaded.model.eval()(batch)
