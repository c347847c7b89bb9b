"The model server over real HTTP on loopback: batching, limits, failures, auth, readiness, hot reload, shutdown."
import asyncio, concurrent.futures, threading, time

import httpx
import pytest
import torch
from torch import nn

from lepton_nb.core import LeptonError, env_vars
from lepton_nb.deploy.server import (CallablePredictor, MicroBatcher, Predictor, ServerMetrics, ServerThread,
                                     check_predictor, create_app, metric_value)

torch.set_num_threads(1)
ALPHABET = 'abcdefghijklmnopqrstuvwxyz'
CLASSES = ['consonants', 'vowels']
TIMEOUT = 20


class BagOfChars(nn.Module):
    "Letter counts -> (consonants, vowels) logits: a linear model with hand-set weights."
    def __init__(self):
        super().__init__()
        self.head = nn.Linear(len(ALPHABET), 2, bias=False)
        vowel = torch.tensor([c in 'aeiou' for c in ALPHABET]).float()
        with torch.no_grad(): self.head.weight.copy_(torch.stack([1 - vowel, vowel]))

    def forward(self, x): return self.head(x)  # (B, 26) -> (B, 2)


def featurize(texts):
    x = torch.zeros(len(texts), len(ALPHABET))  # (B, 26)
    for i, t in enumerate(texts):
        for c in t.lower():
            if (j := ALPHABET.find(c)) >= 0: x[i, j] += 1
    return x


def make_predictor(version='1', delay_s=0.0, fail_on=None, calls=None, name='vowels', max_batch=256):
    "A CallablePredictor over BagOfChars; `delay_s` per call, raises when an input contains `fail_on`."
    model = BagOfChars().eval()

    @torch.no_grad()
    def predict(texts):
        if calls is not None: calls.append(len(texts))
        if fail_on is not None and any(fail_on in t for t in texts): raise RuntimeError(f'cannot score {fail_on!r}')
        if delay_s: time.sleep(delay_s)
        p = model(featurize(texts)).softmax(-1)  # (B, 2): one forward for the whole batch
        score, idx = p.max(-1)
        return [{'label': CLASSES[i], 'score': s, 'chars': len(t)} for i, s, t in zip(idx.tolist(), score.tolist(), texts)]
    return CallablePredictor(predict, name=name, version=version, metadata={'card': 'toy'}, max_batch=max_batch)


def wait_until(cond, timeout_s=10.0, what='condition'):
    t0 = time.monotonic()
    while not cond():
        if time.monotonic() - t0 > timeout_s: raise AssertionError(f'timed out waiting for {what}')
        time.sleep(0.02)


def post_many(url, bodies, headers=None):
    "POST all bodies to /v1/predict at once (httpx.AsyncClient); return the responses in order."
    async def go():
        limits = httpx.Limits(max_connections=len(bodies))
        async with httpx.AsyncClient(base_url=url, timeout=TIMEOUT, limits=limits, headers=headers) as c:
            return await asyncio.gather(*(c.post('/v1/predict', json=b) for b in bodies))
    return asyncio.run(go())


def test_predict_metadata_and_probes():
    pred = make_predictor()
    assert isinstance(pred, Predictor)
    with ServerThread(create_app(pred)) as s:
        r = httpx.post(f'{s.url}/v1/predict', json={'inputs': ['aeiou', 'strength']}, timeout=TIMEOUT)
        assert r.status_code == 200, r.text
        body = r.json()
        assert body['model'] == 'vowels' and body['version'] == '1'
        assert [p['label'] for p in body['predictions']] == ['vowels', 'consonants']
        assert body['predictions'][0]['chars'] == 5 and isinstance(body['predictions'][0]['score'], float)
        meta = httpx.get(f'{s.url}/v1/metadata', timeout=TIMEOUT).json()
        assert meta['name'] == 'vowels' and meta['metadata'] == {'card': 'toy'} and meta['server']['batching'] is True
        assert httpx.get(f'{s.url}/healthz', timeout=TIMEOUT).json() == {'status': 'ok'}
        assert httpx.get(f'{s.url}/readyz', timeout=TIMEOUT).json()['status'] == 'ready'
        r = httpx.get(f'{s.url}/nope', timeout=TIMEOUT)
        assert r.status_code == 404 and 'error' in r.json()
        m = httpx.get(f'{s.url}/metrics', timeout=TIMEOUT)
        assert m.headers['content-type'].startswith('text/plain')
        assert metric_value(m.text, 'lepton_requests_total', route='/v1/predict', status='200') == 1
        assert metric_value(m.text, 'lepton_requests_total', route='other', status='404') == 1
        assert metric_value(m.text, 'lepton_model_info', name='vowels', version='1') == 1


def test_tabular_rows_are_accepted():
    seen = []
    pred = CallablePredictor(lambda rows: seen.extend(rows) or [{'label': int(r['age'] > 40), 'score': 0.9} for r in rows])
    with ServerThread(create_app(pred)) as s:
        rows = [{'age': 52, 'income': 1200.5, 'city': 'Lyon', 'owner': True, 'note': None}, {'age': 30}]
        r = httpx.post(f'{s.url}/v1/predict', json={'inputs': rows}, timeout=TIMEOUT)
        assert r.status_code == 200, r.text
        assert [p['label'] for p in r.json()['predictions']] == [1, 0] and seen == rows
        r = httpx.post(f'{s.url}/v1/predict', json={'inputs': [{'age': [1, 2]}]}, timeout=TIMEOUT)
        assert r.status_code == 422 and "inputs[0]['age']" in r.json()['error']


def test_concurrent_requests_get_their_own_answers_in_batches():
    calls = []
    pred = make_predictor(delay_s=0.02, calls=calls)
    texts = ['a' * (i % 9) + 'b' * (i % 13) + 'e' * (i % 4) + f'{i}' for i in range(64)]
    with ServerThread(create_app(pred, max_batch=32, max_wait_ms=20)) as s:
        rs = post_many(s.url, [{'inputs': [t]} for t in texts])
        metrics = httpx.get(f'{s.url}/metrics', timeout=TIMEOUT).text
    expected = make_predictor().predict_batch(texts)
    assert all(r.status_code == 200 for r in rs), [r.text for r in rs if r.status_code != 200][:3]
    for t, r, e in zip(texts, rs, expected):
        (got,) = r.json()['predictions']
        assert got['chars'] == len(t) and got['label'] == e['label'] and got['score'] == pytest.approx(e['score'], abs=1e-6)
    n_calls = metric_value(metrics, 'lepton_batch_size_count')
    assert metric_value(metrics, 'lepton_batch_size_sum') == 64 and sum(calls) == 64
    assert n_calls == len(calls) and n_calls < 64 and max(calls) > 1 and max(calls) <= 32
    assert metric_value(metrics, 'lepton_batch_size_bucket', le='1.0') < n_calls   # some batch held more than one input
    assert metric_value(metrics, 'lepton_predictions_total') == 64


def test_large_request_is_split_by_predictor_max_batch():
    calls = []
    pred = make_predictor(calls=calls, max_batch=16)
    with ServerThread(create_app(pred, max_batch=32)) as s:
        r = httpx.post(f'{s.url}/v1/predict', json={'inputs': [f'x{i}' for i in range(100)]}, timeout=TIMEOUT)
    assert r.status_code == 200 and len(r.json()['predictions']) == 100
    assert [p['chars'] for p in r.json()['predictions']] == [len(f'x{i}') for i in range(100)]
    assert max(calls) <= 16 and sum(calls) == 100


def test_without_batching_each_request_calls_the_model():
    calls = []
    with ServerThread(create_app(make_predictor(calls=calls), batching=False)) as s:
        rs = post_many(s.url, [{'inputs': [f'text {i}']} for i in range(16)])
        metrics = httpx.get(f'{s.url}/metrics', timeout=TIMEOUT).text
    assert all(r.status_code == 200 for r in rs)
    assert calls == [1] * 16 and metric_value(metrics, 'lepton_batch_size_count') == 16


def test_oversize_and_malformed_requests_are_refused_and_the_server_stays_up():
    app = create_app(make_predictor(), max_inputs_per_request=8, max_text_chars=100, max_body_bytes=4096)
    with ServerThread(app) as s:
        post = lambda **kw: httpx.post(f'{s.url}/v1/predict', timeout=TIMEOUT, **kw)
        cases = {
            'too many inputs': (post(json={'inputs': ['a'] * 9}), 413, 'the limit is 8'),
            'text too long': (post(json={'inputs': ['ok', 'a' * 101]}), 413, 'inputs[1] has 101 characters'),
            'body too large': (post(json={'inputs': ['a' * 90] * 60}), 413, 'larger than 4096 bytes'),
            'not json': (post(content=b'{"inputs": [', headers={'content-type': 'application/json'}), 422, 'not valid JSON'),
            'not an object': (post(json=['a', 'b']), 422, 'must be a JSON object'),
            'missing inputs': (post(json={}), 422, "no 'inputs' field"),
            'unknown field': (post(json={'inputs': ['a'], 'extra': 1}), 422, "unknown field 'extra'"),
            'wrong type': (post(json={'inputs': ['a', 3]}), 422, 'inputs[1] must be a string'),
            'not a list': (post(json={'inputs': 'abc'}), 422, "'inputs' must be a list"),
            'empty': (post(json={'inputs': []}), 422, "'inputs' is empty"),
            'mixed kinds': (post(json={'inputs': ['a', {'x': 1}]}), 422, 'mixes texts and rows'),
        }
        for what, (r, status, msg) in cases.items():
            assert r.status_code == status, (what, r.status_code, r.text)
            assert msg in r.json()['error'], (what, r.json())
        assert httpx.get(f'{s.url}/healthz', timeout=TIMEOUT).status_code == 200
        r = post(json={'inputs': ['still', 'serving']})
        assert r.status_code == 200 and len(r.json()['predictions']) == 2
        metrics = httpx.get(f'{s.url}/metrics', timeout=TIMEOUT).text
    assert metric_value(metrics, 'lepton_requests_total', route='/v1/predict', status='413') == 3
    assert metric_value(metrics, 'lepton_requests_total', route='/v1/predict', status='422') == 8
    assert metric_value(metrics, 'lepton_predictions_total') == 2     # refused requests never reach the model


def test_a_failing_batch_fails_only_its_requests():
    pred = make_predictor(fail_on='boom', delay_s=0.01)
    bodies = [{'inputs': [f'good {i}']} for i in range(15)]
    bodies.insert(7, {'inputs': ['fine', 'boom here']})
    with ServerThread(create_app(pred, max_wait_ms=30)) as s:
        rs = post_many(s.url, bodies)
        status = [r.status_code for r in rs]
        assert status[7] == 500 and status.count(200) == 15, status
        err = rs[7].json()['error']
        assert 'prediction failed' in err and 'RuntimeError' in err and "cannot score 'boom'" in err
        assert [r.json()['predictions'][0]['chars'] for i, r in enumerate(rs) if i != 7] == [len(f'good {i}') for i in range(15)]
        # the server stays up and keeps serving
        assert httpx.post(f'{s.url}/v1/predict', json={'inputs': ['after']}, timeout=TIMEOUT).status_code == 200
        metrics = httpx.get(f'{s.url}/metrics', timeout=TIMEOUT).text
    assert metric_value(metrics, 'lepton_errors_total', kind='predict') == 1
    assert metric_value(metrics, 'lepton_requests_total', route='/v1/predict', status='500') == 1


def test_bad_predictor_output_is_a_clear_500():
    wrong_count = CallablePredictor(lambda xs: [{'label': 'a', 'score': 1.0}], name='broken')
    no_score = CallablePredictor(lambda xs: [{'label': 'a'} for _ in xs], name='noscore')
    for pred, msg in ((wrong_count, 'returned 1 predictions for 2 inputs'), (no_score, "must be a dict with 'label' and 'score'")):
        for batching in (True, False):
            with ServerThread(create_app(pred, batching=batching)) as s:
                r = httpx.post(f'{s.url}/v1/predict', json={'inputs': ['x', 'y']}, timeout=TIMEOUT)
                assert r.status_code == 500 and msg in r.json()['error'], r.text
                assert httpx.get(f'{s.url}/healthz', timeout=TIMEOUT).status_code == 200


def test_bearer_token_protects_v1_only():
    with ServerThread(create_app(make_predictor(), token='s3cret')) as s:
        url, body = s.url, {'inputs': ['hello']}
        r = httpx.post(f'{url}/v1/predict', json=body, timeout=TIMEOUT)
        assert r.status_code == 401 and 'bearer token' in r.json()['error'] and r.headers['www-authenticate'] == 'Bearer'
        assert httpx.post(f'{url}/v1/predict', json=body, headers={'Authorization': 'Bearer nope'}, timeout=TIMEOUT).status_code == 401
        assert httpx.post(f'{url}/v1/predict', json=body, headers={'Authorization': 's3cret'}, timeout=TIMEOUT).status_code == 401
        assert httpx.get(f'{url}/v1/metadata', timeout=TIMEOUT).status_code == 401
        ok = {'Authorization': 'Bearer s3cret'}
        assert httpx.post(f'{url}/v1/predict', json=body, headers=ok, timeout=TIMEOUT).status_code == 200
        assert httpx.get(f'{url}/v1/metadata', headers=ok, timeout=TIMEOUT).json()['server']['auth'] is True
        for open_route in ('/healthz', '/readyz', '/metrics'):
            assert httpx.get(f'{url}{open_route}', timeout=TIMEOUT).status_code == 200, open_route


def test_token_from_environment():
    with env_vars(LEPTON_API_TOKEN='from-env'): app = create_app(make_predictor())
    with ServerThread(app) as s:
        assert httpx.post(f'{s.url}/v1/predict', json={'inputs': ['a']}, timeout=TIMEOUT).status_code == 401
        r = httpx.post(f'{s.url}/v1/predict', json={'inputs': ['a']}, headers={'Authorization': 'Bearer from-env'}, timeout=TIMEOUT)
        assert r.status_code == 200
    with env_vars(LEPTON_API_TOKEN=None): app = create_app(make_predictor())
    with ServerThread(app) as s:
        assert httpx.post(f'{s.url}/v1/predict', json={'inputs': ['a']}, timeout=TIMEOUT).status_code == 200


def test_readyz_is_503_until_the_model_is_loaded():
    release = threading.Event()
    def load():
        assert release.wait(TIMEOUT), 'test never released the loader'
        return make_predictor(version='7')
    with ServerThread(create_app(load)) as s:
        r = httpx.get(f'{s.url}/readyz', timeout=TIMEOUT)
        assert r.status_code == 503 and r.json()['status'] == 'loading'
        assert httpx.get(f'{s.url}/healthz', timeout=TIMEOUT).status_code == 200
        r = httpx.post(f'{s.url}/v1/predict', json={'inputs': ['a']}, timeout=TIMEOUT)
        assert r.status_code == 503 and 'not loaded yet' in r.json()['error']
        release.set()
        wait_until(lambda: httpx.get(f'{s.url}/readyz', timeout=TIMEOUT).status_code == 200, what='readyz 200')
        assert httpx.post(f'{s.url}/v1/predict', json={'inputs': ['a']}, timeout=TIMEOUT).json()['version'] == '7'


def test_a_failing_loader_keeps_readyz_503_with_the_reason():
    def load(): raise FileNotFoundError('no bundle at /models/x')
    with ServerThread(create_app(load)) as s:
        wait_until(lambda: 'no bundle' in httpx.get(f'{s.url}/readyz', timeout=TIMEOUT).text, what='load error')
        assert httpx.get(f'{s.url}/readyz', timeout=TIMEOUT).status_code == 503
        r = httpx.post(f'{s.url}/v1/predict', json={'inputs': ['a']}, timeout=TIMEOUT)
        assert r.status_code == 503 and 'FileNotFoundError' in r.json()['error']
        assert metric_value(httpx.get(f'{s.url}/metrics', timeout=TIMEOUT).text, 'lepton_errors_total', kind='load') >= 1


def test_hot_reload_swaps_the_version_and_in_flight_batches_finish_on_the_old_one():
    live = {'version': '1'}
    loads, v1_calls = [], []
    def load():
        v = live['version']; loads.append(v)
        return make_predictor(version=v, delay_s=0.6 if v == '1' else 0.0,   # version 1 is slow, to be caught in flight
                              calls=v1_calls if v == '1' else None)
    app = create_app(load, watch=lambda: live['version'], reload_every_s=0.05)
    with ServerThread(app) as s, concurrent.futures.ThreadPoolExecutor(1) as ex:
        wait_until(lambda: httpx.get(f'{s.url}/readyz', timeout=TIMEOUT).status_code == 200, what='first load')
        slow = ex.submit(httpx.post, f'{s.url}/v1/predict', json={'inputs': ['in flight']}, timeout=TIMEOUT)
        wait_until(lambda: len(v1_calls) >= 1, what='a batch running on version 1')
        live['version'] = '2'
        wait_until(lambda: app.state.lepton.predictor.version == '2', what='reload')
        r2 = httpx.post(f'{s.url}/v1/predict', json={'inputs': ['after']}, timeout=TIMEOUT)
        r1 = slow.result(TIMEOUT)
        meta = httpx.get(f'{s.url}/v1/metadata', timeout=TIMEOUT).json()
        metrics = httpx.get(f'{s.url}/metrics', timeout=TIMEOUT).text
    assert r1.status_code == 200 and r1.json()['version'] == '1'    # started on v1, finished on v1
    assert r2.status_code == 200 and r2.json()['version'] == '2' and meta['version'] == '2'
    assert loads == ['1', '2']                                        # an unchanged key never reloads
    assert metric_value(metrics, 'lepton_model_reloads_total') == 1
    assert metric_value(metrics, 'lepton_model_info', version='2') == 1 and metric_value(metrics, 'lepton_model_info', version='1') == 0


def test_watch_errors_do_not_stop_serving():
    state = {'n': 0}
    def watch():
        state['n'] += 1
        if state['n'] > 1: raise ConnectionError('registry unreachable')
        return 'k1'
    app = create_app(lambda: make_predictor(), watch=watch, reload_every_s=0.02)
    with ServerThread(app) as s:
        wait_until(lambda: state['n'] > 3, what='watch polls')
        assert httpx.post(f'{s.url}/v1/predict', json={'inputs': ['a']}, timeout=TIMEOUT).status_code == 200
        assert metric_value(httpx.get(f'{s.url}/metrics', timeout=TIMEOUT).text, 'lepton_errors_total', kind='watch') >= 2


def test_on_prediction_runs_off_the_request_path():
    records, gate = [], threading.Event()
    def hook(recs):
        assert gate.wait(TIMEOUT), 'test never opened the gate'
        records.extend(recs)
    app = create_app(make_predictor(version='3'), on_prediction=hook)
    with ServerThread(app) as s:
        r = httpx.post(f'{s.url}/v1/predict', json={'inputs': ['queue', 'rhythm']}, timeout=TIMEOUT)
        assert r.status_code == 200 and records == []        # answered while the hook is still blocked
        gate.set()
        wait_until(lambda: len(records) == 2, what='hook records')
    assert [(x['input'], x['label'], x['version'], x['model']) for x in records] == \
           [('queue', 'vowels', '3', 'vowels'), ('rhythm', 'consonants', '3', 'vowels')]
    assert all(x['latency_ms'] > 0 and 0 < x['score'] <= 1 and x['ts'] > 0 for x in records)


def test_a_failing_hook_is_counted_not_fatal():
    def hook(recs): raise ValueError('log is full')
    with ServerThread(create_app(make_predictor(), on_prediction=hook)) as s:
        for _ in range(3): assert httpx.post(f'{s.url}/v1/predict', json={'inputs': ['a']}, timeout=TIMEOUT).status_code == 200
        wait_until(lambda: metric_value(httpx.get(f'{s.url}/metrics', timeout=TIMEOUT).text, 'lepton_errors_total', kind='hook') == 3,
                   what='hook errors counted')


def test_graceful_shutdown_finishes_in_flight_requests():
    app = create_app(make_predictor(delay_s=0.3), max_batch=4, max_wait_ms=5)
    s = ServerThread(app).start()
    url = s.url
    with concurrent.futures.ThreadPoolExecutor(8) as ex:
        futs = [ex.submit(httpx.post, f'{url}/v1/predict', json={'inputs': [f'req {i}']}, timeout=TIMEOUT) for i in range(8)]
        wait_until(lambda: app.state.lepton.in_flight >= 8, what='8 requests in flight')
        s.stop()                                       # 8 inputs at 4 per 0.3 s batch: most are still queued
        rs = [f.result(TIMEOUT) for f in futs]
    assert [r.status_code for r in rs] == [200] * 8
    assert [r.json()['predictions'][0]['chars'] for r in rs] == [len(f'req {i}') for i in range(8)]
    with pytest.raises(httpx.TransportError): httpx.get(f'{url}/healthz', timeout=2)


def test_server_thread_url_and_errors():
    s = ServerThread(make_predictor())              # a bare Predictor is served with the defaults
    with pytest.raises(LeptonError, match='not started'): s.url
    with s:
        assert s.url.startswith('http://127.0.0.1:') and s.port > 0
        assert httpx.get(f'{s.url}/healthz', timeout=TIMEOUT).status_code == 200
    busy = ServerThread(create_app(make_predictor())).start()
    try:
        with pytest.raises(LeptonError, match='did not start'): ServerThread(create_app(make_predictor()), port=busy.port).start()
    finally: busy.stop()


def test_create_app_refuses_bad_arguments():
    with pytest.raises(LeptonError, match='needs a Predictor'): create_app(42)
    with pytest.raises(LeptonError, match='needs a loader'): create_app(make_predictor(), watch=lambda: 1)
    with pytest.raises(LeptonError, match='has no name'): check_predictor(object())
    with pytest.raises(LeptonError, match='must be positive'): create_app(make_predictor(), max_batch=0)


def test_micro_batcher_without_http():
    seen = []
    def run(inputs): seen.append(list(inputs)); return [x * 10 for x in inputs], 'info'
    async def go():
        b = MicroBatcher(run, max_batch=5, max_wait_ms=50)
        res = await asyncio.gather(*(b.submit([i, i + 100]) for i in range(6)), b.submit(list(range(12))))
        await b.close()
        return res
    res = asyncio.run(go())
    assert [r[0] for r in res[:6]] == [[i * 10, (i + 100) * 10] for i in range(6)]
    assert res[6] == ([x * 10 for x in range(12)], 'info')
    assert all(len(batch) <= 5 for batch in seen) and sum(map(len, seen)) == 24


@pytest.mark.parametrize('use_prometheus_client', [True, False])
def test_metrics_backends_write_the_same_samples(use_prometheus_client):
    if use_prometheus_client: pytest.importorskip('prometheus_client')
    m = ServerMetrics(use_prometheus_client=use_prometheus_client)
    assert m.backend == ('prometheus_client' if use_prometheus_client else 'builtin')
    m.request('/v1/predict', 'POST', 200, 0.003); m.request('/v1/predict', 'POST', 500, 0.2); m.request('/healthz', 'GET', 200, 0.0001)
    for n in (1, 3, 32): m.batch(n)
    m.error('predict'); m.in_flight(1); m.in_flight(1); m.in_flight(-1)
    m.model('clf', '1'); m.model('clf', 'a "quoted"\nversion', reloaded=True)
    t = m.render()
    assert metric_value(t, 'lepton_requests_total') == 3 and metric_value(t, 'lepton_requests_total', status='500') == 1
    assert metric_value(t, 'lepton_request_latency_seconds_bucket', route='/v1/predict', le='0.005') == 1
    assert metric_value(t, 'lepton_request_latency_seconds_count', route='/v1/predict') == 2
    assert metric_value(t, 'lepton_batch_size_bucket', le='2.0') == 1 and metric_value(t, 'lepton_batch_size_bucket', le='+Inf') == 3
    assert metric_value(t, 'lepton_batch_size_sum') == 36 and metric_value(t, 'lepton_predictions_total') == 36
    assert metric_value(t, 'lepton_errors_total', kind='predict') == 1 and metric_value(t, 'lepton_in_flight_requests') == 1
    assert metric_value(t, 'lepton_model_info', version='a "quoted"\nversion') == 1 and metric_value(t, 'lepton_model_info', version='1') == 0
    assert metric_value(t, 'lepton_model_reloads_total') == 1
    assert '# TYPE lepton_batch_size histogram' in t


def test_a_slow_prediction_times_out_with_504_and_the_server_stays_up():
    slow = {'on': True}
    def predict(xs):
        if slow['on']: time.sleep(1.0)
        return [{'label': 'x', 'score': 1.0} for _ in xs]
    for batching in (True, False):
        slow['on'] = True
        with ServerThread(create_app(CallablePredictor(predict), timeout_s=0.2, batching=batching)) as s:
            r = httpx.post(f'{s.url}/v1/predict', json={'inputs': ['a']}, timeout=TIMEOUT)
            assert r.status_code == 504 and 'longer than 0.2 s' in r.json()['error']
            slow['on'] = False   # the timed-out call still runs to its end in its thread; then the model is free again
            wait_until(lambda: httpx.post(f'{s.url}/v1/predict', json={'inputs': ['b']}, timeout=TIMEOUT).status_code == 200,
                       what='a fast answer after the timeout')
            assert metric_value(httpx.get(f'{s.url}/metrics', timeout=TIMEOUT).text, 'lepton_errors_total', kind='timeout') >= 1


def test_server_works_without_prometheus_client(monkeypatch):
    import sys
    monkeypatch.setitem(sys.modules, 'prometheus_client', None)     # as if it were not installed
    app = create_app(CallablePredictor(lambda xs: [{'label': 1, 'score': 0.5} for _ in xs]))
    assert app.state.metrics.backend == 'builtin'
    with ServerThread(app) as s:
        assert httpx.post(f'{s.url}/v1/predict', json={'inputs': ['a', 'b']}, timeout=TIMEOUT).status_code == 200
        t = httpx.get(f'{s.url}/metrics', timeout=TIMEOUT).text
    assert metric_value(t, 'lepton_batch_size_sum') == 2 and metric_value(t, 'lepton_requests_total', route='/v1/predict') == 1


def test_a_nan_score_fails_cleanly_and_only_answered_inputs_are_counted():
    good = make_predictor()
    def predict(texts):
        if any('nan' in t for t in texts): return [{'label': 'x', 'score': float('nan')} for _ in texts]
        return good.predict_batch(texts)
    with ServerThread(create_app(CallablePredictor(predict, name='nanny', version='1'), max_wait_ms=50)) as s:
        ok, bad = post_many(s.url, [{'inputs': ['aaa', 'bcd']}, {'inputs': ['nan']}])
        assert ok.status_code == 200 and len(ok.json()['predictions']) == 2
        assert bad.status_code >= 400 and 'not a finite number' in bad.text      # not a JSON crash after the answer was made
        assert httpx.get(f'{s.url}/healthz', timeout=TIMEOUT).status_code == 200
        assert metric_value(httpx.get(f'{s.url}/metrics', timeout=TIMEOUT).text, 'lepton_predictions_total') == 2


def test_a_request_split_over_batches_is_answered_by_one_model_version():
    calls = []
    def run(inputs):   # the first batch runs on version 1; a reload then swaps in version 2
        calls.append(len(inputs)); v = 'v1' if len(calls) == 1 else 'v2'
        return [f'{x}@{v}' for x in inputs], v
    async def go():
        b = MicroBatcher(run, max_batch=2, max_wait_ms=1)
        try: return await b.submit(['a', 'b', 'c', 'd'])
        finally: await b.close()
    outs, info = asyncio.run(go())
    assert info == 'v2' and outs == ['a@v2', 'b@v2', 'c@v2', 'd@v2']   # asked again rather than mixing versions


def test_an_input_the_model_refuses_gets_422_and_the_server_stays_up():
    good = make_predictor()
    def predict(texts):
        if any(not t.strip() for t in texts): raise LeptonError('Inputs [0] are empty: every input must be a non-empty text.')
        return good.predict_batch(texts)
    with ServerThread(create_app(CallablePredictor(predict, name='picky', version='1'))) as s:
        r = httpx.post(f'{s.url}/v1/predict', json={'inputs': ['   ']}, timeout=TIMEOUT)
        assert r.status_code == 422 and 'non-empty text' in r.json()['error']
        assert httpx.post(f'{s.url}/v1/predict', json={'inputs': ['fine']}, timeout=TIMEOUT).status_code == 200
        assert metric_value(httpx.get(f'{s.url}/metrics', timeout=TIMEOUT).text, 'lepton_errors_total', kind='bad_input') == 1
