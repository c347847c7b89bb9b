"""Stream monitor: surge detection delay, false-alert rate, and stream-scoring throughput on CPU.

Detection (the whole pipeline: JSONL file -> micro-batched scoring -> SQLite windows -> EWMA detector):
over `--seeds` seeded replays of the held-out tweets of twitter_financial_news_sentiment
(3 topics, `--windows` one-hour windows, ~`--rate` tweets per topic per window), each run twice:
clean, and with the *true* bearish share of one topic multiplied by `--factor` for `--burst-len`
windows from window 36. The scorer is a TF-IDF + logistic-regression model trained on the training
split (predictions are memoised per text: the same text always gets the same score, so this only
saves time). The monitor sees the model's predictions, not the true labels.

  detection delay   windows from burst start to the first alert on the burst topic, 1 = the first
                    burst window; replays with no alert during the burst are counted as misses
                    (reported separately, and as burst_len + 1 in the mean).
  false alerts      alerts on judged windows that are clean (every window of the clean replays; in
                    the burst replays, the other topics and the burst topic before the burst),
                    per 1000 such windows. Warm-up and low-count windows are not judged and not counted.

Throughput: stream scoring (file -> SQLite, end to end) in texts/s on CPU for a TextClassifier
with the bundled MiniLM (6 layers; weights untrained, speed does not depend on them), with the
PyTorch backend (fp32, and bf16 autocast) and with the ONNX backend (TextClassifier.to_onnx), on `--n-speed` texts.

    python bench/stream_alerts.py [--seeds 20] [--rate 200] [--factor 2] [--n-speed 512] [--threads 2] [--json out.json]

The last line is: detect_delay_windows=<x> false_alerts_per_1k=<x>
"""
from __future__ import annotations
import argparse, json, logging, tempfile, time
from pathlib import Path
import numpy as np
import pandas as pd
import torch
from lepton_nb.data.text import load_financial_sentiment
from lepton_nb.monitor.stream import StreamConfig, AlertConfig, make_replay, write_jsonl, monitor_stream, read_windows, read_alerts

class Memo:
    "Memoise a predictor's predict_proba per text (deterministic models only)."
    def __init__(self, m): self.m, self.classes, self.cache = m, list(m.classes), {}
    def predict_proba(self, texts):
        new = [t for t in dict.fromkeys(texts) if t not in self.cache]
        if new: self.cache.update(zip(new, self.m.predict_proba(new)))
        return np.stack([self.cache[t] for t in texts])

def tfidf_model(train_df):
    from sklearn.pipeline import make_pipeline
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    m = make_pipeline(TfidfVectorizer(ngram_range=(1, 2), min_df=2, sublinear_tf=True), LogisticRegression(max_iter=1000, C=5))
    m.fit(train_df.text.tolist(), train_df.label.to_numpy()); m.classes = list(m.classes_)
    return m

def detection(args, test_df, pred, tmp, acfg):
    W, rows = 3600.0, []
    for seed in range(args.seeds):
        kw = dict(n_windows=args.windows, rate=args.rate, window_s=W, topics=['earnings', 'fed', 'oil'], seed=seed)
        for kind in ('clean', 'burst'):
            rp = make_replay(test_df, **kw) if kind == 'clean' else \
                 make_replay(test_df, burst_topic='earnings', burst_at=args.burst_at, burst_len=args.burst_len, factor=args.factor, **kw)
            db = tmp/f'{kind}{seed}.sqlite'
            monitor_stream(write_jsonl(rp, tmp/f'{kind}{seed}.jsonl'), pred, db,
                           StreamConfig(window=W, batch_size=512, synchronous='NORMAL'), acfg)
            w = read_windows(db)
            w['k'] = ((w.start - w.start.min()) // W).astype(int)
            burst = (w.topic == 'earnings') & (w.k >= args.burst_at) if kind == 'burst' else pd.Series(False, index=w.index)
            judged = w.status.isin(['ok', 'alert'])
            fa, nclean = int((judged & ~burst & (w.status == 'alert')).sum()), int((judged & ~burst).sum())
            delay = None
            if kind == 'burst':
                hit = w[burst & (w.status == 'alert') & (w.k < args.burst_at + args.burst_len)]
                delay = int(hit.k.min() - args.burst_at + 1) if len(hit) else None
                true_share = rp[rp.topic == 'earnings'].groupby(rp.ts // W).label.apply(lambda s: (s == 'bearish').mean())
            rows.append({'seed': seed, 'kind': kind, 'false_alerts': fa, 'clean_windows': nclean, 'delay': delay,
                         'pred_share_pre': float(w[(w.topic == 'earnings') & (w.k < args.burst_at)].share_neg.mean()),
                         'pred_share_burst': float(w[(w.topic == 'earnings') & (w.k >= args.burst_at) & (w.k < args.burst_at + args.burst_len)].share_neg.mean()),
                         'texts': len(rp)})
        print(f"seed {seed}: delay={rows[-1]['delay']} false={rows[-2]['false_alerts'] + rows[-1]['false_alerts']}", flush=True)
    return pd.DataFrame(rows)

def throughput(args, test_df, tmp):
    from lepton_nb.models.text import HFClassifier
    from lepton_nb.tasks.text import TextClassifier
    torch.manual_seed(0)
    m = HFClassifier(3).eval()
    clf = TextClassifier(m, m.tokenizer, ['bearish', 'bullish', 'neutral'], max_len=64)
    rp = make_replay(test_df, n_windows=4, rate=args.n_speed / 12, window_s=3600, topics=['earnings', 'fed', 'oil'], seed=0)
    src = write_jsonl(rp, tmp/'speed.jsonl')
    out = {}
    t0 = time.perf_counter(); onnx = clf.to_onnx(tmp/'speed.onnx', threads=args.threads); out['onnx_export_s'] = round(time.perf_counter() - t0, 1)
    bf16 = TextClassifier(m, m.tokenizer, clf.classes, max_len=64, precision='bf16')   # bf16 autocast (fast where the CPU has AVX512-BF16/AMX)
    for name, p in (('torch', clf), ('torch_bf16', bf16), ('onnx', onnx)):
        p.predict_proba(rp.text.tolist()[:64])  # warm up
        t0 = time.perf_counter()
        r = monitor_stream(src, p, tmp/f'speed_{name}.sqlite', StreamConfig(window='1h', batch_size=64))
        out[f'{name}_texts_per_s'] = round(r['scored'] / (time.perf_counter() - t0), 1)
    out['n_texts'] = len(rp)
    return out

def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--seeds', type=int, default=20); ap.add_argument('--windows', type=int, default=48)
    ap.add_argument('--rate', type=float, default=200); ap.add_argument('--factor', type=float, default=2.0)
    ap.add_argument('--burst-at', type=int, default=36); ap.add_argument('--burst-len', type=int, default=6)
    ap.add_argument('--n-speed', type=int, default=512); ap.add_argument('--threads', type=int, default=2)
    ap.add_argument('--skip-speed', action='store_true'); ap.add_argument('--json')
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    logging.getLogger('lepton_nb.monitor.stream').setLevel(logging.ERROR)  # alerts are counted from the database
    train_df, test_df = load_financial_sentiment()
    tmp = Path(tempfile.mkdtemp())
    res = {'args': vars(args)}
    if not args.skip_speed:
        res['throughput'] = throughput(args, test_df, tmp); print(res['throughput'], flush=True)
    model = tfidf_model(train_df)
    res['tfidf_test_accuracy'] = float((model.predict(test_df.text.tolist()) == test_df.label.to_numpy()).mean())
    pred = Memo(model)
    t0 = time.perf_counter(); d = detection(args, test_df, pred, tmp, AlertConfig()); det_s = time.perf_counter() - t0
    b = d[d.kind == 'burst']
    delays = b.delay.fillna(args.burst_len + 1)
    res.update(detection_seconds=round(det_s, 1), pipeline_texts_per_s=round(d.texts.sum() / det_s, 1),
               misses=int(b.delay.isna().sum()), delay_mean=float(delays.mean()), delay_detected_mean=float(b.delay.dropna().mean()),
               delay_hist=b.delay.value_counts(dropna=False).to_dict(),
               false_alerts=int(d.false_alerts.sum()), clean_windows=int(d.clean_windows.sum()),
               false_per_1k=float(1000 * d.false_alerts.sum() / d.clean_windows.sum()),
               pred_share_pre=float(b.pred_share_pre.mean()), pred_share_burst=float(b.pred_share_burst.mean()))
    print(json.dumps({k: v for k, v in res.items() if k != 'args'}, indent=1, default=str))
    if args.json: Path(args.json).write_text(json.dumps(res, indent=1, default=str))
    print(f"detect_delay_windows={res['delay_mean']:.2f} false_alerts_per_1k={res['false_per_1k']:.2f}")

if __name__ == '__main__': main()
