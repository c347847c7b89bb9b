"Recommender task end to end on tiny files: bad input is refused with a clear message and leaves nothing half-written."
import json
import numpy as np, pandas as pd, pytest
import fastcore.test as T
from lepton_nb.core import LeptonError
from lepton_nb.data.recsys import load_interactions, validate_interactions, IdMap
from lepton_nb.models.recsys import RecConfig
from lepton_nb.tasks.recsys import train_recommender, evaluate_recommender_bundle, recommend_router
from lepton_nb.deploy.bundle import load_bundle

FAST = RecConfig(epochs=3, bs=64, n_factors=4, als_iters=2)

@pytest.fixture
def ratings(tmp_path):
    rng = np.random.default_rng(0)
    df = pd.DataFrame({'uid': np.repeat([f'u{k}' for k in range(20)], 5),
                       'sku': [f'i{j}' for j in rng.integers(0, 15, 100)],
                       'stars': rng.integers(1, 6, 100)}).drop_duplicates(['uid', 'sku'])
    p = tmp_path/'r.csv'; df.to_csv(p, index=False); return p

def test_missing_user_column(ratings, tmp_path):
    with pytest.raises(LeptonError, match=r"no column\(s\) \['user'\]"):
        train_recommender(ratings, tmp_path/'b', 'user', 'sku', 'stars', cfg=FAST)
    assert not (tmp_path/'b').exists()

def test_non_numeric_rating(ratings, tmp_path):
    df = pd.read_csv(ratings, dtype=str); df.loc[3, 'stars'] = 'five'; p = tmp_path/'bad.csv'; df.to_csv(p, index=False)
    with pytest.raises(LeptonError, match="row 3 is 'five', not a number"):
        train_recommender(p, tmp_path/'b', 'uid', 'sku', 'stars', cfg=FAST)
    assert not (tmp_path/'b').exists()

def test_empty_file(tmp_path):
    p = tmp_path/'empty.csv'; p.write_text('')
    with pytest.raises(LeptonError, match='is empty'): train_recommender(p, tmp_path/'b', 'uid', 'sku', cfg=FAST)
    p.write_text('uid,sku\n')
    with pytest.raises(LeptonError, match='no rows'): load_interactions(p, 'uid', 'sku')

def test_train_evaluate_serve_and_fallback(ratings, tmp_path):
    out, m = train_recommender(ratings, tmp_path/'b', 'uid', 'sku', 'stars', cfg=FAST)
    T.test_eq(set(['rmse', 'mae', 'ndcg@10', 'recall@10']) <= set(m), True)
    rec = load_bundle(out).model
    T.test_eq(rec.kind, 'mf')
    r = rec.recommend('never-seen-user', k=3)
    T.test_eq(len(r), 3); T.test_eq(rec.last_fallback, 'popularity')
    T.test_eq(rec.recommend('u0', k=3) != r or rec.last_fallback is None, True)
    ev = evaluate_recommender_bundle(out, ratings)
    T.test_eq(ev['ndcg@10'] >= 0, True)
    # files: JSON id maps and safetensors, no pickle
    names = sorted(p.name for p in (out/'weights').iterdir())
    T.test_eq(names, ['items.json', 'users.json', 'vectors.safetensors'])
    T.test_eq(len(json.loads((out/'weights'/'users.json').read_text())['keys']), 20)

def test_failed_retrain_keeps_old_bundle(ratings, tmp_path):
    out, _ = train_recommender(ratings, tmp_path/'b', 'uid', 'sku', cfg=FAST)   # implicit -> ALS
    before = sorted((p.name, p.stat().st_size) for p in out.rglob('*'))
    with pytest.raises(LeptonError, match='needs an item table'):
        train_recommender(ratings, out, 'uid', 'sku', model='hybrid', cfg=FAST)
    T.test_eq(sorted((p.name, p.stat().st_size) for p in out.rglob('*')), before)
    T.test_eq(load_bundle(out).model.kind, 'als')

def test_http_route_unknown_user(ratings, tmp_path):
    fastapi = pytest.importorskip('fastapi')
    from fastapi.testclient import TestClient
    out, _ = train_recommender(ratings, tmp_path/'b', 'uid', 'sku', model='bpr', cfg=FAST)
    rec = load_bundle(out).model
    app = fastapi.FastAPI(); app.include_router(recommend_router(lambda: rec))
    c = TestClient(app)
    got = c.post('/v1/recommend', json={'user': 'ghost', 'k': 4}).json()
    T.test_eq((len(got['items']), got['fallback']), (4, 'popularity'))
    got = c.post('/v1/recommend', json={'user': 'u1', 'k': 4, 'exclude_seen': True}).json()
    seen = set(rec.items.decode(rec.seen(int(rec.users.encode(['u1'])[0]))))
    T.test_eq(got['fallback'], None); T.test_eq(set(x['item'] for x in got['items']) & seen, set())
    T.test_eq(c.post('/v1/recommend', json={'user': 'u1', 'k': -1}).status_code, 422)

def test_registered_recommender_served_with_the_model_server(ratings, tmp_path):
    "A recsys bundle registers and serves like the others: the same server answers POST /v1/recommend."
    import httpx
    from lepton_nb.deploy.registry import Registry
    from lepton_nb.deploy.serving import bundle_app
    from lepton_nb.deploy.server import ServerThread
    path, _ = train_recommender(ratings, tmp_path/'b', 'uid', 'sku', 'stars', cfg=FAST)
    reg = Registry(tmp_path/'registry'); v = reg.register(path, 'shop'); reg.set_alias('shop', 'production', v)
    with ServerThread(bundle_app('shop@production', registry=reg)) as s:
        r = httpx.post(f'{s.url}/v1/recommend', json={'user': 'u1', 'k': 5, 'exclude_seen': True}, timeout=30)
        T.test_eq(r.status_code, 200); body = r.json()
        T.test_eq(len(body['items']), 5); T.test_eq((body['model'], body['version']), ('shop', '1'))
        assert all({'item', 'score'} <= set(x) for x in body['items'])
        r = httpx.post(f'{s.url}/v1/recommend', json={'user': 'stranger', 'k': 3}, timeout=30)
        T.test_eq(r.json()['fallback'], 'popularity')
        T.test_eq(httpx.post(f'{s.url}/v1/recommend', json={'user': 'u1', 'k': 0}, timeout=30).status_code, 422)

def test_sequential_bundle_served_with_recent_items(tmp_path):
    "A sasrec bundle (timestamps required) registers and serves; `recent` items re-read the history on the server."
    import httpx
    from lepton_nb.models.sequential import SASRecConfig
    from lepton_nb.deploy.registry import Registry
    from lepton_nb.deploy.serving import bundle_app
    from lepton_nb.deploy.server import ServerThread
    rng = np.random.default_rng(0)
    rows = [(f'u{u}', f'i{(s + t) % 12}', t) for u in range(30) for s in [int(rng.integers(12))] for t in range(6)]
    p = tmp_path/'seq.csv'; pd.DataFrame(rows, columns=['uid', 'sku', 't']).to_csv(p, index=False)
    with pytest.raises(LeptonError, match='pass time_col='): train_recommender(p, tmp_path/'b', 'uid', 'sku', model='sasrec')
    assert not (tmp_path/'b').exists()
    cfg = SASRecConfig(max_len=6, n_factors=8, n_layers=1, n_heads=1, epochs=2, bs=16)
    path, m = train_recommender(p, tmp_path/'b', 'uid', 'sku', time_col='t', model='sasrec', cfg=cfg)
    T.test_eq(set(['ndcg@10', 'recall@10']) <= set(m), True)
    reg = Registry(tmp_path/'registry'); v = reg.register(path, 'next'); reg.set_alias('next', 'production', v)
    with ServerThread(bundle_app('next@production', registry=reg)) as s:
        r = httpx.post(f'{s.url}/v1/recommend', json={'user': 'u1', 'k': 3, 'recent': ['i3', 'not-an-item']}, timeout=30)
        T.test_eq(r.status_code, 200); body = r.json()
        T.test_eq((len(body['items']), body['fallback']), (3, None)); assert 'i3' not in [x['item'] for x in body['items']]
        r = httpx.post(f'{s.url}/v1/recommend', json={'user': 'stranger', 'k': 3, 'recent': ['i3']}, timeout=30)
        T.test_eq(r.json()['fallback'], None)
        T.test_eq(httpx.post(f'{s.url}/v1/recommend', json={'user': 'stranger', 'k': 3}, timeout=30).json()['fallback'], 'popularity')
    # the same through the CLI: `recommend --recent` reads the items picked since training
    import subprocess, shutil
    r = subprocess.run([shutil.which('lepton-nb'), 'recommend', str(path), '--user', 'u1', '-k', '3', '--recent', 'i3'],
                       capture_output=True, text=True, timeout=300)
    T.test_eq(r.returncode, 0); out = json.loads(r.stdout)
    T.test_eq((len(out['items']), out['fallback']), (3, None)); assert 'i3' not in [x['item'] for x in out['items']]
