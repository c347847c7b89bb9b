"`lepton-nb customers` as a user runs it: invoice lines -> customer table -> train -> evaluate, and bad input refused cleanly."
import json, os, subprocess
from pathlib import Path
import pandas as pd
import pytest

COLS = ['--customer-col', 'CustomerID', '--invoice-col', 'InvoiceNo', '--date-col', 'InvoiceDate', '--quantity-col', 'Quantity',
        '--price-col', 'UnitPrice', '--product-col', 'StockCode']


def run(*args):
    return subprocess.run(['lepton-nb', *map(str, args)], capture_output=True, text=True, env={**os.environ}, timeout=300)


def one_line_error(r, *phrases):
    "Exit code 2, exactly one line on stderr holding every phrase, no traceback."
    lines = r.stderr.strip().splitlines()
    assert r.returncode == 2, (r.returncode, r.stderr)
    assert len(lines) == 1 and lines[0].startswith('lepton-nb customers: error:'), r.stderr
    for p in phrases: assert p in lines[0], (p, lines[0])


@pytest.fixture(scope='module')
def sample(tmp_path_factory):
    "Every line of 200 Online Retail customers when the shared data is present, else 300 simulated customers, as a shop's CSV."
    from lepton_nb.data.transactions import load_retail_lines
    f = tmp_path_factory.mktemp('lines')/'lines.csv.gz'
    load_retail_lines(200).to_csv(f, index=False)
    return f


@pytest.fixture(scope='module')
def span(sample):
    "The earliest and latest cutoff (YYYY-MM-DD) with a 90-day window, as the library computes them."
    from lepton_nb.data.transactions import ONLINE_RETAIL, clean_transactions, cutoff_range, read_transactions
    return tuple(f'{d:%Y-%m-%d}' for d in cutoff_range(clean_transactions(read_transactions(sample, ONLINE_RETAIL))[0], 90))


def test_span_is_the_shops_year(sample, span):
    real = len(pd.read_csv(sample)) == 18_029           # the 200 real customers buy from 1 to 8 December, the simulated from 2 to 9
    assert span == (('2010-12-02', '2011-09-10') if real else ('2010-12-03', '2011-09-11')), span


def test_customers_train_evaluate(sample, span, tmp_path):
    table = tmp_path/'customers.csv'
    r = run('customers', '--data', sample, *COLS, '--cutoff', '2011-06-12', '--horizon', '90', '--out', table)
    assert r.returncode == 0, r.stderr
    assert 'missing customer id' in r.stdout and 'lepton-nb train --task tabular' in r.stdout
    t = pd.read_csv(table, dtype={'CustomerID': str})
    assert t.columns[0] == 'CustomerID' and list(t.columns[-2:]) == ['purchased', 'spend']
    assert {'recency_days', 'orders', 'monetary', 'tenure_days', 'returns', 'spend_90d', 'country'} <= set(t.columns)
    assert t.CustomerID.is_unique and set(t.purchased) == {0, 1} and (t.spend[t.purchased == 0] == 0).all()

    r = run('train', '--task', 'tabular', '--data', table, '--target', 'purchased', '--ignore', 'CustomerID', 'spend',
            '--model', 'lr', '--out', tmp_path/'buy', '--json')
    assert r.returncode == 0, r.stderr
    r = run('evaluate', tmp_path/'buy', '--data', table, '--json')
    assert r.returncode == 0, r.stderr
    assert {'roc_auc', 'pr_auc', 'brier', 'ece'} <= set(json.loads(r.stdout))

    r = run('train', '--task', 'regression', '--data', table, '--target', 'spend', '--ignore', 'CustomerID', 'purchased',
            '--out', tmp_path/'spend', '--json')
    assert r.returncode == 0, r.stderr
    r = run('evaluate', tmp_path/'spend', '--data', table, '--json')
    assert r.returncode == 0, r.stderr
    ev = json.loads(r.stdout)
    assert {'rmse', 'mae', 'spearman'} <= set(ev) and ev['rmse'] >= ev['mae'] > 0

    # the next period, with the columns found by their usual names and the default cutoff (last day - 90 days)
    later = tmp_path/'later.csv.gz'
    r = run('customers', '--data', sample, '--out', later, '--json')
    assert r.returncode == 0, r.stderr
    s = json.loads(r.stdout)
    assert s['cutoff'] == span[1] and s['id_column'] == 'CustomerID' and s['customers'] == len(pd.read_csv(later))
    r = run('evaluate', tmp_path/'buy', '--data', later, '--json')
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)['roc_auc'] > 0.55      # trained in June, still ranks in September


def test_bad_input_is_one_line_and_writes_nothing(sample, span, tmp_path):
    out = tmp_path/'customers.csv'
    one_line_error(run('customers', '--data', sample, '--customer-col', 'Client', '--out', out),
                   "no column 'Client' (given as the customer column)", '--customer-col')
    one_line_error(run('customers', '--data', sample, '--cutoff', '2009-01-01', '--out', out),
                   'cutoff 2009-01-01 is outside the data', f'Use a cutoff from {span[0]} to {span[1]}')
    one_line_error(run('customers', '--data', sample, '--cutoff', '2011-11-20', '--out', out), 'are not observed')
    one_line_error(run('customers', '--data', sample, '--cutoff', 'next tuesday', '--out', out), "'next tuesday' is not a date")
    lines = tmp_path/'lines.csv'
    lines.write_text('invoice,customer,date,qty,price\n1,a,2024-01-05,2,3.5\n2,b,2024-01-07,1,2.0\n3,a,yesterday,1,2.0\n')
    one_line_error(run('customers', '--data', lines, '--customer-col', 'customer', '--out', out), "column 'date'", "line 4 ('yesterday')")
    assert not out.exists() and not list(tmp_path.glob('.customers.csv*'))   # nothing written, no temporary file left


def test_empty_window_and_previous_table_kept(tmp_path):
    lines = tmp_path/'lines.csv'
    rows = ['invoice,customer,date,qty,price']
    rows += [f'{i},c{i % 7},2024-01-{1 + i % 28:02d} 10:00,1,5' for i in range(40)]       # January
    rows += [f'{100 + i},c{i % 7},2024-06-{1 + i % 28:02d} 10:00,1,5' for i in range(40)]  # June, nothing in between
    lines.write_text('\n'.join(rows) + '\n')
    out = tmp_path/'customers.csv'
    r = run('customers', '--data', lines, '--cutoff', '2024-06-01', '--horizon', '28', '--out', out)
    assert r.returncode == 0, r.stderr
    before = out.read_bytes()
    one_line_error(run('customers', '--data', lines, '--cutoff', '2024-02-15', '--horizon', '30', '--out', out),
                   'The window 2024-02-15 to 2024-03-16 is empty')
    assert out.read_bytes() == before       # the table written before is untouched
