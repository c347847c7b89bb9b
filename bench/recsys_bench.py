"""Recommender benchmark: quality tables on Online Retail (implicit, temporal split, cold new products; popularity, ALS,
BPR, hybrid and the sequential SASRec) and RCdata (explicit ratings), then speed on a generated 1M-interaction set: training throughput (BPR through the
Learner, ALS) and `Recommender.recommend` latency at 100k items. Prints Markdown tables; the last line is
`recommend_p99_ms=<x>`.

    python bench/recsys_bench.py            # everything (several minutes on 2 shared cores)
    python bench/recsys_bench.py --quick    # shipped samples + a 100k-interaction synthetic set
    python bench/recsys_bench.py --skip-speed --models als sasrec   # quality tables only, some Online Retail models
    python bench/recsys_bench.py --skip-speed --models              # the RCdata table only

Surprise's SVD/SVD++ on the same RCdata splits: bench/recsys_surprise.py.
"""
import argparse, json, tempfile, time, warnings
from pathlib import Path
import numpy as np, pandas as pd, torch

from lepton_nb.data.recsys import load_online_retail_interactions, load_rcdata, IdMap
from lepton_nb.models.recsys import RecConfig, fit_recommender
from lepton_nb.models.sequential import SASRecConfig
from lepton_nb.tasks.recsys import train_recommender, Recommender, build_recommender

COLS_IMPLICIT = ['recall@10', 'ndcg@10', 'map@10', 'hit_rate@10', 'coverage', 'cold_recall@10', 'cold_ndcg@10', 'cold_n_users', 'train_s']
COLS_EXPLICIT = ['rmse', 'mae', 'ndcg@10', 'recall@10', 'train_s']

def md(df:pd.DataFrame) -> str:
    "A Markdown table (no tabulate dependency)."
    fmt = lambda v: f'{v:.4g}' if isinstance(v, (float, np.floating)) else str(v)
    lines = ['| | ' + ' | '.join(map(str, df.columns)) + ' |', '|---' * (len(df.columns) + 1) + '|']
    return '\n'.join(lines + ['| ' + str(k) + ' | ' + ' | '.join(fmt(v) for v in r) + ' |' for k, r in zip(df.index, df.values.tolist())])

def table(rows:dict, cols) -> str: return md(pd.DataFrame(rows).T.reindex(columns=cols))

OR_MODELS = ('popularity', 'als', 'bpr', 'hybrid', 'sasrec')

def online_retail(quick, out, models=OR_MODELS):
    df, items = load_online_retail_interactions(sample=quick)
    it, rows = items.reset_index(), {}
    ep = 3 if quick else 10
    for kind, cfg in [('popularity', RecConfig(epochs=3, bs=2048, lr=0.05)),
                      ('als', RecConfig(n_factors=64, als_iters=10)),
                      ('bpr', RecConfig(n_factors=64, epochs=ep, bs=2048, lr=0.01, wd=1e-5)),
                      ('hybrid', RecConfig(n_factors=64, epochs=ep, bs=2048, lr=0.01, wd=1e-5)),
                      ('sasrec', SASRecConfig(epochs=3 if quick else 10, lr=1e-3))]:   # 64 dims, 2 blocks, 50 positions, full softmax
        if kind not in models: continue
        t = time.perf_counter()
        _, m = train_recommender(df, out/f'or_{kind}', 'user', 'item', time_col='timestamp', items=it, item_id_col='id',
                                 item_text_col='text', model=kind, cfg=cfg, text_method='minilm')
        rows[kind] = {**m, 'train_s': time.perf_counter() - t}
    info = f"{len(df)} customer-product pairs, {df.user.nunique()} customers, {df.item.nunique()} products; " \
           f"test: last 20% by first-purchase time, {m['n_users']} known test customers, {m.get('cold_n_items', 0)} new products"
    return info, rows


def rcdata(quick, out):
    df, items = load_rcdata(sample=quick)
    it, rows = items.reset_index(), {}
    for kind in ('bias', 'mf', 'hybrid'):
        t = time.perf_counter()
        _, m = train_recommender(df, out/f'rc_{kind}', 'user', 'item', 'rating', items=it, item_id_col='id', item_text_col='text',
                                 model=kind, cfg=RecConfig(), text_method='minilm')   # the CLI's defaults
        rows[kind] = {**m, 'train_s': time.perf_counter() - t}
    return f"{len(df)} ratings (0-2), {df.user.nunique()} users, {df.item.nunique()} restaurants; random 20% per user held out", rows

def synthetic(n:int, n_users:int, n_items:int, seed=0):
    "Half Zipf-popular, half uniform items: `n` distinct (user, item) pairs."
    rng = np.random.default_rng(seed)
    m = int(n * 1.4)
    u = rng.integers(0, n_users, m)
    i = np.where(rng.random(m) < 0.5, np.minimum(rng.zipf(1.3, m) - 1, n_items - 1), rng.integers(0, n_items, m))
    i = (i * 7919) % n_items                               # spread popular ids over the catalogue
    codes = rng.permutation(np.unique(u.astype(np.int64) * n_items + i))[:n]   # distinct pairs, not biased to low ids
    return (codes // n_items).astype(np.int64), (codes % n_items).astype(np.int64)

def speed(quick):
    n, n_users, n_items = (100_000, 5_000, 100_000) if quick else (1_000_000, 50_000, 100_000)
    u, i = synthetic(n, n_users, n_items)
    res = {'interactions': len(u), 'users': n_users, 'items': n_items}
    t = time.perf_counter()
    m = fit_recommender(RecConfig('bpr', n_factors=32, epochs=1, bs=4096, lr=0.01), u, i, n_users, n_items)
    res['bpr_1_epoch_s'] = time.perf_counter() - t; res['bpr_interactions_per_s'] = len(u) / res['bpr_1_epoch_s']
    t = time.perf_counter()
    fit_recommender(RecConfig('als', n_factors=32, als_iters=3), u, i, n_users, n_items)
    res['als_3_iters_s'] = time.perf_counter() - t
    rec = build_recommender(m, IdMap(map(str, range(n_users))), IdMap(map(str, range(n_items))), u, i, 'bpr', False)
    rng = np.random.default_rng(1); users = rng.integers(0, n_users, 2000).astype(str)
    for x in users[:50]: rec.recommend(x, k=10)                                   # warm up
    lat = []
    for x in users:
        t = time.perf_counter(); rec.recommend(x, k=10); lat.append((time.perf_counter() - t) * 1e3)
    res['recommend_p50_ms'], res['recommend_p99_ms'] = float(np.percentile(lat, 50)), float(np.percentile(lat, 99))
    t = time.perf_counter(); S = rec.uv[:256] @ rec.iv.T; part = np.argpartition(-S, 9, axis=1)[:, :10]
    res['batch256_ms'] = (time.perf_counter() - t) * 1e3
    return res

if __name__ == '__main__':
    ap = argparse.ArgumentParser(); ap.add_argument('--quick', action='store_true'); ap.add_argument('--threads', type=int, default=1)
    ap.add_argument('--skip-quality', action='store_true'); ap.add_argument('--skip-speed', action='store_true')
    ap.add_argument('--models', nargs='*', default=OR_MODELS, choices=OR_MODELS, help='Online Retail models to train (none: skip it)')
    a = ap.parse_args(); torch.set_num_threads(a.threads); warnings.simplefilter('ignore')
    from threadpoolctl import threadpool_limits
    threadpool_limits(a.threads)   # one BLAS thread per serving worker: on a shared CPU more threads only spin
    out = Path(tempfile.mkdtemp())
    if not a.skip_quality:
        if a.models:
            info, rows = online_retail(a.quick, out, a.models)
            print(f"## Online Retail (implicit)\n\n{info}\n\n{table(rows, COLS_IMPLICIT)}\n", flush=True)
        info, rows = rcdata(a.quick, out)
        print(f"## RCdata (explicit)\n\n{info}\n\n{table(rows, COLS_EXPLICIT)}\n", flush=True)
    if a.skip_speed: raise SystemExit
    s = speed(a.quick)
    print("## Speed (generated data, CPU)\n\n" + md(pd.DataFrame({'value': s})) + "\n", flush=True)
    print(f"recommend_p99_ms={s['recommend_p99_ms']:.3f}")
