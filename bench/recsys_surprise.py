"""Explicit ratings against Surprise: our bias baseline, biased MF and hybrid (`train_recommender`) and Surprise's
BaselineOnly, SVD and SVD++ on the SAME RCdata splits (seeded random 20% of each user's ratings held out), in one
run. Reports mean ± std over the splits of RMSE and MAE (predictions clipped to the 0-2 scale, every test row) and
of NDCG@10 / Recall@10 (full ranking over every catalogue item the user has not rated in training, the same
`evaluate_ranking` and the same id maps for all models; Surprise's unclipped estimates are the scores).

Surprise is only needed here: it is in the `dev` extra, or `pip install scikit-surprise` (PyPI has a prebuilt wheel
for CPython 3.11 on x86-64 Linux; elsewhere it compiles: `pip install numpy cython` then
`pip install scikit-surprise --no-build-isolation`).

    python bench/recsys_surprise.py             # full RCdata, 5 splits (about a minute)
    python bench/recsys_surprise.py --quick     # the shipped sample, 2 splits
"""
import argparse, dataclasses, json, tempfile, time, warnings
from pathlib import Path
import numpy as np, pandas as pd, torch

from lepton_nb.data.recsys import load_rcdata, random_holdout, IdMap, encode_interactions
from lepton_nb.models.recsys import evaluate_ranking
from lepton_nb.evaluate.metrics import regression_metrics
from lepton_nb.tasks.recsys import train_recommender
from recsys_bench import RC_CFGS, md

COLS = ['rmse', 'mae', 'ndcg@10', 'recall@10', 'fit_s']

def surprise_algos(seed:int) -> dict:
    "Surprise's models with their default settings (seeded)."
    from surprise import BaselineOnly, SVD, SVDpp
    return {'surprise BaselineOnly': BaselineOnly(verbose=False), 'surprise SVD': SVD(random_state=seed),
            'surprise SVD++': SVDpp(random_state=seed, cache_ratings=True)}

def fit_surprise(algo, tr:pd.DataFrame, te:pd.DataFrame, users:IdMap, items:IdMap, scale=(0, 2)) -> dict:
    "Fit a Surprise model on `tr`; rating metrics on `te` and ranking metrics from its scores of every (user, item)."
    from surprise import Dataset, Reader
    t = time.perf_counter()
    algo.fit(Dataset.load_from_df(tr[['user', 'item', 'rating']], Reader(rating_scale=scale)).build_full_trainset())
    fit_s = time.perf_counter() - t
    pred = np.array([algo.predict(a, b).est for a, b in zip(te.user, te.item)])                 # clipped to the scale
    out = {k: v for k, v in regression_metrics(te.rating.to_numpy(), pred).items() if k in ('rmse', 'mae')}
    S = np.array([[algo.predict(a, b, clip=False).est for b in items.keys] for a in users.keys], np.float32)  # (U, I)
    out.update(evaluate_ranking(S, np.eye(len(items), dtype=np.float32), encode_interactions(tr, users, items),
                                encode_interactions(te, users, items)))
    return {**out, 'fit_s': fit_s}

def mean_std(runs:list[dict]) -> dict:
    "'mean ± std' of each column over the splits."
    d = pd.DataFrame(runs)
    return {c: f'{d[c].mean():.4f} ± {d[c].std(ddof=1):.4f}' if len(d) > 1 else f'{d[c].mean():.4f}' for c in COLS}

if __name__ == '__main__':
    ap = argparse.ArgumentParser(); ap.add_argument('--quick', action='store_true'); ap.add_argument('--seeds', type=int, default=5)
    a = ap.parse_args(); torch.set_num_threads(1); warnings.simplefilter('ignore')
    seeds = range(2 if a.quick else a.seeds)
    df, items_tab = load_rcdata(sample=a.quick)
    it, out, runs, t0 = items_tab.reset_index(), Path(tempfile.mkdtemp()), {}, time.perf_counter()
    for s in seeds:
        tr, te = random_holdout(df, 0.2, seed=s)
        users, items = IdMap(tr.user), IdMap(list(tr.item) + list(items_tab.index))   # the maps train_recommender builds
        for kind in ('bias', 'mf', 'hybrid'):
            path, m = train_recommender(tr, out/f'{kind}_{s}', 'user', 'item', 'rating', items=it, item_id_col='id', item_text_col='text',
                                     model=kind, test=te, cfg=dataclasses.replace(RC_CFGS[kind], seed=s), text_method='minilm')
            fit_s = json.loads((path/'manifest.json').read_text())['training']['train_seconds']   # the Learner's fit alone
            runs.setdefault(f'lepton_nb {kind}', []).append({**m, 'fit_s': fit_s})
        for name, algo in surprise_algos(s).items():
            runs.setdefault(name, []).append(fit_surprise(algo, tr, te, users, items))
        print(f'split {s} done ({time.perf_counter() - t0:.0f} s)', flush=True)
    import surprise
    print(f"\n## RCdata: lepton_nb against Surprise {surprise.__version__}\n\n{len(df)} ratings, {df.user.nunique()} users, "
          f"{df.item.nunique()} restaurants; {len(seeds)} splits (seeds {list(seeds)}), mean ± std\n")
    print(md(pd.DataFrame({k: mean_std(v) for k, v in runs.items()}).T[COLS]))
    print(f"\ntotal {time.perf_counter() - t0:.0f} s")
