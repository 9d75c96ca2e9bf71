"""Fine-tuning's training_curves.png marks the epoch whose weights were kept, as the report does."""

import json

from test_finetune_cli import SMALL, write_npz

from featurekit.cli import main
from featurekit.report import figures as report_figures


def test_a_single_run_marks_the_epoch_it_kept(tmp_path, monkeypatch):
    drawn = []
    real = report_figures.draw_training_curves

    def keep(axes, curves, selected=None, metric_label="ROC AUC"):
        drawn.append(dict(selected or {}))
        return real(axes, curves, selected, metric_label)

    monkeypatch.setattr(report_figures, "draw_training_curves", keep)
    npz = write_npz(tmp_path / "small.npz")
    assert main(["finetune", npz, "--positive", "1", *SMALL, "--epochs", "2", "--runs-dir", str(tmp_path),
                 "--name", "one"]) == 0
    kept = json.loads((tmp_path / "one" / "provenance.json").read_text())["metrics"]["best_epoch"]
    assert drawn == [{(0, 0): kept}] and (tmp_path / "one" / "training_curves.png").is_file()
