"""Training throughput of fine-tuning the bundled MiniLM on BANKING77: Hugging Face `Trainer` vs lepton_nb's `Learner`.

Every row fine-tunes the same encoder (all-MiniLM-L6-v2, 77-class head) with batch size 32, max length 64,
AdamW (lr 1e-4, weight decay 0.01, fused, decay/no-decay groups), grad clipping at 1.0 and a linear schedule.
Each row runs `--warmup` optimizer steps, then `--steps` timed ones:

    samples/s = steps * 32 / (wall time of the timed steps)

Model loading and the one-off tokenisation are outside the timed window; data loading, padding/collation,
forward, backward, clipping, the optimizer and the schedule are inside it.

Rows (the fp32 ones are the like-for-like comparison):
  trainer          HF Trainer as its tutorial sets it up: AutoModelForSequenceClassification, tokenise without
                   padding, DataCollatorWithPadding, random order (fp32)
  trainer-grouped  the same with train_sampling_strategy='group_by_length' (transformers 5's name of the old
                   `group_by_length=True`)
  ours             Learner (default callbacks) + HFClassifier (mean pooling) + text_dataloaders(bucket=True)
  ...-bf16         the same rows under bf16 autocast (Trainer: bf16=True; ours: the default precision on a CPU with
                   avx512_bf16)

Run:  PYTHONPATH=/work/main python bench/train_speed.py [--steps 60 --warmup 5 --repeats 1 --bf16-trainer]
The last line is `vs_trainer=<ours fp32 / trainer fp32> vs_trainer_grouped=<ours fp32 / trainer-grouped fp32>`.
"""
from __future__ import annotations
import argparse, contextlib, io, json, os, platform, statistics, sys, tempfile, time, warnings
from pathlib import Path

import numpy as np
import torch

BS, MAX_LEN, LR, WD, N_CLASSES = 32, 64, 1e-4, 0.01, 77
MODEL_DIR = None   # --model-dir: another copy of the encoder (e.g. a randomly initialised one where the weights can't travel)


# -- data (tokenisation is done once, outside the timed window, by every row) ------------------------------------
def load_texts():
    from lepton_nb.data.text import load_banking77
    train_df, _ = load_banking77()
    classes = sorted(train_df.label.unique())
    label2id = {c: i for i, c in enumerate(classes)}
    return train_df.assign(label=train_df.label.map(label2id))


class ShapeLog:
    "Wraps a collate function and records each batch's padded length T and its real tokens."
    def __init__(self, collate): self.collate, self.T, self.real = collate, [], []
    def __call__(self, batch):
        out = self.collate(batch)
        m = (out[0] if isinstance(out, tuple) else out)['attention_mask']
        self.T.append(m.shape[1]); self.real.append(int(m.sum()))
        return out
    def summary(self):
        if not self.T: return float('nan'), float('nan')
        cells = sum(self.T) * BS
        return float(np.mean(self.T)), 1 - sum(self.real) / cells


# -- Hugging Face Trainer rows -----------------------------------------------------------------------------------
def run_trainer(df, steps:int, warmup:int, grouped:bool, bf16:bool, seed:int=0) -> dict:
    from transformers import (AutoModelForSequenceClassification, AutoTokenizer, DataCollatorWithPadding,
                              Trainer, TrainerCallback, TrainingArguments, set_seed)
    from transformers.utils import logging as hf_logging
    from lepton_nb.core import bundled_model
    hf_logging.set_verbosity_error(); hf_logging.disable_progress_bar()
    src = MODEL_DIR or str(bundled_model('minilm'))
    set_seed(seed)
    tok = AutoTokenizer.from_pretrained(src)
    model = AutoModelForSequenceClassification.from_pretrained(src, num_labels=N_CLASSES)
    # the tutorial's `dataset.map(lambda b: tok(b['text'], truncation=True))`, as a list of dicts (no `datasets` here)
    enc = tok(list(df.text), truncation=True, max_length=MAX_LEN)
    train = [{**{k: enc[k][i] for k in enc.keys()}, 'label': int(y)} for i, y in enumerate(df.label)]
    collate = ShapeLog(DataCollatorWithPadding(tok))

    class Timer(TrainerCallback):
        t0 = t1 = None
        def on_step_end(self, args, state, control, **kw):
            if state.global_step == warmup: self.t0 = time.perf_counter()
            if state.global_step == warmup + steps: self.t1 = time.perf_counter()

    out_dir = tempfile.mkdtemp(prefix='lepton_bench_trainer_')
    args = TrainingArguments(output_dir=out_dir, per_device_train_batch_size=BS, learning_rate=LR, weight_decay=WD,
                             max_steps=warmup + steps, report_to=[], logging_strategy='no', save_strategy='no',
                             dataloader_num_workers=0, use_cpu=not torch.cuda.is_available(), bf16=bf16, disable_tqdm=True, seed=seed,
                             train_sampling_strategy='group_by_length' if grouped else 'random')
    timer = Timer()
    trainer = Trainer(model=model, args=args, train_dataset=train, data_collator=collate, callbacks=[timer])
    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):  # Trainer prints its own metrics dict
        warnings.simplefilter('ignore')
        trainer.train()
    T, pad = collate.summary()
    opt = trainer.optimizer
    return {'secs': timer.t1 - timer.t0, 'mean_T': T, 'pad': pad,
            'opt': f"{type(getattr(opt, 'optimizer', opt)).__name__} x{len(opt.param_groups)} groups"}


# -- lepton_nb rows ---------------------------------------------------------------------------------------------
def run_ours(df, steps:int, warmup:int, precision:str|None, seed:int=0, profile:str|None=None) -> dict:
    from lepton_nb.data.text import text_dataloaders
    from lepton_nb.models.text import HFClassifier
    from lepton_nb.train.learner import Callback, CancelFitException, Learner
    from lepton_nb.train.callbacks import GradClipCB, ProgressCB, ScheduleCB, warmup_linear
    torch.manual_seed(seed)
    model = HFClassifier(N_CLASSES, model=MODEL_DIR, pooling='mean')
    dls = text_dataloaders(df, None, model.tokenizer, bs=BS, max_len=MAX_LEN, seed=seed, bucket=True)
    dls.train.collate_fn = collate = ShapeLog(dls.train.collate_fn)
    total, lin = warmup + steps, warmup_linear(0)   # linear decay over the steps run, like Trainer's max_steps

    class Timer(Callback):
        order, t0, t1, prof = 100, None, None, None
        def after_step(self):
            s = self.learn.step
            if s == warmup:
                if profile: self.prof = torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]); self.prof.__enter__()
                self.t0 = time.perf_counter()
            if s == total:
                self.t1 = time.perf_counter()
                if self.prof is not None: self.prof.__exit__(None, None, None)
                raise CancelFitException()

    timer = Timer()
    learn = Learner(model, dls, lr=LR, wd=WD, precision=precision, seed=seed, path=tempfile.mkdtemp(prefix='lepton_bench_'),
                    cbs=[GradClipCB(1.0), ScheduleCB(lambda s, n: lin(s, total)), ProgressCB(plain=True), timer])
    learn.fit(1)
    if timer.prof is not None:
        Path(profile).write_text(timer.prof.key_averages().table(sort_by='self_cpu_time_total', row_limit=40))
    T, pad = collate.summary()
    return {'secs': timer.t1 - timer.t0, 'mean_T': T, 'pad': pad, 'dtype': str(learn.mixed_precision.dtype).split('.')[-1],
            'opt': f"{type(learn.opt).__name__} x{len(learn.opt.param_groups)} groups"}


# -- main --------------------------------------------------------------------------------------------------------
ROWS = {  # name: (kind, precision, runner)
    'trainer':              ('Trainer, random order',       'fp32', lambda df, a: run_trainer(df, a.steps, a.warmup, False, False)),
    'trainer-grouped':      ('Trainer, group_by_length',    'fp32', lambda df, a: run_trainer(df, a.steps, a.warmup, True, False)),
    'ours':                 ('Learner + bucketed batches',  'fp32', lambda df, a: run_ours(df, a.steps, a.warmup, 'fp32', profile=a.profile)),
    'trainer-bf16':         ('Trainer, random order',       'bf16', lambda df, a: run_trainer(df, a.steps, a.warmup, False, True)),
    'trainer-grouped-bf16': ('Trainer, group_by_length',    'bf16', lambda df, a: run_trainer(df, a.steps, a.warmup, True, True)),
    'ours-default':         ('Learner + bucketed batches',  'default (bf16 autocast)', lambda df, a: run_ours(df, a.steps, a.warmup, None)),
}


def main():
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--steps', type=int, default=60, help='timed optimizer steps per row')
    p.add_argument('--warmup', type=int, default=5, help='untimed optimizer steps before the timed ones')
    p.add_argument('--repeats', type=int, default=1, help='rounds over all rows (interleaved); the median is reported')
    p.add_argument('--rows', default='trainer,trainer-grouped,ours,trainer-bf16,trainer-grouped-bf16,ours-default',
                   help=f'comma-separated subset of {list(ROWS)}')
    p.add_argument('--finetune-json', default='/tmp/lepton_bench/finetune_banking77.json',
                   help="results of bench/finetune_banking77.py, for the accuracy column of the 'ours-default' row")
    p.add_argument('--profile', default=None, help="write a torch.profiler table of the timed 'ours' (fp32) steps here")
    p.add_argument('--json', default=None, help='also write the results as JSON here')
    p.add_argument('--model-dir', default=None, help='encoder folder to use instead of the bundled MiniLM (speed only)')
    a = p.parse_args()
    global MODEL_DIR; MODEL_DIR = a.model_dir
    rows = [r.strip() for r in a.rows.split(',') if r.strip()]
    for r in rows:
        if r not in ROWS: sys.exit(f'unknown row {r!r}: choose from {list(ROWS)}')
    if 'LEPTON_PRECISION' in os.environ: sys.exit('unset LEPTON_PRECISION: each row sets its own precision')

    import transformers
    gpu = f'{torch.cuda.get_device_name(0)}, ' if torch.cuda.is_available() else ''
    print(f'# {gpu}{platform.machine()}, {os.cpu_count()} CPUs, torch {torch.__version__} ({torch.get_num_threads()} threads), '
          f'transformers {transformers.__version__}; bs={BS} max_len={MAX_LEN} lr={LR} wd={WD}; '
          f'{a.warmup} warm-up + {a.steps} timed steps, {a.repeats} round(s)', flush=True)
    df = load_texts()
    res = {r: [] for r in rows}
    for rnd in range(a.repeats):
        for r in rows:
            try: out = ROWS[r][2](df, a)
            except Exception as e:
                print(f'  round {rnd + 1} {r:<22} failed: {type(e).__name__}: {e}', flush=True); rows = [x for x in rows if x != r]; continue
            out['sps'] = a.steps * BS / out['secs']
            res[r].append(out)
            print(f'  round {rnd + 1} {r:<22} {out["sps"]:7.1f} samples/s  ({out["secs"]:.1f}s, mean T {out["mean_T"]:.1f}, '
                  f'padding {out["pad"]:.0%}, {out["opt"]})', flush=True)

    acc = None
    if Path(a.finetune_json).exists():
        acc = json.loads(Path(a.finetune_json).read_text()).get('accuracy')
    sps = {r: statistics.median(o['sps'] for o in res[r]) for r in rows}
    base = {'fp32': sps.get('trainer'), 'bf16': sps.get('trainer-bf16')}
    print(f"\n| row | setup | precision | samples/s | vs Trainer (same precision) | mean padded T | padding | test acc. |")
    print('|---|---|---|---:|---:|---:|---:|---:|')
    for r in rows:
        kind, prec, _ = ROWS[r]
        b = base['fp32'] if prec == 'fp32' else base['bf16']
        o = res[r][-1]
        rel = f'{sps[r] / b:.2f}x' if b else '-'
        a_ = f'{acc:.2%}' if (r == 'ours-default' and acc is not None) else ''
        print(f'| {r} | {kind} | {prec} | {sps[r]:.1f} | {rel} | {o["mean_T"]:.1f} | {o["pad"]:.0%} | {a_} |')
    if a.json: Path(a.json).write_text(json.dumps({'sps': sps, 'runs': res, 'args': vars(a)}, indent=1, default=str))
    ratio = lambda n, d: f'{sps[n] / sps[d]:.2f}' if n in sps and d in sps else 'nan'
    print(f"vs_trainer={ratio('ours', 'trainer')} vs_trainer_grouped={ratio('ours', 'trainer-grouped')}")


if __name__ == '__main__': main()
