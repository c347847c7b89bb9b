"""Load test on loopback: the lepton_nb server with micro-batching, the same server with it off, and a naive
FastAPI endpoint that calls a transformers `pipeline` per request.

The model is the bundled all-MiniLM-L6-v2 with a 77-class head (BANKING77's intents), saved as a real text
bundle (TextClassifier -> save_bundle(flavor='text')) so the served code path is the library's. The head is
random: speed does not depend on it. Three servers, each a subprocess with the same torch threads
(OMP_NUM_THREADS / MKL_NUM_THREADS; default 1: on a shared CPU, 2 intra-op threads spin in OpenMP barriers
and the batched forward pass costs 3-4x the CPU):

  batching     `lepton-nb serve BUNDLE --max-batch 32 --max-wait-ms 5`
  no-batching  `lepton-nb serve BUNDLE --no-batching` (each request runs its own forward pass)
  pipeline     a FastAPI app (in this file) whose `POST /predict` calls
               `transformers.pipeline('text-classification', model=<the bundle's weights/hf folder loaded as
               AutoModelForSequenceClassification with 77 labels>)` per request, under plain uvicorn

The load generator (httpx.AsyncClient, this process) runs `--concurrency` workers, each sending one short
BANKING77 test text per request (the shipped sample when the data is absent), until `--requests` are done or
`--seconds` have passed, after `--warmup` untimed requests. All three servers are started first and the
configurations then run back to back, `--rounds` times, so they share the machine's conditions; the table
shows every round and the median, requests/s, p50/p99 latency, mean batch size (from /metrics) and the
servers' CPU time per request (from /proc: the fair measure when other jobs share the CPU). --profile adds the
model's CPU per text by batch size, texts in arrival order vs sorted by length (what padding costs).

    python bench/serve_load.py [--requests 600] [--seconds 60] [--concurrency 32] [--threads 1]
                               [--max-batch 32] [--max-wait-ms 5] [--backend torch] [--precision fp32] [--rounds 1] [--profile]
                               [--bundle DIR | --model HF_DIR] [--json out.json]

The last line is: batching_speedup=<batching rps / no-batching rps> vs_pipeline=<batching rps / pipeline rps>
"""
import argparse, asyncio, json, os, resource, shutil, signal, socket, statistics, subprocess, sys, tempfile, time
from pathlib import Path
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
N_CLASSES = 77

# ---------------------------------------------------------------- the naive baseline (run in a subprocess)
def naive_app(model_dir:str, threads:int):
    "FastAPI + transformers pipeline, one pipeline call per request: the endpoint people write first."
    import torch
    torch.set_num_threads(threads)
    from fastapi import FastAPI
    from pydantic import BaseModel
    from transformers import AutoModelForSequenceClassification, AutoTokenizer, pipeline
    labels = json.loads((Path(model_dir).parents[1]/'labels.json').read_text())
    model = AutoModelForSequenceClassification.from_pretrained(
        model_dir, num_labels=len(labels), id2label=dict(enumerate(labels)), label2id={l: i for i, l in enumerate(labels)})
    clf = pipeline('text-classification', model=model, tokenizer=AutoTokenizer.from_pretrained(model_dir), device=-1)
    app = FastAPI()
    class Req(BaseModel): inputs: list[str]
    @app.get('/healthz')
    def healthz(): return {'status': 'ok'}
    @app.post('/predict')
    def predict(req: Req): return {'predictions': clf(req.inputs)}  # a sync endpoint: FastAPI runs it in its threadpool
    return app

def run_naive_server(model_dir, port, threads):
    import uvicorn
    uvicorn.run(naive_app(model_dir, threads), host='127.0.0.1', port=port)   # uvicorn's defaults, as `lepton-nb serve`

# ---------------------------------------------------------------- setup
def texts_and_classes():
    "Short real texts (BANKING77 test split, shuffled) and the 77 intent names (padded when only the sample is there)."
    from lepton_nb.data.text import load_banking77
    tr, te = load_banking77()
    classes = sorted(set(map(str, tr.label)))
    classes += [f'intent_{i}' for i in range(N_CLASSES - len(classes))]
    texts = te.text.sample(frac=1., random_state=0).tolist()
    return texts, classes[:N_CLASSES], len(tr) < 5000

def build_bundle(out:Path, classes:list, model_dir=None) -> Path:
    "MiniLM + a 77-class head as a text bundle, the way train_text_classifier writes one."
    from lepton_nb.core import Manifest
    from lepton_nb.models.text import HFClassifier
    from lepton_nb.tasks.text import TextClassifier
    from lepton_nb.deploy.bundle import save_bundle
    model = HFClassifier(len(classes), model=model_dir).eval()
    clf = TextClassifier(model, model.tokenizer, classes, max_len=128, name='minilm-banking77')
    m = Manifest(task='text', schema={'labels': classes, 'text_col': 'text', 'label_col': 'label'},
                 preprocessing={'tokenizer': 'pretrained', 'max_len': 128},
                 model={'name': 'minilm', 'lora': False}, card={'name': 'minilm-banking77'})
    return save_bundle(out, clf, m, flavor='text')

def free_port() -> int:
    with socket.socket() as s: s.bind(('127.0.0.1', 0)); return s.getsockname()[1]

def server_env(threads:int) -> dict:
    return {**os.environ, 'OMP_NUM_THREADS': str(threads), 'MKL_NUM_THREADS': str(threads), 'TOKENIZERS_PARALLELISM': 'false',
            'PYTHONPATH': os.pathsep.join([str(ROOT)] + [p for p in [os.environ.get('PYTHONPATH')] if p]),
            'TRANSFORMERS_VERBOSITY': 'error', 'HF_HUB_OFFLINE': '1'}

def cpu_seconds(pid:int) -> float:
    "User + system CPU time of a process (all its threads), from /proc."
    f = Path(f'/proc/{pid}/stat').read_text().rsplit(')', 1)[1].split()
    return (int(f[11]) + int(f[12])) / os.sysconf('SC_CLK_TCK')

class Server:
    "A server subprocess on a free loopback port, ready when `ready_path` answers 200."
    def __init__(self, name, cmd, port, predict_path, ready_path, log_dir, threads, metrics=False):
        self.name, self.port, self.predict_path, self.ready_path, self.metrics = name, port, predict_path, ready_path, metrics
        self.url = f'http://127.0.0.1:{port}'
        self.log = open(Path(log_dir)/f'{name}.log', 'w')
        self.proc = subprocess.Popen(cmd, env=server_env(threads), stdout=self.log, stderr=subprocess.STDOUT, cwd=ROOT)

    def wait_ready(self, timeout_s=300.):
        import httpx
        t0 = time.monotonic()
        while time.monotonic() - t0 < timeout_s:
            if self.proc.poll() is not None:
                raise RuntimeError(f'{self.name} server exited with {self.proc.returncode}; see {self.log.name}')
            try:
                if httpx.get(self.url + self.ready_path, timeout=5).status_code == 200: return self
            except httpx.HTTPError: pass
            time.sleep(0.5)
        raise RuntimeError(f'{self.name} server not ready after {timeout_s} s; see {self.log.name}')

    def batch_stats(self) -> tuple[float, float]:
        "(batches, inputs) so far, from /metrics; (nan, nan) for a server without them."
        if not self.metrics: return float('nan'), float('nan')
        import httpx
        from lepton_nb.deploy.server import metric_value
        text = httpx.get(self.url + '/metrics', timeout=30).text
        return metric_value(text, 'lepton_batch_size_count'), metric_value(text, 'lepton_batch_size_sum')

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try: self.proc.wait(30)
            except subprocess.TimeoutExpired: self.proc.kill(); self.proc.wait()
        self.log.close()

# ---------------------------------------------------------------- the load generator
async def load(url:str, path:str, texts:list, n:int, seconds:float, concurrency:int, start:int=0) -> dict:
    "`concurrency` workers send one text per request until `n` are sent or `seconds` pass; latencies of the 200s."
    import httpx
    lat, errors, nxt = [], [], [start]
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=url, limits=limits, timeout=httpx.Timeout(300.)) as client:
        t0 = time.perf_counter(); deadline = t0 + seconds
        async def worker():
            while nxt[0] < start + n and time.perf_counter() < deadline:
                i = nxt[0]; nxt[0] += 1
                t = time.perf_counter()
                try:
                    r = await client.post(path, json={'inputs': [texts[i % len(texts)]]})
                    if r.status_code == 200: lat.append(time.perf_counter() - t)
                    else: errors.append(f'{r.status_code}: {r.text[:120]}')
                except httpx.HTTPError as e: errors.append(f'{type(e).__name__}: {e}')
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        wall = time.perf_counter() - t0
    return {'ok': len(lat), 'errors': len(errors), 'first_error': errors[0] if errors else None, 'wall_s': wall,
            'rps': len(lat) / wall, 'p50_ms': 1000 * float(np.percentile(lat, 50)) if lat else float('nan'),
            'p99_ms': 1000 * float(np.percentile(lat, 99)) if lat else float('nan')}

def client_cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF); return r.ru_utime + r.ru_stime

def measure(srv:Server, texts, a, offset) -> dict:
    "Warm up, then one timed load run against `srv`, with its batch sizes and CPU time per request."
    asyncio.run(load(srv.url, srv.predict_path, texts, a.warmup, a.seconds / 3, a.concurrency, offset))
    b0, s0 = srv.batch_stats(); c0, k0 = cpu_seconds(srv.proc.pid), client_cpu()
    res = asyncio.run(load(srv.url, srv.predict_path, texts, a.requests, a.seconds, a.concurrency, offset + a.warmup))
    b1, s1 = srv.batch_stats(); c1, k1 = cpu_seconds(srv.proc.pid), client_cpu()
    n = max(res['ok'] + res['errors'], 1)
    return {'config': srv.name, **res, 'mean_batch': (s1 - s0) / (b1 - b0) if b1 > b0 else float('nan'),
            'server_cpu_ms_per_req': 1000 * (c1 - c0) / n, 'client_cpu_ms_per_req': 1000 * (k1 - k0) / n}

def profile_model(bundle, texts:list, threads:int, sizes=(1, 8, 32), secs:float=5., precision:str='fp32') -> list[str]:
    "CPU ms per text of the served predictor by batch size, texts in arrival order vs sorted by length (no padding waste)."
    import torch
    from lepton_nb.deploy.serving import load_predictor
    torch.set_num_threads(threads)
    p = load_predictor(bundle, precision=precision)
    texts = texts[:640]
    lens = np.array([len(x) for x in p.tokenizer(texts)['input_ids']])
    by_len = [texts[i] for i in np.argsort(lens, kind='stable')]
    def cpu_ms(ts, bs):
        bl = [ts[i:i+bs] for i in range(0, len(ts), bs)]; p.predict_batch(bl[0])
        c0, n, k = time.process_time(), 0, 0
        while time.process_time() - c0 < secs: b = bl[k % len(bl)]; p.predict_batch(b); n += len(b); k += 1
        return 1000 * (time.process_time() - c0) / n
    out = []
    for bs in sizes:
        pad = np.mean([lens[i:i+bs].max() * len(lens[i:i+bs]) / lens[i:i+bs].sum() for i in range(0, len(lens), bs)])
        out.append(f'| {bs} | {pad:.2f} | {cpu_ms(texts, bs):.1f} | {cpu_ms(by_len, bs):.1f} |')
    return ['| batch | padded/real tokens (arrival order) | CPU ms/text, arrival order | CPU ms/text, length-sorted |',
            '|---|---|---|---|'] + out

def table(rows:list) -> str:
    head = '| round | config | requests | errors | wall s | req/s | p50 ms | p99 ms | mean batch | server CPU ms/req | client CPU ms/req |'
    out = [head, '|' + '---|' * (head.count('|') - 1)]
    for r in rows:
        mb = '–' if r['mean_batch'] != r['mean_batch'] else f"{r['mean_batch']:.1f}"
        out.append(f"| {r['round']} | {r['config']} | {r['ok']} | {r['errors']} | {r['wall_s']:.1f} | {r['rps']:.1f} | "
                   f"{r['p50_ms']:.0f} | {r['p99_ms']:.0f} | {mb} | {r['server_cpu_ms_per_req']:.1f} | {r['client_cpu_ms_per_req']:.1f} |")
    return '\n'.join(out)

def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('--requests', type=int, default=600, help='timed requests per configuration and round (at most)')
    ap.add_argument('--seconds', type=float, default=60., help='time limit of one timed run')
    ap.add_argument('--concurrency', type=int, default=32, help='concurrent client workers')
    ap.add_argument('--warmup', type=int, default=64, help='untimed requests before each timed run')
    ap.add_argument('--threads', type=int, default=1, help='torch threads of every server (1: no OpenMP barriers to spin in on a shared CPU)')
    ap.add_argument('--max-batch', type=int, default=32, help='batching server: inputs per forward pass')
    ap.add_argument('--max-wait-ms', type=float, default=5., help='batching server: wait for company')
    ap.add_argument('--workers', type=int, default=2, help='batching server: batches in flight (one per core with --threads 1)')
    ap.add_argument('--backend', default='torch', choices=['torch', 'onnx'], help='backend of both lepton_nb servers')
    ap.add_argument('--precision', default='fp32', choices=['fp32', 'bf16', 'auto'], help='torch backend of both lepton_nb servers')
    ap.add_argument('--rounds', type=int, default=1, help='times to run the three configurations back to back')
    ap.add_argument('--configs', default='batching,no-batching,pipeline', help='which configurations, in order')
    ap.add_argument('--bundle', default=None, help='a text bundle folder to serve (default: build one in a temp folder)')
    ap.add_argument('--model', default=None, help='HF encoder folder for the bundle built here (default: the bundled MiniLM)')
    ap.add_argument('--json', default=None, help='also write the results here')
    ap.add_argument('--profile', action='store_true', help='after the load runs: CPU per text of the model by batch size, '
                                                           'arrival order vs length-sorted (the cost of padding)')
    ap.add_argument('--naive-server', nargs=3, metavar=('MODEL_DIR', 'PORT', 'THREADS'), help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.naive_server: return run_naive_server(a.naive_server[0], int(a.naive_server[1]), int(a.naive_server[2]))

    texts, classes, sample = texts_and_classes()
    tmp = Path(tempfile.mkdtemp(prefix='serve_load_'))
    bundle = Path(a.bundle) if a.bundle else build_bundle(tmp/'minilm-banking77', classes, a.model)
    print(f'bundle {bundle}; {len(texts)} {"sample" if sample else "BANKING77 test"} texts; '
          f'concurrency {a.concurrency}, threads {a.threads}, logs in {tmp}', flush=True)
    lepton = [sys.executable, '-c', 'import sys; from lepton_nb.cli import main; sys.exit(main())', 'serve', str(bundle),
              '--backend', a.backend, '--max-batch', str(a.max_batch), '--max-wait-ms', str(a.max_wait_ms), '--precision', a.precision]
    make = {
        'batching': lambda p: Server('batching', lepton + ['--port', str(p), '--workers', str(a.workers)], p, '/v1/predict', '/readyz',
                                     tmp, a.threads, True),
        'no-batching': lambda p: Server('no-batching', lepton + ['--port', str(p), '--no-batching'], p, '/v1/predict', '/readyz',
                                        tmp, a.threads, True),
        'pipeline': lambda p: Server('pipeline', [sys.executable, __file__, '--naive-server', str(bundle/'weights'/'hf'), str(p),
                                                  str(a.threads)], p, '/predict', '/healthz', tmp, a.threads),
    }
    names = [c.strip() for c in a.configs.split(',') if c.strip()]
    servers = {}
    try:
        for name in names: servers[name] = make[name](free_port())
        for s in servers.values(): s.wait_ready()
        rows = []
        for rnd in range(1, a.rounds + 1):
            for i, name in enumerate(names):
                r = {'round': rnd, **measure(servers[name], texts, a, offset=(rnd * len(names) + i) * 997)}
                rows.append(r)
                print(table([r]).splitlines()[-1], flush=True)
                if r['first_error']: print(f"  first error: {r['first_error']}", flush=True)
    finally:
        for s in servers.values(): s.stop()

    med = {n: statistics.median(r['rps'] for r in rows if r['config'] == n) for n in names}
    summary = [{'round': 'median', 'config': n, **{k: statistics.median(r[k] for r in rows if r['config'] == n)
               for k in ('ok', 'errors', 'wall_s', 'rps', 'p50_ms', 'p99_ms', 'mean_batch', 'server_cpu_ms_per_req',
                         'client_cpu_ms_per_req')}} for n in names]
    print('\n' + table(rows + (summary if a.rounds > 1 else [])))
    if a.json:
        Path(a.json).write_text(json.dumps({'args': vars(a), 'rows': rows, 'median_rps': med, 'sample_texts': sample}, indent=2))
    if a.profile: print('\n' + '\n'.join(profile_model(bundle, texts, a.threads, precision=a.precision)))
    if not a.bundle: shutil.rmtree(bundle, ignore_errors=True)      # the logs stay in `tmp`
    sp = lambda x, y: med[x] / med[y] if x in med and y in med and med[y] > 0 else float('nan')
    print(f"batching_speedup={sp('batching', 'no-batching'):.2f} vs_pipeline={sp('batching', 'pipeline'):.2f}")

if __name__ == '__main__': main()
