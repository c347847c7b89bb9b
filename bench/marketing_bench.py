"""Marketing benchmark on the full UCI Online Retail data: the time to build the customer table, next-90-day purchase
(ROC-AUC, PR-AUC) and spend (MAE, Spearman, RMSE) at a later cutoff than the one trained on, the realised profit of a
mailing chosen under a budget against RFM rules and random mailing, and the same defaults on an earlier period through
the command line (`customers` -> `train` -> `evaluate`). Prints Markdown tables; the last line is key=value pairs.

    nice -n 15 python bench/marketing_bench.py            # the shared data (LEPTON_DATA or ../shared/data)
    nice -n 15 python bench/marketing_bench.py --sample   # 1,000 simulated customers (simulate_transactions; a smoke test)
"""
import argparse, json, os, platform, subprocess, tempfile, time, warnings
from pathlib import Path
import numpy as np, pandas as pd, torch
from scipy.stats import spearmanr
from sklearn.metrics import average_precision_score, mean_absolute_error, roc_auc_score

from lepton_nb.core import data_path
from lepton_nb.data.tabular import TabularWarning
from lepton_nb.data.transactions import simulate_transactions, read_transactions, clean_transactions, customer_table, cutoff_range, load_online_retail
from lepton_nb.data.text import sample_path
from lepton_nb.deploy.bundle import load_bundle
from lepton_nb.tasks.marketing import rfm_scores
from lepton_nb.tasks.tabular import TabularTrainConfig
from lepton_nb.tasks.targeting import (CLVBaseline, Campaign, choose_targets, expected_profit, profit_curve,
                                       train_purchase_model, train_spend_model)

HORIZON, MARGIN, COST, BUDGET = 90, 0.3, 5.0, 5000.0
DAY = pd.Timedelta(days=1)

def md(df:pd.DataFrame) -> str:
    "A Markdown table (no tabulate dependency)."
    fmt = lambda v: f'{v:.4g}' if isinstance(v, (float, np.floating)) else str(v)
    lines = ['| | ' + ' | '.join(map(str, df.columns)) + ' |', '|---' * (len(df.columns) + 1) + '|']
    return '\n'.join(lines + ['| ' + str(k) + ' | ' + ' | '.join(fmt(v) for v in r) + ' |' for k, r in zip(df.index, df.values.tolist())])

def build(sample:bool):
    "Read, clean and build the table at the default cutoff, timed (the table three times, best kept)."
    t0 = time.perf_counter(); raw = simulate_transactions(1000, seed=0) if sample else None; lines = read_transactions(raw) if sample else load_online_retail(); t_read = time.perf_counter() - t0
    t0 = time.perf_counter(); clean, rep = clean_transactions(lines); t_clean = time.perf_counter() - t0
    t_table = []
    for _ in range(3):
        t0 = time.perf_counter(); table = customer_table(clean, horizon=HORIZON); t_table.append(time.perf_counter() - t0)
    return lines, clean, rep, {'read_s': t_read, 'clean_s': t_clean, 'table_s': min(t_table), 'customers': len(table),
                               'total_s': t_read + t_clean + min(t_table)}

def purchase(train, test, work):
    "ROC-AUC / PR-AUC at the later cutoff: recency alone, RFM logistic regression, GBM (all features), BG/NBD."
    y, rows, models = test.purchased, {}, {}
    def score(name, s): rows[name] = {'ROC-AUC': roc_auc_score(y, s), 'PR-AUC': average_precision_score(y, s)}
    score('recency alone', -test.recency_days)
    others = tuple(c for c in train.columns[1:] if c not in ('recency_days', 'orders', 'monetary', 'purchased', 'spend'))
    p, _ = train_purchase_model(train, work/'rfm_lr', TabularTrainConfig(model='lr', ignore=others, n_boot=200))
    score('RFM logistic regression', load_bundle(p).model.predict_proba(test))
    t0 = time.perf_counter()
    p, met = train_purchase_model(train, work/'gbm', TabularTrainConfig(n_boot=200))
    models['gbm'] = load_bundle(p).model; score('GBM, all features (default)', models['gbm'].predict_proba(test))
    rows['GBM, all features (default)']['train_s'] = time.perf_counter() - t0
    t0 = time.perf_counter(); clv = CLVBaseline().fit(train); fit_s = time.perf_counter() - t0
    models['clv'] = clv.predict(test, HORIZON)
    score('BG/NBD (MAP)', models['clv'].p_buy); rows['BG/NBD (MAP)']['train_s'] = fit_s
    rows['GBM, all features (default)']['ECE (same-period test split)'] = met['ece']
    return rows, models, clv

def spend(train, test, models, work):
    "MAE / Spearman / RMSE of next-90-day spend for every test customer (0 when not buying)."
    y, rows, fc = test.spend.to_numpy(), {}, {}
    def score(name, f):
        f = np.clip(np.asarray(f, dtype=float), 0, None); fc[name] = f
        rows[name] = {'MAE': mean_absolute_error(y, f), 'Spearman': spearmanr(y, f)[0], 'RMSE': float(np.sqrt(np.mean((y - f) ** 2)))}
    score('last 90 days repeated', test.spend_90d * HORIZON / 90)
    cfg = TabularTrainConfig(n_boot=200)
    p, _ = train_spend_model(train, work/'spend_all', cfg, buyers_only=False)
    score('GBM on all customers (squared error, CLI default)', load_bundle(p).model.predict(test))
    p, _ = train_spend_model(train, work/'spend_pois', TabularTrainConfig(n_boot=200, params={'loss': 'poisson'}), buyers_only=False)
    score('GBM on all customers, Poisson loss (Tweedie p=1)', load_bundle(p).model.predict(test))
    p_buy = models['gbm'].predict_proba(test)
    p, _ = train_spend_model(train, work/'spend_buyers', cfg)
    models['spend_if_buy'] = np.clip(load_bundle(p).model.predict(test), 0, None)
    score('GBM P(buy) × GBM spend if buying (squared error)', p_buy * models['spend_if_buy'])
    p, _ = train_spend_model(train, work/'spend_gamma', TabularTrainConfig(n_boot=200, params={'loss': 'gamma'}))
    score('GBM P(buy) × GBM spend if buying, Gamma loss (Tweedie p=2)', p_buy * load_bundle(p).model.predict(test))
    score('Tweedie GLM p=1.5 on log features (scikit-learn)', tweedie_glm(train, test))
    score('BG/NBD × Gamma-Gamma (MAP)', models['clv'].expected_spend)
    return rows, fc

def tweedie_glm(train, test):
    "A compound Poisson-Gamma GLM (log link) on log1p of the numeric features: the Tweedie objective HistGB lacks."
    from sklearn.linear_model import TweedieRegressor
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import FunctionTransformer, StandardScaler
    from sklearn.impute import SimpleImputer
    num = [c for c in train.columns[1:] if c not in ('purchased', 'spend', 'country') and pd.api.types.is_numeric_dtype(train[c])]
    m = make_pipeline(SimpleImputer(), FunctionTransformer(lambda x: np.log1p(np.clip(x, 0, None))), StandardScaler(),
                      TweedieRegressor(power=1.5, link='log', alpha=1e-3, max_iter=1000))
    return m.fit(train[num], train.spend).predict(test[num])

def profit(test, models, fc):
    "Realised profit of mailing the chosen N (expected profit > 0, within the budget) by each strategy."
    camp = Campaign(MARGIN, COST, BUDGET)
    ep = expected_profit(models['gbm'].predict_proba(test), models['spend_if_buy'], camp)
    n = choose_targets(test, ep, camp).attrs['n']
    rfm = rfm_scores(test)
    y = test.spend.to_numpy()
    at = lambda s: float(profit_curve(y, s, camp).loc[n])
    rows = {'model: expected profit (GBM P(buy) × GBM spend if buying)': at(ep), 'BG/NBD × Gamma-Gamma expected spend': at(models['clv'].expected_spend),
            'RFM rule: top N by R+F+M score': at(rfm.rfm_score), 'last 90 days spend': at(test.spend_90d),
            'random N (expected)': n * (MARGIN * y.mean() - COST)}
    grid = rfm.rfm_segment.isin(['champions', 'loyal customers']).to_numpy()
    grid_rows = {'RFM segments rule: champions + loyal customers': (int(grid.sum()), float((MARGIN * y[grid] - COST).sum())),
                 'model, same number of customers': (int(grid.sum()), float(profit_curve(y, ep, camp).loc[int(grid.sum())]))}
    return n, {k: {'N': n, 'realised profit £': v, 'vs random': v / rows['random N (expected)']} for k, v in rows.items()}, grid_rows

def cli_period(lines_file, c1, c2, work, sample:bool):
    "customers (train at c1, test at c2) -> train (tabular, regression) -> evaluate --json, with the CLI defaults."
    run = lambda *a: subprocess.run(['lepton-nb', *map(str, a)], capture_output=True, text=True, check=True).stdout
    out = {}
    for tag, c in (('train', c1), ('test', c2)):
        out[tag] = json.loads(run('customers', '--data', lines_file, '--customer-col', 'CustomerID', '--invoice-col', 'InvoiceNo',
                                  '--date-col', 'InvoiceDate', '--quantity-col', 'Quantity', '--price-col', 'UnitPrice',
                                  '--product-col', 'StockCode', '--cutoff', c, '--horizon', HORIZON, '--out', work/f'{tag}_{c}.csv', '--json'))
    model = [] if not sample else ['--model', 'lr']
    run('train', '--task', 'tabular', '--data', work/f'train_{c1}.csv', '--target', 'purchased', '--ignore', 'CustomerID', 'spend',
        *model, '--out', work/f'buy_{c1}', '--json')
    run('train', '--task', 'regression', '--data', work/f'train_{c1}.csv', '--target', 'spend', '--ignore', 'CustomerID', 'purchased',
        *model, '--out', work/f'spend_{c1}', '--json')
    b = json.loads(run('evaluate', work/f'buy_{c1}', '--data', work/f'test_{c2}.csv', '--json'))
    s = json.loads(run('evaluate', work/f'spend_{c1}', '--data', work/f'test_{c2}.csv', '--json'))
    test = pd.read_csv(work/f'test_{c2}.csv')
    return {'train cutoff': c1, 'test cutoff': c2, 'train customers': out['train']['customers'], 'test customers': out['test']['customers'],
            'bought (test)': out['test']['purchased_share'], 'ROC-AUC': b['roc_auc'], 'PR-AUC': b['pr_auc'],
            'recency-only ROC-AUC': roc_auc_score(test.purchased, -test.recency_days), 'ECE': b['ece'],
            'spend MAE': s['mae'], 'spend Spearman': s['spearman'], 'spend RMSE': s['rmse']}

if __name__ == '__main__':
    ap = argparse.ArgumentParser(); ap.add_argument('--sample', action='store_true'); ap.add_argument('--threads', type=int, default=1)
    a = ap.parse_args(); torch.set_num_threads(a.threads); warnings.simplefilter('ignore')
    from threadpoolctl import threadpool_limits
    threadpool_limits(a.threads)
    work = Path(tempfile.mkdtemp())
    lines, clean, rep, tm = build(a.sample)
    print(f"# Online Retail: {len(lines):,} lines, {lines.customer.nunique():,} customers; {platform.node()}, {os.cpu_count()} CPUs, "
          f"load average {os.getloadavg()[0]:.1f}\n")
    print("## Customer table build (seconds)\n\n" + md(pd.DataFrame({'value': tm})) + "\n\n" + md(rep.table()) + "\n", flush=True)

    lo, hi = cutoff_range(clean, HORIZON)
    train, test = customer_table(clean, hi - HORIZON * DAY, HORIZON), customer_table(clean, hi, HORIZON)
    print(f"## Next {HORIZON} days, trained at {train.attrs['cutoff']} ({len(train)} customers, {train.purchased.mean():.1%} bought), "
          f"tested at {test.attrs['cutoff']} ({len(test)} customers, {test.purchased.mean():.1%} bought)\n", flush=True)
    prow, models, clv = purchase(train, test, work)
    print("### Purchase\n\n" + md(pd.DataFrame(prow).T) + "\n\nBG/NBD and Gamma-Gamma parameters: "
          + json.dumps({k: round(v, 4) for k, v in clv.params.items()}) + "\n", flush=True)
    srow, fc = spend(train, test, models, work)
    print("### Spend (all test customers, £; 0 for those who do not buy)\n\n" + md(pd.DataFrame(srow).T) + "\n", flush=True)
    n, frow, grid = profit(test, models, fc)
    print(f"### Mailing: margin {MARGIN:.0%}, £{COST:g} a contact, budget £{BUDGET:,.0f} -> N = {n}\n\n" + md(pd.DataFrame(frow).T) + "\n\n"
          + md(pd.DataFrame(grid, index=['N', 'realised profit £']).T) + "\n", flush=True)

    if a.sample: f = Path(work)/'simulated_lines.csv'; simulate_transactions(1000, seed=0).to_csv(f, index=False)
    else: f = data_path('online_retail')/'online_retail.csv.gz'
    periods = {}
    for c1 in (hi - 2 * HORIZON * DAY, hi - HORIZON * DAY):
        c1s, c2s = f'{c1:%Y-%m-%d}', f'{c1 + HORIZON * DAY:%Y-%m-%d}'
        periods[f'{c1s} -> {c2s}'] = cli_period(f, c1s, c2s, work, a.sample)
    print("## The CLI defaults on two periods (customers -> train -> evaluate --json; GBM, squared error for spend)\n\n"
          + md(pd.DataFrame(periods).T) + "\n", flush=True)

    early, late = list(periods.values())
    kv = {'table_s': tm['table_s'], 'build_total_s': tm['total_s'], 'auc_recency': prow['recency alone']['ROC-AUC'],
          'auc_rfm_lr': prow['RFM logistic regression']['ROC-AUC'], 'auc_gbm': prow['GBM, all features (default)']['ROC-AUC'],
          'auc_bgnbd': prow['BG/NBD (MAP)']['ROC-AUC'], 'prauc_gbm': prow['GBM, all features (default)']['PR-AUC'],
          'mae_last90': srow['last 90 days repeated']['MAE'], 'mae_gbm': srow['GBM P(buy) × GBM spend if buying (squared error)']['MAE'],
          'mae_gg': srow['BG/NBD × Gamma-Gamma (MAP)']['MAE'],
          'spearman_gbm': srow['GBM P(buy) × GBM spend if buying (squared error)']['Spearman'], 'spearman_gg': srow['BG/NBD × Gamma-Gamma (MAP)']['Spearman'],
          'top_n': n, 'profit_model': frow['model: expected profit (GBM P(buy) × GBM spend if buying)']['realised profit £'],
          'profit_rfm': frow['RFM rule: top N by R+F+M score']['realised profit £'], 'profit_random': frow['random N (expected)']['realised profit £'],
          'cli_early_auc': early['ROC-AUC'], 'cli_early_spearman': early['spend Spearman'], 'cli_late_auc': late['ROC-AUC']}
    print(' '.join(f'{k}={v:.4g}' if isinstance(v, float) else f'{k}={v}' for k, v in kv.items()))
