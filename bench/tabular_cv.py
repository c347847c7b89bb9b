"""5-fold cross-validated ROC-AUC of logistic regression, gradient boosting and TabularNet on two credit datasets.

Datasets (the full shared data, found through LEPTON_DATA or ../shared/data):
  german   Statlog German Credit, 1 000 applicants, 300 bad (`load_german_credit`: target `bad`, 7 numeric +
           13 categorical features; `sex` and `age_group` are protected attributes, not features)
  taiwan   Default of credit card clients, 30 000 card holders, 6 636 defaults (`load_taiwan_default`: target
           `defaulted`, 20 numeric + SEX/EDUCATION/MARRIAGE categorical; `ID` is an id column)

Models, each built by `tabular_model(name, schema, **settings)` with the settings printed in the table (the
library defaults unless `--tuned`), scored by `cross_validate_tabular` (stratified 5-fold, shuffled with seed 0;
every fold fits its own preprocessing on its training rows only):
  lr    one-hot + standardised numbers + logistic regression (C=1)
  gbm   ordinal categories + HistGradientBoosting (150 trees, depth 3, learning rate 0.05)
  net   TabularNet: embeddings + MLP (200, 100), one-cycle schedule, trained by the Learner on the CPU

Run:  PYTHONPATH=/work/main python bench/tabular_cv.py [--datasets german taiwan --models lr gbm net --folds 5]
The last line is `german_gbm_auc=<mean> taiwan_gbm_auc=<mean>`.
"""
from __future__ import annotations
import argparse, os, platform, time, warnings
import numpy as np

SETTINGS = {'lr': {}, 'gbm': {}, 'net': {}}   # the library defaults: what `lepton-nb train --model X` fits
EXPECTED = {('german', 'gbm'): 0.78, ('taiwan', 'gbm'): 0.77}


def load(name):
    from lepton_nb.data.tabular import load_german_credit, load_taiwan_default
    if name == 'german':
        df, schema = load_german_credit()
        if len(df) != 1000: raise SystemExit('The full German Credit data (shared german_credit/german.data) is needed, not the sample.')
        return df, schema
    return load_taiwan_default()


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('--datasets', nargs='+', default=['german', 'taiwan'], choices=['german', 'taiwan'])
    ap.add_argument('--models', nargs='+', default=['lr', 'gbm', 'net'], choices=['lr', 'gbm', 'net'])
    ap.add_argument('--folds', type=int, default=5)
    ap.add_argument('--threads', type=int, default=1, help='torch and BLAS/OpenMP threads (1: OpenMP spin-waits badly on a shared machine)')
    a = ap.parse_args()
    import torch
    from threadpoolctl import threadpool_limits
    from lepton_nb.models.tabular import tabular_model, cross_validate_tabular
    torch.set_num_threads(a.threads); _limits = threadpool_limits(a.threads)
    rows, gbm = [], {}
    for ds in a.datasets:
        df, schema = load(ds)
        y = df[schema.target]
        print(f"{ds}: {len(df):,} rows, {int(y.sum()):,} positives ({y.mean():.1%}), "
              f"{len(schema.numeric)} numeric + {len(schema.categorical)} categorical features", flush=True)
        for m in a.models:
            t0 = time.time()
            with warnings.catch_warnings():
                warnings.simplefilter('ignore')
                s = cross_validate_tabular(tabular_model(m, schema, **SETTINGS[m]), df, folds=a.folds)
            sec = time.time() - t0
            rows.append((ds, m, s.mean(), s.std(), s.min(), sec))
            if m == 'gbm': gbm[ds] = s.mean()
            print(f"  {m:<4} ROC-AUC {s.mean():.4f} ± {s.std():.4f}  folds {np.round(s, 4).tolist()}  {sec:.0f}s", flush=True)
    print(f"\n| dataset | model | ROC-AUC mean | ± std | worst fold | seconds (all folds) |\n|---|---|---|---|---|---|")
    for ds, m, mu, sd, lo, sec in rows: print(f"| {ds} | {m} | {mu:.4f} | {sd:.4f} | {lo:.4f} | {sec:.0f} |")
    for (ds, m), want in EXPECTED.items():
        if ds in gbm: print(f"{ds} gbm {gbm[ds]:.4f} {'>=' if gbm[ds] >= want else '< EXPECTED'} {want}")
    print(f"machine: {platform.machine()}, {os.cpu_count()} logical CPUs, python {platform.python_version()}, torch {torch.__version__}")
    print(' '.join(f"{ds}_gbm_auc={gbm[ds]:.4f}" for ds in ('german', 'taiwan') if ds in gbm))


if __name__ == '__main__': main()
