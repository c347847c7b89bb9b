"Several processes register bundles into one registry at the same time: every version distinct, contiguous, and intact."
import json, os, subprocess, sys, time
from pathlib import Path

import pytest
import torch
from torch import nn

from lepton_nb.core import Manifest
from lepton_nb.deploy.bundle import factory_spec, load_bundle, save_bundle, verify_bundle
from lepton_nb.deploy.registry import Registry

ROOT = Path(__file__).resolve().parents[1]
N_PROCS, N_EACH = 4, 6

# Each worker waits for the 'go' file (so all start together once torch is imported), then registers
# its own bundle N times and moves its alias to each new version: both the version counter and the
# read-modify-write of aliases.json are contended.
WORKER = r'''
import json, sys, time
from pathlib import Path
root, bundle, name, go, out, n, lock = sys.argv[1:]
from lepton_nb.deploy.registry import Registry
reg = Registry(root, lock=lock, timeout=120)
alias = Path(bundle).name
Path(out + '.ready').touch()
while not Path(go).exists(): time.sleep(0.002)
got = []
for _ in range(int(n)):
    v = reg.register(bundle, name)
    got.append(v)
    reg.set_alias(name, alias, v)
Path(out).write_text(json.dumps(got))
'''


def make_bundles(tmp):
    "One small bundle per worker, with different weights so each version can be traced to its writer."
    paths = []
    for i in range(N_PROCS):
        torch.manual_seed(i)
        man = Manifest(task='tabular', schema={'labels': ['no', 'yes']}, metrics={'worker': i},
                       model=factory_spec(nn.Linear, in_features=8, out_features=2))
        paths.append(save_bundle(tmp/f'w{i}', nn.Linear(8, 2), man))
    return paths


@pytest.mark.parametrize('lock', ['flock', 'excl'] if os.name == 'posix' else ['excl'])
def test_concurrent_register(tmp_path, lock):
    bundles = make_bundles(tmp_path)
    digests = {str(p): load_bundle(p, lazy=True).digest for p in bundles}
    root, go = tmp_path/'registry', tmp_path/'go'
    env = {**os.environ, 'PYTHONPATH': os.pathsep.join([str(ROOT), os.environ.get('PYTHONPATH', '')]),
           'OMP_NUM_THREADS': '1', 'MKL_NUM_THREADS': '1'}
    outs = [tmp_path/f'out{i}.json' for i in range(N_PROCS)]
    procs = [subprocess.Popen([sys.executable, '-c', WORKER, str(root), str(b), 'shared', str(go), str(o), str(N_EACH), lock],
                              env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for b, o in zip(bundles, outs)]
    try:
        deadline = time.monotonic() + 120
        while not all(Path(str(o) + '.ready').exists() for o in outs):
            assert time.monotonic() < deadline, 'workers did not start'
            assert all(p.poll() is None for p in procs), [p.communicate() for p in procs if p.poll() is not None]
            time.sleep(0.01)
        go.touch()
        for p in procs:
            _, err = p.communicate(timeout=120)
            assert p.returncode == 0, err
    finally:
        for p in procs:
            if p.poll() is None: p.kill()

    got = {str(b): json.loads(o.read_text()) for b, o in zip(bundles, outs)}
    every = [v for vs in got.values() for v in vs]
    total = N_PROCS * N_EACH
    assert len(every) == len(set(every)) == total                 # all distinct, nothing lost
    assert sorted(every) == list(range(1, total + 1))             # contiguous from 1
    reg = Registry(root)
    assert reg.versions('shared') == list(range(1, total + 1))
    assert all(vs == sorted(vs) for vs in got.values())           # each writer saw increasing versions
    for src, vs in got.items():
        for v in vs:                                              # each version verifies and holds its writer's bundle
            files = verify_bundle(reg.resolve(f'shared@{v}'))
            assert load_bundle(reg.resolve(f'shared@{v}'), lazy=True).digest == digests[src]
            assert files == verify_bundle(src)
    aliases = reg.aliases('shared')                               # no alias update lost
    assert aliases == {Path(src).name: max(vs) for src, vs in got.items()}
    meta = json.loads((root/'shared'/'versions.json').read_text())
    assert sorted(map(int, meta)) == list(range(1, total + 1))
    assert not [p.name for p in (root/'shared').iterdir() if p.name.startswith('.incoming')]
    model = reg.load(f'shared@{total}', allow=['torch.nn']).model
    assert model(torch.zeros(1, 8)).shape == (1, 2)
