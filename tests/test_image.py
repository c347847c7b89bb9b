"Image task end to end: a multi-class .npz through train and evaluate, bad input refused with nothing half-written, a served image bundle over HTTP."
import json, re

import httpx
import numpy as np
import pytest
import torch

from lepton_nb.core import LeptonError
from lepton_nb.data.vision import image_to_base64
from lepton_nb.deploy.bundle import load_bundle
from lepton_nb.deploy.server import ServerThread, create_app
from lepton_nb.tasks.image import ImageClassifier, ImageTrainConfig, evaluate_image_bundle, train_image_classifier

torch.set_num_threads(1)
CLASSES = ['horizontal', 'vertical', 'square']
FAST = ImageTrainConfig(model='cnn', epochs=8, patience=8, bs=32, quiet=True, augment='none', model_kw={'widths': [8, 16, 32]})


def shapes(n, seed, size=16):
    "Grey images with a horizontal bar (0), a vertical bar (1) or a square (2) at a random place; uint8 (n, size, size), labels (n,)."
    g = np.random.default_rng(seed)
    x = g.normal(50, 10, (n, size, size)).clip(0, 255)
    y = np.arange(n) % 3
    g.shuffle(y)
    for i, c in enumerate(y):
        h, w = ((2, 8), (8, 2), (5, 5))[c]
        r, s = g.integers(0, size - h), g.integers(0, size - w)
        x[i, r:r + h, s:s + w] = 220
    return x.astype(np.uint8), y


def write_npz(path, **override):
    arrays = {}
    for split, n, seed in (('train', 120, 0), ('val', 30, 1), ('test', 45, 2)):
        x, y = shapes(n, seed)
        arrays[f'{split}_images'], arrays[f'{split}_labels'] = x, y.reshape(-1, 1)   # MedMNIST's (N, 1) labels
    arrays.update(override)
    np.savez(path, **{k: v for k, v in arrays.items() if v is not None})
    return path


@pytest.fixture(scope='module')
def trained(tmp_path_factory):
    d = tmp_path_factory.mktemp('image')
    npz = write_npz(d/'shapes.npz')
    path, met = train_image_classifier(npz, d/'bundle', FAST, classes=CLASSES)
    return npz, path, met


def test_multiclass_npz_trains_and_evaluates_unchanged(trained):
    npz, path, met = trained
    assert met['roc_auc'] > 0.9 and met['accuracy'] > 0.7, met
    assert 'sensitivity' not in met and met['n'] == 45
    assert list(met['per_class'].index) == CLASSES
    ev = evaluate_image_bundle(path, npz)
    assert ev['roc_auc'] == pytest.approx(met['roc_auc']) and ev['accuracy'] == pytest.approx(met['accuracy'])
    lo, hi = ev['ci']['roc_auc'][1:]
    assert lo <= ev['roc_auc'] <= hi
    json.dumps({k: v for k, v in ev.items() if not hasattr(v, 'to_dict')})       # what `evaluate --json` prints
    val = evaluate_image_bundle(path, npz, split='val')
    assert val['n'] == 30 and val['split'] == 'val'
    m = json.loads((path/'manifest.json').read_text())
    assert m['task'] == 'image' and m['model']['kind'] == 'cnn' and m['schema']['labels'] == CLASSES
    assert 'NOT A MEDICAL DEVICE' in (path/'card.md').read_text()


def test_folder_gets_a_stratified_split_and_binary_metrics(tmp_path):
    from PIL import Image
    x, y = shapes(90, 5)
    for i, (a, c) in enumerate(zip(x, y)):
        if c == 2: continue
        (tmp_path/'data'/CLASSES[c]).mkdir(parents=True, exist_ok=True)
        Image.fromarray(a).save(tmp_path/'data'/CLASSES[c]/f'{i:03d}.png')
    path, met = train_image_classifier(tmp_path/'data', tmp_path/'bundle', FAST)
    for k in ('roc_auc', 'accuracy', 'sensitivity', 'specificity', 'threshold'): assert 0 <= met[k] <= 1, (k, met[k])
    assert met['positive_class'] == 'vertical'                                    # class 1 by default
    ev = evaluate_image_bundle(path, tmp_path/'data')                            # the same split again, from the manifest
    assert ev['n'] == met['n'] and ev['roc_auc'] == pytest.approx(met['roc_auc'])


BAD_NPZ = {
    'missing split key': ({'val_images': None, 'val_labels': None}, "has no ['val_images', 'val_labels']"),
    'wrong shape': ({'train_images': np.zeros((120, 256), np.uint8)}, 'shape (120, 256)'),
    'labels out of range': ({'test_labels': np.full((45, 1), 7)}, 'test label row 0 is 7, out of range'),
}


@pytest.mark.parametrize('case', list(BAD_NPZ))
def test_bad_npz_is_refused_and_nothing_is_written(tmp_path, trained, case):
    override, message = BAD_NPZ[case]
    bad = write_npz(tmp_path/'bad.npz', **override)
    with pytest.raises(LeptonError, match=re.escape(message)):
        train_image_classifier(bad, tmp_path/'new', FAST, classes=CLASSES)
    assert not (tmp_path/'new').exists()
    _, path, _ = trained
    before = (path/'hashes.json').read_text()
    with pytest.raises(LeptonError): train_image_classifier(bad, path, FAST, classes=CLASSES)   # over an existing bundle
    assert (path/'hashes.json').read_text() == before
    load_bundle(path)                                                                           # still verifies


def test_empty_folder_and_corrupt_png_are_refused(tmp_path):
    from PIL import Image
    (tmp_path/'empty').mkdir()
    with pytest.raises(LeptonError, match='no class sub-folders'):
        train_image_classifier(tmp_path/'empty', tmp_path/'out', FAST)
    x, y = shapes(12, 3)
    for c in ('a', 'b'):
        (tmp_path/'data'/c).mkdir(parents=True)
        for i in range(4): Image.fromarray(x[i]).save(tmp_path/'data'/c/f'{i}.png')
    (tmp_path/'data'/'b'/'broken.png').write_bytes(b'\x89PNG\r\n\x1a\n' + b'\x00' * 20)
    with pytest.raises(LeptonError, match=r'broken\.png is not a readable image'):
        train_image_classifier(tmp_path/'data', tmp_path/'out', FAST)
    (tmp_path/'data'/'a'/'0.png').unlink(); (tmp_path/'data'/'a'/'1.png').unlink(); (tmp_path/'data'/'a'/'2.png').unlink()
    (tmp_path/'data'/'b'/'broken.png').unlink()
    with pytest.raises(LeptonError, match='Class 0 has 1 image'):
        train_image_classifier(tmp_path/'data', tmp_path/'out', FAST)
    assert not (tmp_path/'out').exists()


def test_served_image_bundle_answers_base64_pngs_over_http(trained):
    npz, path, _ = trained
    clf = load_bundle(path).model
    assert isinstance(clf, ImageClassifier)
    clf.name, clf.version = 'shapes', '1'
    z = np.load(npz)
    imgs = z['test_images'][:6]
    expected = clf.predict(imgs)
    with ServerThread(create_app(clf, max_wait_ms=2)) as s:
        r = httpx.post(s.url + '/v1/predict', json={'inputs': [image_to_base64(a) for a in imgs]}, timeout=30)
        assert r.status_code == 200, r.text
        body = r.json()
        assert body['model'] == 'shapes' and body['version'] == '1'
        assert [p['label'] for p in body['predictions']] == expected
        for p in body['predictions']:
            assert 0 <= p['score'] <= 1 and p['score'] == pytest.approx(max(p['probabilities'].values()), abs=1e-5)
        r = httpx.post(s.url + '/v1/predict', json={'inputs': ['data:image/png;base64,' + image_to_base64(imgs[0]), 'bm90IGFuIGltYWdl']}, timeout=30)
        first, second = r.json()['predictions']
        assert r.status_code == 200 and first['label'] == expected[0]
        assert second['label'] is None and 'not a readable image' in second['error']
        assert httpx.get(s.url + '/v1/metadata', timeout=10).json()['metadata']['task'] == 'image'
