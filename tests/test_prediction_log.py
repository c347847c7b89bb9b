"The prediction log under a real `kill -9`: the file stays a sound database and keeps every acknowledged row."
import json, os, random, signal, sqlite3, subprocess, sys, threading, time
from pathlib import Path

from lepton_nb.deploy.monitor import LogConfig, PredictionLog

ROOT = Path(__file__).resolve().parents[1]

# The child logs batches of 40 without pause and flushes every other batch, printing the acknowledged count
# (the return value of flush) after each flush. Its loop is bounded in time in case the parent never kills it.
CHILD = r'''
import sys, time
from lepton_nb.deploy.monitor import LogConfig, PredictionLog
log = PredictionLog(sys.argv[1], model='kill-test', version='1', cfg=LogConfig(batch_size=32, flush_ms=2))
i, t0 = 0, time.monotonic()
while time.monotonic() - t0 < 60:
    log.log([{'input': f'text {i + k}', 'label': 'a', 'score': 0.5, 'latency_ms': 1.0, 'extra': {'i': i + k}}
             for k in range(40)])
    i += 40
    if i % 80 == 0: print(log.flush(), flush=True)
print('done', flush=True)
'''


def _acks(text:str) -> list[int]:
    "Acknowledged counts from complete lines of the child's output (a line cut by the kill is ignored)."
    return [int(l) for l in text.splitlines(keepends=True) if l.endswith('\n') and l.strip().isdigit()]


def test_sigkill_mid_write_keeps_acknowledged_rows(tmp_path):
    db = tmp_path/'preds.db'
    env = {**os.environ, 'PYTHONPATH': os.pathsep.join([str(ROOT), os.environ.get('PYTHONPATH', '')])}
    p = subprocess.Popen([sys.executable, '-c', CHILD, str(db)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         text=True, cwd=ROOT, env=env)
    watchdog = threading.Timer(120, p.kill); watchdog.start()  # never hang the test run
    seen = []
    try:
        for line in p.stdout:  # wait for 25 acknowledgements, while the child keeps writing
            if not line.strip().isdigit(): break
            seen.append(int(line))
            if len(seen) >= 25: break
        time.sleep(random.uniform(0, 0.02))  # land the kill at an arbitrary point of a write
        os.kill(p.pid, signal.SIGKILL)
        p.wait(timeout=30)
    finally:
        watchdog.cancel()
    rest, err = p.stdout.read(), p.stderr.read()
    assert p.returncode == -signal.SIGKILL, f'the child was not killed mid-run (rc={p.returncode}):\n{err[-2000:]}'
    acked = max(seen + _acks(rest))
    assert len(seen) >= 25 and acked >= 25 * 80, (seen, err[-2000:])

    con = sqlite3.connect(db)
    try:
        assert con.execute('PRAGMA integrity_check').fetchone()[0] == 'ok'
        assert con.execute('PRAGMA journal_mode').fetchone()[0] == 'wal'
        ids = {json.loads(e)['i'] for (e,) in con.execute('SELECT extra FROM predictions')}
        n = con.execute('SELECT count(*) FROM predictions').fetchone()[0]
    finally:
        con.close()
    assert n >= acked and len(ids) == n            # at least the acknowledged rows, none twice
    assert set(range(acked)) <= ids, f'acknowledged rows missing: {sorted(set(range(acked)) - ids)[:10]}'

    with PredictionLog(db, model='after') as log:  # the library opens the file again and appends to it
        log.log({'input': 'after the crash', 'label': 'b'})
        assert log.flush() == 1
        assert len(log.read()) == n + 1


def test_threads_share_one_log(tmp_path):
    log = PredictionLog(tmp_path/'p.db', cfg=LogConfig(batch_size=50, flush_ms=5))
    counts = []

    def worker(t):
        for i in range(200):
            log.log({'input': f'{t}-{i}', 'label': str(t), 'score': i / 200, 'extra': {'t': t, 'i': i}})
            if i % 50 == 49: counts.append(log.flush())

    threads = [threading.Thread(target=worker, args=(t,)) for t in range(4)]
    for th in threads: th.start()
    for th in threads: th.join()
    assert log.flush() == 800 and max(counts) <= 800
    df = log.read()
    assert len(df) == 800 and df.input_hash.nunique() == 800
    assert df.groupby('label').size().to_dict() == {str(t): 200 for t in range(4)}
    log.close(); log.close()
