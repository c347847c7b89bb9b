"""Batch scoring through a saved tabular bundle vs the bare scikit-learn pipeline inside it.

A gradient-boosting bundle is trained with `train_tabular` on the Taiwan credit-card default file (shared data),
saved, and loaded back with `load_bundle` (hash check included). Its rows are resampled with replacement to
`--rows` (1 000 000) into one DataFrame, and that same DataFrame is scored two ways:

  pipeline   bundle.model.model.pipeline.predict_proba(df)[:, 1]   the fitted scikit-learn pipeline, nothing else
  bundle     bundle.model.predict_proba(df)                         TabularPredictor's batch path: checks every row
                                                                    against the schema and the training profile
                                                                    (columns, numbers, ranges, unseen categories),
                                                                    then the same pipeline, then the calibrator
The row checks and the calibrator are also timed alone, as a cross-check of the difference.

Both are timed `--repeats` times, interleaved (the order alternates), with `--threads` BLAS/OpenMP threads (1 by
default, so that one process's CPU time is the work done); the fastest run of each is kept. On a machine shared with
other jobs, wall time mostly measures the other jobs, so the overhead is computed from the process's CPU seconds:
    overhead = bundle CPU seconds / pipeline CPU seconds - 1
(wall seconds are printed as well).
The uncalibrated bundle scores must equal the pipeline's exactly (checked). `--model lr` benches logistic
regression instead of gradient boosting.

Run:  PYTHONPATH=/work/main python bench/tabular_score.py [--rows 1000000 --repeats 3 --model gbm]
The last line is `overhead=<x>`.
"""
from __future__ import annotations
import argparse, os, platform, tempfile, time, warnings
from pathlib import Path
import numpy as np


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('--rows', type=int, default=1_000_000)
    ap.add_argument('--repeats', type=int, default=3)
    ap.add_argument('--model', default='gbm', choices=['gbm', 'lr'])
    ap.add_argument('--threads', type=int, default=1, help='BLAS/OpenMP threads for both paths (1: OpenMP spin-waits badly on a shared machine)')
    a = ap.parse_args()
    from threadpoolctl import threadpool_limits
    _limits = threadpool_limits(a.threads)  # kept for the whole run
    from lepton_nb.core import data_path
    from lepton_nb.data.tabular import read_table, TabularWarning
    from lepton_nb.deploy.bundle import load_bundle
    from lepton_nb.tasks.tabular import train_tabular, TabularTrainConfig
    src = data_path('taiwan_credit_default')/'UCI_Credit_Card.csv'
    out = Path(tempfile.mkdtemp())/f'taiwan_{a.model}'
    t0 = time.time()
    path, met = train_tabular(src, out, 'defaulted', TabularTrainConfig(model=a.model, n_boot=200))
    print(f"trained {a.model} on {src.name} in {time.time() - t0:.1f}s: test roc_auc {met['roc_auc']:.4f}, ece {met['ece']:.4f}")
    pred = load_bundle(path).model
    pipe = pred.model.pipeline
    df = read_table(src)
    big = df.sample(a.rows, replace=True, random_state=0).reset_index(drop=True)
    print(f"scoring {len(big):,} rows x {big.shape[1]} columns ({big.memory_usage(deep=True).sum() / 2**20:.0f} MiB), "
          f"{len(pred.schema.numeric)} numeric + {len(pred.schema.categorical)} categorical features, calibrator {pred.calibrator!r}")
    times, cpu = {'pipeline': [], 'bundle': []}, {'pipeline': [], 'bundle': []}
    with warnings.catch_warnings():
        warnings.simplefilter('ignore', TabularWarning)
        run = {'pipeline': lambda: pipe.predict_proba(big)[:, 1], 'bundle': lambda: pred.predict_proba(big)}
        scores = {}
        for r in range(a.repeats):
            for k in (('pipeline', 'bundle') if r % 2 == 0 else ('bundle', 'pipeline')):   # alternate the order
                t, c = time.perf_counter(), time.process_time(); scores[k] = run[k]()
                times[k].append(time.perf_counter() - t); cpu[k].append(time.process_time() - c)
            print(f"  repeat {r + 1}: pipeline {times['pipeline'][-1]:.2f}s ({cpu['pipeline'][-1]:.2f} CPU s)  "
                  f"bundle {times['bundle'][-1]:.2f}s ({cpu['bundle'][-1]:.2f} CPU s)", flush=True)
        p0, p1 = scores["pipeline"], scores["bundle"]
        c = time.process_time(); pred.check(big); check_cpu = time.process_time() - c
        c = time.process_time(); pred.calibrator.transform(p0); cal_cpu = time.process_time() - c
        raw = pred.predict_proba(big.head(20_000), calibrated=False)
    assert np.array_equal(raw, p0[:20_000]), 'the bundle must score exactly like its pipeline'
    assert np.allclose(p1, np.asarray(pred.calibrator.transform(p0))), 'calibrated scores differ'
    best, bcpu = {k: min(v) for k, v in times.items()}, {k: min(v) for k, v in cpu.items()}
    ov_cpu, ov_wall = bcpu['bundle'] / bcpu['pipeline'] - 1, best['bundle'] / best['pipeline'] - 1
    print(f"\n| path | best of {a.repeats}, CPU (s) | best of {a.repeats}, wall (s) | rows per CPU second |\n|---|---|---|---|")
    for k in best: print(f"| {k} | {bcpu[k]:.2f} | {best[k]:.2f} | {len(big) / bcpu[k]:,.0f} |")
    print(f"\nthe bundle's own steps, timed alone (CPU s): row checks {check_cpu:.2f}, calibrator {cal_cpu:.2f} "
          f"= {(check_cpu + cal_cpu) / bcpu['pipeline']:.3f} of the pipeline's time")
    print(f"overhead in wall seconds: {ov_wall:.3f} (the machine's other jobs dominate it: see the CPU/wall ratio)")
    print(f"machine: {platform.machine()}, {os.cpu_count()} logical CPUs, python {platform.python_version()}, {a.threads} thread(s), model {a.model}")
    print(f"overhead={ov_cpu:.3f}")


if __name__ == "__main__": main()
