"""PyTorch eager vs onnxruntime on CPU for the bundled MiniLM classifier (77 classes).

Batch-1 latency per request (the model call only: every engine gets the same pre-tokenized
ids) over ~200 real BANKING77 texts, and batch-32 throughput, for:

  torch fp32      eager PyTorch, torch.inference_mode, the same threads as onnxruntime
  ort fp32        export_onnx (TorchScript exporter, sdpa attention) + onnxruntime, graph opt ALL
  ort fp32 fused  export_onnx(hf_attention='eager') + optimize_transformer (Attention, SkipLayerNorm, BiasGelu)
  ort int8        quantize_dynamic_int8 of the fp32 graph
  ort e2e         OnnxTextClassifier.predict_batch: the fp32 graph plus tokenization, as the server runs it

The engines are timed interleaved (text i on every engine, then text i+1), so a busy machine
slows them all alike. By default the classifier head is fitted on frozen MiniLM embeddings of
2,000 training texts (a few seconds), so that int8 agreement and accuracy mean something;
--fit-head 0 keeps the random head (speed is the same).

    python bench/onnx_speed.py [--n 200] [--threads N] [--fit-head 2000] [--bundle DIR] [--json out.json]

The last line is: onnx_speedup=<batch-1 speedup of ort fp32 over torch fp32> max_abs_diff=<ort fp32 vs torch, all texts>
"""
from __future__ import annotations
import argparse, json, statistics, tempfile, time
from pathlib import Path
import numpy as np
import torch
import torch.nn.functional as F
from lepton_nb.core import seed_everything
from lepton_nb.data.text import load_banking77
from lepton_nb.models.text import HFClassifier
from lepton_nb.deploy.onnx import (physical_cores, export_onnx, onnx_session, quantize_dynamic_int8, optimize_transformer,
                                   OnnxTextClassifier)

N_CLASSES = 77

def fit_head(model, texts, labels, classes, steps=300):
    "Fit the linear head on frozen pooled embeddings (full-batch Adam): a real classifier in seconds."
    cid = {c: i for i, c in enumerate(classes)}
    with torch.inference_mode():
        X = torch.cat([model.pooled(**model.tokenize(texts[i:i+64])) for i in range(0, len(texts), 64)])  # (N, H)
    X, y = X.clone(), torch.tensor([cid[l] for l in labels])
    head = torch.nn.Linear(X.shape[1], len(classes))
    opt = torch.optim.Adam(head.parameters(), lr=1e-2)
    for _ in range(steps):
        loss = F.cross_entropy(head(X), y); opt.zero_grad(); loss.backward(); opt.step()
    with torch.no_grad(): model.head.load_state_dict(head.state_dict())
    return loss.item()

def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('--n', type=int, default=200, help='texts to time (from the BANKING77 test split)')
    ap.add_argument('--threads', type=int, default=None, help='threads for both engines (default: physical cores)')
    ap.add_argument('--fit-head', type=int, default=2000, help='training texts to fit the head on (0: random head)')
    ap.add_argument('--warmup', type=int, default=20, help='untimed requests per engine first')
    ap.add_argument('--bundle', default=None, help='a saved bundle whose model is an HFClassifier (instead of the bundled MiniLM)')
    ap.add_argument('--json', default=None, help='also write the results here')
    a = ap.parse_args()

    threads = a.threads or physical_cores()
    torch.set_num_threads(threads)
    try: torch.set_num_interop_threads(1)
    except RuntimeError: pass
    seed_everything(0)
    train, test = load_banking77()
    classes = sorted(train.label.unique())
    classes += [f'unused_{i}' for i in range(N_CLASSES - len(classes))]      # the shipped sample has 10 intents
    sample = test.sample(min(a.n, len(test)), random_state=0)
    texts, labels = sample.text.tolist(), sample.label.tolist()

    if a.bundle:
        from lepton_nb.deploy.bundle import load_bundle
        model = load_bundle(a.bundle).model.eval(); head = 'bundle'
        classes = load_bundle(a.bundle, lazy=True).labels or classes
    else:
        model = HFClassifier(N_CLASSES).eval(); head = 'random'
        if a.fit_head:
            fit = train.sample(min(a.fit_head, len(train)), random_state=1)
            t0 = time.perf_counter(); loss = fit_head(model, fit.text.tolist(), fit.label.tolist(), classes)
            head = f'fitted on {len(fit)} texts ({time.perf_counter() - t0:.0f} s, loss {loss:.2f})'

    tmp = Path(tempfile.mkdtemp(prefix='onnx_speed_'))
    t0 = time.perf_counter()
    p32 = export_onnx(model, tmp/'fp32.onnx', metadata={'classes': classes})
    t_export = time.perf_counter() - t0
    export_onnx(model, tmp/'eager.onnx', hf_attention='eager', metadata={'classes': classes})
    fused_ops = optimize_transformer(tmp/'eager.onnx', tmp/'fused.onnx')
    p8 = quantize_dynamic_int8(p32, tmp/'int8.onnx')
    sess = {'ort fp32': onnx_session(p32, threads), 'ort fp32 fused': onnx_session(tmp/'fused.onnx', threads),
            'ort int8': onnx_session(p8, threads)}
    clf = OnnxTextClassifier(p32, model.tokenizer, threads=threads)

    one = [model.tokenize([t]) for t in texts]                                            # batch-1 inputs
    b32 = [model.tokenize(texts[i:i+32]) for i in range(0, len(texts), 32)]              # batch-32 inputs
    np_feed = lambda b: {k: v.numpy() for k, v in b.items()}
    one_np, b32_np = [np_feed(b) for b in one], [np_feed(b) for b in b32]

    def torch_run(b):
        with torch.inference_mode(): return model(**b).numpy()
    engines = {'torch fp32': (torch_run, one, b32)}
    for k, s in sess.items(): engines[k] = ((lambda s: lambda f: s.run(None, f)[0])(s), one_np, b32_np)
    engines['ort e2e'] = (lambda t: clf.logits(t), [[t] for t in texts], [texts[i:i+32] for i in range(0, len(texts), 32)])

    for run, xs, _ in engines.values():                                                  # warmup
        for x in xs[:a.warmup]: run(x)
    lat = {k: [] for k in engines}
    for i in range(len(texts)):                                                          # interleaved batch-1 timing
        for k in (list(engines)[i % len(engines):] + list(engines)[:i % len(engines)]):
            run, xs, _ = engines[k]
            t = time.perf_counter(); run(xs[i]); lat[k].append(time.perf_counter() - t)
    thr = {k: [] for k in engines}
    for rep in range(3):                                                                 # batch-32 throughput
        for k, (run, _, bs) in engines.items():
            t = time.perf_counter()
            for b in bs: run(b)
            thr[k].append(len(texts) / (time.perf_counter() - t))

    ref1 = [torch_run(b) for b in one]; ref32 = [torch_run(b) for b in b32]
    outs = {k: ([engines[k][0](x) for x in engines[k][1]], [engines[k][0](x) for x in engines[k][2]]) for k in engines}
    cid = {c: i for i, c in enumerate(classes)}
    y = np.array([cid.get(l, -1) for l in labels])
    ref_arg = np.concatenate(ref1).argmax(-1)
    rows = []
    for k in engines:
        o1, o32 = outs[k] if k != 'torch fp32' else (ref1, ref32)
        diff = max(max(float(np.abs(o - r).max()) for o, r in zip(o1, ref1)), max(float(np.abs(o - r).max()) for o, r in zip(o32, ref32)))
        arg = np.concatenate(o1).argmax(-1)
        ms = np.array(lat[k]) * 1e3
        rows.append({'engine': k, 'b1_median_ms': float(np.median(ms)), 'b1_p90_ms': float(np.percentile(ms, 90)),
                     'b32_texts_per_s': float(statistics.median(thr[k])), 'max_abs_diff': diff,
                     'agreement': float((arg == ref_arg).mean()), 'accuracy': float((arg == y).mean())})
    base = rows[0]['b1_median_ms']
    for r in rows: r['b1_speedup'] = base / r['b1_median_ms']

    print(f"MiniLM-L6 classifier, {N_CLASSES} classes, head {head}; {len(texts)} BANKING77 test texts "
          f"(mean {np.mean([b['input_ids'].shape[1] for b in one]):.1f} tokens); {threads} threads; "
          f"torch {torch.__version__}, onnxruntime {__import__('onnxruntime').__version__}; export {t_export:.1f} s; "
          f"files fp32 {p32.stat().st_size/1e6:.0f} MB, int8 {p8.stat().st_size/1e6:.0f} MB; fused {fused_ops}")
    print(f"{'engine':<16}{'b1 median ms':>13}{'b1 p90 ms':>11}{'b1 speedup':>11}{'b32 texts/s':>12}{'max|diff|':>11}{'argmax agree':>13}{'accuracy':>10}")
    for r in rows:
        print(f"{r['engine']:<16}{r['b1_median_ms']:>13.2f}{r['b1_p90_ms']:>11.2f}{r['b1_speedup']:>10.2f}x{r['b32_texts_per_s']:>12.0f}"
              f"{r['max_abs_diff']:>11.1e}{r['agreement']:>13.3f}{r['accuracy']:>10.3f}")
    print("(b1 = one text per call, model only; 'ort e2e' adds tokenization; max|diff| and agreement are against torch fp32; "
          "b32 speedup of ort fp32: %.2fx)" % (rows[1]['b32_texts_per_s'] / rows[0]['b32_texts_per_s']))
    if a.json: Path(a.json).write_text(json.dumps({'threads': threads, 'head': head, 'rows': rows}, indent=2))
    print(f"onnx_speedup={rows[1]['b1_speedup']:.2f} max_abs_diff={rows[1]['max_abs_diff']:.2e}")

if __name__ == '__main__': main()
