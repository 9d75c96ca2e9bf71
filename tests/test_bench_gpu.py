"""benchmarks/bench_gpu.py --smoke: every code path of the GPU benchmark, on the CPU, so that it cannot rot."""

import os
import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "bench_gpu.py"


def _run(*args, **env):
    env = {**os.environ, "PYTHONPATH": str(SCRIPT.parents[1]), **env}
    return subprocess.run([sys.executable, str(SCRIPT), *args], capture_output=True, text=True, env=env,
                          timeout=300)


def test_smoke_run_prints_every_row_with_its_ratios():
    out = _run("--smoke")
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert "SMOKE RUN" in lines[0] and "weights none" in out.stdout
    cnn = [line.split() for line in lines if line.startswith("resnet18")]
    assert [row[3] for row in cnn] == ["none", "bf16"]  # one row per autocast precision
    for row in cnn:
        bare, host, device, host_ratio, dev_ratio = map(float, row[4:9])
        assert min(bare, host, device) > 0
        # the ratios are of the printed rates (4 digits)
        assert abs(host_ratio - host / bare) <= 2e-3 * host_ratio + 1e-3
        assert abs(dev_ratio - device / bare) <= 2e-3 * dev_ratio + 1e-3
        decode, prep, workers, busy, dec_ratio = float(row[9]), float(row[10]), int(row[11]), int(row[12]), \
            float(row[13])
        assert 0 < prep <= decode and workers == busy == 1
        assert abs(dec_ratio - decode * busy / bare) <= 0.01 * dec_ratio + 0.006  # decode printed to the unit
        assert row[-1] == "-/-/-"  # no GPU memory on the CPU
    hand = {line.split()[0]: line.split() for line in lines if line.split()[:1] in (["gabor"], ["glcm"], ["haar"])}
    assert sorted(hand) == ["gabor", "glcm", "haar"]
    assert all(row[-1] == "yes" for row in hand.values())


def test_without_a_gpu_the_normal_mode_says_so():
    out = _run("--batch-sizes", "2", CUDA_VISIBLE_DEVICES="")  # no GPU, even on a GPU machine
    assert out.returncode == 2
    assert "no CUDA device here" in out.stderr and "--smoke" in out.stderr
