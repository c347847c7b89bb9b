"""Full fine-tune of the bundled MiniLM on BANKING77 (10,003 train rows, 77 intents), test accuracy on test.csv (3,080).

Settings (the issue's): 5 epochs, AdamW lr 1e-4 (weight decay 0.01 on weight matrices), batch 32, max length 64,
mean pooling, 6% linear warm-up then linear decay, grad clipping 1.0, length-bucketed batches, lepton_nb's default
precision (bf16 autocast on a CPU with avx512_bf16). Then a LoRA run (r=16, alpha=32, lr 1e-3, same epochs and
schedule; the head trains fully) beside it. No model selection on the test set: the model after the last epoch is
evaluated once. With `--valid-pct 0.1` a stratified 10% of train is held out and reported each epoch instead.

Run:  PYTHONPATH=/work/main python bench/finetune_banking77.py [--epochs 5 --no-lora]
Writes /tmp/lepton_bench/finetune_banking77.json (checkpoints, if any, go to /tmp too; nothing big to the repo).
Last line: `accuracy=<x> minutes=<x> lora_accuracy=<y>`.
"""
from __future__ import annotations
import argparse, json, os, platform, time
from pathlib import Path

import torch
from torch.utils.data import DataLoader

from lepton_nb.data.text import (BucketBatchSampler, PadCollate, TextDataset, load_banking77, stratified_split,
                                 text_dataloaders)
from lepton_nb.models.text import HFClassifier
from lepton_nb.train.learner import Learner
from lepton_nb.train.callbacks import GradClipCB, ProgressCB, ScheduleCB, accuracy, warmup_linear

OUT = Path('/tmp/lepton_bench')


def test_loader(test_df, dls, tokenizer, max_len:int, bs:int=64):
    "The test set as a DataLoader sorted by length (little padding); labels mapped with the training label2id."
    l2i = dls.meta['label2id']
    if unseen := set(test_df.label) - set(l2i): raise SystemExit(f'test labels never seen in train: {sorted(unseen)[:5]}')
    ds = TextDataset(test_df.text, test_df.label.map(l2i).to_numpy('int64'), tokenizer, max_len)
    return DataLoader(ds, batch_sampler=BucketBatchSampler(ds.lengths, bs, shuffle=False, bucket_size=len(ds)),
                      collate_fn=PadCollate(ds.pad_id))


def finetune(train_df, valid_df, test_df, a, lora:bool) -> dict:
    "Fine-tune one model; returns accuracy, times and settings."
    torch.manual_seed(a.seed)
    model = HFClassifier(77, pooling='mean', dropout=0.1)
    lr = a.lora_lr if lora else a.lr
    if lora: model.lora(r=a.lora_r, alpha=2 * a.lora_r)
    dls = text_dataloaders(train_df, valid_df, model.tokenizer, bs=a.bs, max_len=a.max_len, seed=a.seed, bucket=True)
    learn = Learner(model, dls, lr=lr, wd=0.01, metrics=[accuracy], seed=a.seed, path=OUT/('lora' if lora else 'full'),
                    cbs=[GradClipCB(1.0), ScheduleCB(warmup_linear(a.warmup)), ProgressCB(plain=True)])
    t0 = time.perf_counter()
    learn.fit(a.epochs)
    t_fit = time.perf_counter() - t0
    res = learn.validate(test_loader(test_df, dls, model.tokenizer, a.max_len))
    t_all = time.perf_counter() - t0
    out = {'run': f'LoRA r={a.lora_r}' if lora else 'full', 'accuracy': res['accuracy'], 'test_loss': res['valid_loss'],
           'fit_minutes': t_fit / 60, 'minutes': t_all / 60, 'precision': str(learn.mixed_precision.dtype).split('.')[-1],
           'trainable_share': model.trainable_share(), 'steps': learn.step, 'lr': lr, 'epochs': a.epochs,
           'n_train': len(train_df), 'n_valid': 0 if valid_df is None else len(valid_df), 'n_test': len(test_df),
           'history': learn.recorder.history}
    print(f"{out['run']}: test accuracy {out['accuracy']:.4f} (loss {out['test_loss']:.4f}), fit {out['fit_minutes']:.1f} min, "
          f"fit + test {out['minutes']:.1f} min, {out['steps']} steps, {out['precision']}", flush=True)
    return out


def main():
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--epochs', type=int, default=5)
    p.add_argument('--lr', type=float, default=1e-4)
    p.add_argument('--bs', type=int, default=32)
    p.add_argument('--max-len', type=int, default=64)
    p.add_argument('--warmup', type=float, default=0.06, help='warm-up share of all steps')
    p.add_argument('--valid-pct', type=float, default=0.0, help='stratified share of train held out (0: train on all)')
    p.add_argument('--lora-r', type=int, default=16)
    p.add_argument('--lora-lr', type=float, default=1e-3)
    p.add_argument('--no-lora', action='store_true')
    p.add_argument('--no-full', action='store_true')
    p.add_argument('--seed', type=int, default=0)
    p.add_argument('--json', default=str(OUT/'finetune_banking77.json'), help='where to write the results')
    p.add_argument('--limit', type=int, default=None, help='quick check: only N random train and N test rows')
    a = p.parse_args()
    print(f'# {platform.machine()}, {os.cpu_count()} CPUs, torch {torch.__version__} ({torch.get_num_threads()} threads); '
          f'load average at start {os.getloadavg()[0]:.1f}; settings {vars(a)}', flush=True)
    train_df, test_df = load_banking77()
    if a.limit:
        train_df = train_df.sample(a.limit, random_state=0)
        test_df = test_df[test_df.label.isin(set(train_df.label))].sample(min(a.limit, len(test_df)), random_state=0)
    valid_df = None
    if a.valid_pct > 0: train_df, valid_df = stratified_split(train_df, a.valid_pct, seed=a.seed)
    OUT.mkdir(parents=True, exist_ok=True)
    results, js = {}, Path(a.json)
    for name, lora in (('full', False), ('lora', True)):
        if (lora and a.no_lora) or (not lora and a.no_full): continue
        results[name] = finetune(train_df, valid_df, test_df, a, lora)
        summary = {'accuracy': results.get('full', {}).get('accuracy'), 'minutes': results.get('full', {}).get('minutes'),
                   'lora_accuracy': results.get('lora', {}).get('accuracy'), 'runs': results, 'settings': vars(a),
                   'load_average_end': os.getloadavg()[0]}
        js.write_text(json.dumps(summary, indent=1, default=str))
    f = lambda v, d=4: 'nan' if v is None else f'{v:.{d}f}'
    print(f"accuracy={f(summary['accuracy'])} minutes={f(summary['minutes'], 1)} lora_accuracy={f(summary['lora_accuracy'])}")


if __name__ == '__main__': main()
