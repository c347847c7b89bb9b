"""The CLI's recommender defaults against Surprise, on the SAME seeded splits (a random 20% of each user's ratings held
out), in one run. Ours are trained by `train_recommender` with `RecConfig()` defaults (what `lepton-nb train --task
recsys` uses); Surprise's models with theirs. Mean ± std over the splits.

- RCdata (shared data): our bias baseline, MF and hybrid against Surprise's BaselineOnly, SVD and SVD++: RMSE and MAE
  (predictions clipped to the 0-2 scale, every test row), NDCG@10 / Recall@10 (full ranking over every catalogue item
  the user has not rated in training, the same `evaluate_ranking` and id maps for all; Surprise's unclipped estimates
  are the scores).
- MovieLens 100K (`--movielens PATH`: GroupLens's `u.data`, or a `ratings.csv`; not in the shared data, its licence
  forbids redistribution): explicit RMSE/MAE of our bias and MF against Surprise's SVD and SVD++, and implicit NDCG@10 /
  Recall@10 of our implicit default (ALS, ratings ignored) against popularity on the same held-out pairs.
  Last line: `rc_mf_rmse=<x> rc_svdpp_rmse=<x> ml_mf_rmse=<x> ml_svdpp_rmse=<x> ml_als_ndcg10=<x> ml_pop_ndcg10=<x>`.

Surprise is only needed here: it is in the `dev` extra, or `pip install scikit-surprise` (PyPI has a prebuilt wheel
for CPython 3.11 on x86-64 Linux; elsewhere it compiles: `pip install numpy cython` then
`pip install scikit-surprise --no-build-isolation`).

    python bench/recsys_surprise.py             # full RCdata, 5 splits (about a minute)
    python bench/recsys_surprise.py --quick     # the shipped sample, 2 splits
    python bench/recsys_surprise.py --movielens ~/data/ml-100k/u.data   # RCdata and MovieLens 100K (a few minutes)
"""
import argparse, json, tempfile, time, warnings
from pathlib import Path
import numpy as np, pandas as pd, torch

from lepton_nb.data.recsys import load_rcdata, random_holdout, IdMap, encode_interactions, load_interactions, validate_interactions
from lepton_nb.models.recsys import evaluate_ranking, RecConfig
from lepton_nb.evaluate.metrics import regression_metrics
from lepton_nb.tasks.recsys import train_recommender
from recsys_bench import md

COLS = ['rmse', 'mae', 'ndcg@10', 'recall@10', 'fit_s']
ML_COLS = ['rmse', 'mae', 'ndcg@10', 'recall@10', 'fit_s']

def surprise_algos(seed:int) -> dict:
    "Surprise's models with their default settings (seeded)."
    from surprise import BaselineOnly, SVD, SVDpp
    return {'surprise BaselineOnly': BaselineOnly(verbose=False), 'surprise SVD': SVD(random_state=seed),
            'surprise SVD++': SVDpp(random_state=seed, cache_ratings=True)}

def fit_surprise(algo, tr:pd.DataFrame, te:pd.DataFrame, users:IdMap, items:IdMap, scale=(0, 2), rank:bool=True) -> dict:
    "Fit a Surprise model on `tr`; rating metrics on `te` and (`rank`) ranking metrics from its scores of every (user, item)."
    from surprise import Dataset, Reader
    t = time.perf_counter()
    algo.fit(Dataset.load_from_df(tr[['user', 'item', 'rating']], Reader(rating_scale=scale)).build_full_trainset())
    fit_s = time.perf_counter() - t
    pred = np.array([algo.predict(a, b).est for a, b in zip(te.user, te.item)])                 # clipped to the scale
    out = {k: v for k, v in regression_metrics(te.rating.to_numpy(), pred).items() if k in ('rmse', 'mae')}
    if not rank: return {**out, 'fit_s': fit_s}
    S = np.array([[algo.predict(a, b, clip=False).est for b in items.keys] for a in users.keys], np.float32)  # (U, I)
    out.update(evaluate_ranking(S, np.eye(len(items), dtype=np.float32), encode_interactions(tr, users, items),
                                encode_interactions(te, users, items)))
    return {**out, 'fit_s': fit_s}

def mean_std(runs:list[dict], cols=COLS) -> dict:
    "'mean ± std' of each column over the splits."
    d = pd.DataFrame(runs).reindex(columns=cols)
    return {c: f'{d[c].mean():.4f} ± {d[c].std(ddof=1):.4f}' if len(d) > 1 else f'{d[c].mean():.4f}' for c in cols}

def ours(tr, te, path, rating_col='rating', **kw) -> dict:
    "Train with the CLI's defaults; test metrics, fit seconds (the Learner's, including the three fits `choose_reg` makes) and the reg chosen."
    p, m = train_recommender(tr, path, 'user', 'item', rating_col, test=te, text_method='minilm', **kw)
    t = json.loads((p/'manifest.json').read_text())['training']
    return {**m, 'fit_s': t['train_seconds'], 'reg': t.get('reg')}

def movielens(path, seeds) -> tuple[str, dict]:
    "Explicit (bias, MF vs SVD, SVD++) and implicit (ALS vs popularity) on MovieLens splits."
    layout = 'movielens-csv' if str(path).endswith('.csv') else 'movielens-100k'
    df, _ = validate_interactions(load_interactions(path, layout=layout), warn=False)
    df = df.drop(columns='timestamp')                       # a random split, as in Surprise's benchmarks
    runs, out = {}, Path(tempfile.mkdtemp())
    for s in seeds:
        tr, te = random_holdout(df, 0.2, seed=s)
        users, items = IdMap(tr.user), IdMap(tr.item)
        for kind in ('bias', 'mf'): runs.setdefault(f'lepton_nb {kind}', []).append(ours(tr, te, out/f'ml_{kind}', model=kind, cfg=RecConfig(seed=s)))
        for name, algo in list(surprise_algos(s).items())[1:]:
            runs.setdefault(name, []).append(fit_surprise(algo, tr, te, users, items, (1, 5), rank=False))
        for kind in ('popularity', 'als'):   # implicit: every rated pair is an interaction; model=None picks als
            runs.setdefault(f'lepton_nb {kind} (implicit)', []).append(
                ours(tr.drop(columns='rating'), te.drop(columns='rating'), out/f'ml_{kind}', None, model=None if kind == 'als' else kind, cfg=RecConfig(seed=s)))
        print(f'MovieLens split {s} done', flush=True)
    info = f"{len(df)} ratings (1-5), {df.user.nunique()} users, {df.item.nunique()} movies ({Path(path).name}); {len(seeds)} splits (seeds {list(seeds)})"
    return info, runs

if __name__ == '__main__':
    ap = argparse.ArgumentParser(); ap.add_argument('--quick', action='store_true'); ap.add_argument('--seeds', type=int, default=5)
    ap.add_argument('--movielens', help="MovieLens u.data (100K) or ratings.csv")
    a = ap.parse_args(); torch.set_num_threads(1); warnings.simplefilter('ignore')
    seeds = range(2 if a.quick else a.seeds)
    df, items_tab = load_rcdata(sample=a.quick)
    it, out, runs, t0 = items_tab.reset_index(), Path(tempfile.mkdtemp()), {}, time.perf_counter()
    for s in seeds:
        tr, te = random_holdout(df, 0.2, seed=s)
        users, items = IdMap(tr.user), IdMap(list(tr.item) + list(items_tab.index))   # the maps train_recommender builds
        for kind in ('bias', 'mf', 'hybrid'):
            runs.setdefault(f'lepton_nb {kind}', []).append(ours(tr, te, out/f'{kind}_{s}', items=it, item_id_col='id', item_text_col='text',
                                                                 model=kind, cfg=RecConfig(seed=s)))
        for name, algo in surprise_algos(s).items():
            runs.setdefault(name, []).append(fit_surprise(algo, tr, te, users, items))
        print(f'split {s} done ({time.perf_counter() - t0:.0f} s)', flush=True)
    import surprise
    print(f"\n## RCdata: lepton_nb against Surprise {surprise.__version__}\n\n{len(df)} ratings, {df.user.nunique()} users, "
          f"{df.item.nunique()} restaurants; {len(seeds)} splits (seeds {list(seeds)}), mean ± std\n")
    print(md(pd.DataFrame({k: mean_std(v) for k, v in runs.items()}).T[COLS]))
    regs = lambda rs: sorted({r['reg'] for r in rs if r.get('reg') is not None})
    print(f"\nreg chosen on held-out ratings: mf {regs(runs['lepton_nb mf'])}, bias {regs(runs['lepton_nb bias'])}")
    mean = lambda rs, k: float(np.mean([r[k] for r in rs]))
    keys = {'rc_mf_rmse': mean(runs['lepton_nb mf'], 'rmse'), 'rc_svdpp_rmse': mean(runs['surprise SVD++'], 'rmse')}
    if a.movielens:
        info, ml = movielens(a.movielens, seeds)
        print(f"\n## MovieLens: lepton_nb against Surprise {surprise.__version__}\n\n{info}, mean ± std\n")
        print(md(pd.DataFrame({k: mean_std(v, ML_COLS) for k, v in ml.items()}).T[ML_COLS]))
        print(f"\nreg chosen on held-out ratings: mf {regs(ml['lepton_nb mf'])}, bias {regs(ml['lepton_nb bias'])}")
        keys.update(ml_mf_rmse=mean(ml['lepton_nb mf'], 'rmse'), ml_svdpp_rmse=mean(ml['surprise SVD++'], 'rmse'),
                    ml_als_ndcg10=mean(ml['lepton_nb als (implicit)'], 'ndcg@10'), ml_pop_ndcg10=mean(ml['lepton_nb popularity (implicit)'], 'ndcg@10'))
    print(f"\ntotal {time.perf_counter() - t0:.0f} s")
    print(' '.join(f'{k}={v:.4f}' for k, v in keys.items()))
