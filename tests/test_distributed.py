"Two CPU processes (gloo) under torchrun / accelerate launch train to the same weights as one process with twice the batch."
import importlib.util, os, socket, subprocess, sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
TIMEOUT = 120
BS = 8  # per rank; the single-process reference uses 2 * BS

# The training script the launcher starts. `build` is also imported here to run the single-process reference.
SCRIPT = r'''
import os, sys, torch
from torch import nn
from lepton_nb.data.core import DataLoaders
from lepton_nb.train.learner import Learner
from lepton_nb.train.callbacks import CheckpointCB, ProgressCB, accuracy
from lepton_nb.train.distributed import DistributedCB

def build(bs, engine='torch', path='.'):
    "96 items (every 7th target ignored, so batches hold unequal numbers of real items), an MLP without dropout, fp32."
    g = torch.Generator().manual_seed(0)
    x = torch.randn(96, 8, generator=g); y = (x[:, :3].sum(1) > 0).long() + (x[:, 3] > 1).long()
    y[::7] = -100
    ds = torch.utils.data.TensorDataset(x, y)
    dls = DataLoaders.from_datasets(ds, ds, bs=bs, seed=3)
    torch.manual_seed(0); model = nn.Sequential(nn.Linear(8, 16), nn.Tanh(), nn.Linear(16, 3))
    return Learner(model, dls, lr=0.03, accum=2, precision='fp32', metrics=[accuracy], path=path,
                   cbs=[DistributedCB(engine), ProgressCB(plain=True), CheckpointCB(monitor=None)])

def result(learn):
    return {'weights': {k: v.detach().clone() for k, v in learn.model.state_dict().items()},
            'log': learn.recorder.history, 'losses': learn.recorder.losses}

if __name__ == '__main__':
    torch.set_num_threads(1)
    out, bs, engine, n_epoch = sys.argv[1], int(sys.argv[2]), sys.argv[3], int(sys.argv[4])
    learn = build(bs, engine, out).fit(n_epoch)
    torch.save({**result(learn), 'model_type': type(learn.model).__name__},
               f"{out}/rank{os.environ.get('RANK', '0')}.pt")
'''


def free_port() -> int:
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0)); return s.getsockname()[1]


@pytest.fixture()
def script(tmp_path, monkeypatch):
    "The script written to a tmp dir, and the module it defines, imported in this (single) process."
    monkeypatch.delenv('WORLD_SIZE', raising=False); monkeypatch.setenv('LEPTON_DEVICE', 'cpu')  # the reference runs here, on CPU too
    monkeypatch.syspath_prepend(str(ROOT))
    p = tmp_path/'ddp_train.py'; p.write_text(SCRIPT)
    spec = importlib.util.spec_from_file_location('ddp_train', p)
    mod = importlib.util.module_from_spec(spec); spec.loader.exec_module(mod)
    torch.set_num_threads(1)
    return p, mod


def launch(launcher, script, out, engine, n_epoch=2):
    env = {**os.environ, 'PYTHONPATH': str(ROOT), 'OMP_NUM_THREADS': '1', 'LEPTON_DEVICE': 'cpu'}
    env.pop('WORLD_SIZE', None)
    r = subprocess.run([*launcher, str(script), str(out), str(BS), engine, str(n_epoch)],
                       capture_output=True, text=True, env=env, timeout=TIMEOUT)
    assert r.returncode == 0, f'{r.stdout[-2000:]}\n{r.stderr[-4000:]}'
    return [torch.load(out/f'rank{i}.pt', weights_only=True) for i in range(2)]


def check_same_as_one_process(ranks, ref):
    for k, v in ref['weights'].items():
        assert torch.equal(ranks[0]['weights'][k], ranks[1]['weights'][k]), f'ranks differ on {k}'
        torch.testing.assert_close(ranks[0]['weights'][k], v, atol=1e-5, rtol=0)
    for got, want in zip(ranks[0]['log'], ref['log'], strict=True):  # epoch logs: reduced over ranks
        for key in ('train_loss', 'valid_loss', 'accuracy'): assert abs(got[key] - want[key]) < 1e-5, (key, got, want)
    torch.testing.assert_close(torch.tensor(ranks[0]['losses']), torch.tensor(ref['losses']), atol=1e-5, rtol=0)
    assert ranks[1]['log'] == [{**r, 'time': o['time']} for r, o in zip(ranks[0]['log'], ranks[1]['log'])]


def test_torchrun_two_ranks_equal_one_process_with_twice_the_batch(script, tmp_path):
    p, mod = script
    out = tmp_path/'ddp'; out.mkdir()
    ranks = launch([sys.executable, '-m', 'torch.distributed.run', '--nproc_per_node', '2',
                    '--master_addr', '127.0.0.1', '--master_port', str(free_port())], p, out, 'torch')
    assert ranks[0]['model_type'] == ranks[1]['model_type'] == 'Sequential'  # unwrapped after the fit
    ref = mod.result(mod.build(2 * BS, path=tmp_path/'one').fit(2))
    check_same_as_one_process(ranks, ref)

    # rank 0 wrote the checkpoint, keys without `module.`; one process resumes from it exactly
    ckpt = torch.load(out/'checkpoints'/'last.pt', weights_only=True)
    assert list(ckpt['model']) == ['0.weight', '0.bias', '2.weight', '2.bias'] and ckpt['epoch'] == 2
    resumed = mod.result(mod.build(2 * BS, path=tmp_path/'resumed').fit(3, resume=out/'checkpoints'))
    straight = mod.result(mod.build(2 * BS, path=tmp_path/'straight').fit(3))
    for k, v in straight['weights'].items(): torch.testing.assert_close(resumed['weights'][k], v, atol=1e-5, rtol=0)


def test_accelerate_launch_with_accelerate_engine(script, tmp_path):
    pytest.importorskip('accelerate')
    p, mod = script
    out = tmp_path/'acc'; out.mkdir()
    ranks = launch([sys.executable, '-m', 'accelerate.commands.launch', '--multi_gpu', '--num_processes', '2',
                    '--num_machines', '1', '--mixed_precision', 'no', '--dynamo_backend', 'no',
                    '--main_process_port', str(free_port())], p, out, 'accelerate')
    ref = mod.result(mod.build(2 * BS, path=tmp_path/'one').fit(2))
    check_same_as_one_process(ranks, ref)
