"Stream monitor: a SIGKILL mid-stream loses and double-counts nothing; a dead or stuck webhook never stops scoring; bad lines are skipped."
import http.server, json, os, signal, socket, sqlite3, subprocess, sys, threading, time
from pathlib import Path
import pandas as pd
import pytest
import fastcore.test as T
from lepton_nb.monitor.stream import (StreamMonitor, StreamConfig, AlertConfig, KeywordSentiment, WebhookSender,
                                      make_replay, write_jsonl, monitor_stream, read_windows, read_alerts, stream_status)

ROOT = Path(__file__).resolve().parents[1]
CFG = dict(window='60s', batch_size=16)

def _replay(tmp_path, seed=0):
    base = pd.DataFrame({'text': ['Stocks fall on weak outlook'] * 20 + ['Company holds annual meeting'] * 80,
                         'label': ['bearish'] * 20 + ['neutral'] * 80})
    rp = make_replay(base, n_windows=24, rate=40, window_s=60, burst_topic='b', burst_at=14, burst_len=8, factor=3.0, seed=seed)
    return rp, write_jsonl(rp, tmp_path/'stream.jsonl')

def _table(db):
    w = read_windows(db)
    return w.drop(columns=['time']).round(9).reset_index(drop=True)

def test_sigkill_mid_stream_then_restart_matches_uninterrupted(tmp_path):
    rp, src = _replay(tmp_path)
    ref = monitor_stream(src, KeywordSentiment(), tmp_path/'ref.sqlite', StreamConfig(**CFG))
    T.test_eq(ref['scored'], len(rp))
    db = tmp_path/'killed.sqlite'
    code = ("import sys; from lepton_nb.monitor.stream import *; "
            f"monitor_stream({str(src)!r}, KeywordSentiment(delay_s=0.05), {str(db)!r}, StreamConfig(window='60s', batch_size=16))")
    env = {**os.environ, 'PYTHONPATH': str(ROOT) + os.pathsep + os.environ.get('PYTHONPATH', '')}
    p = subprocess.Popen([sys.executable, '-c', code], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        t0, line = time.time(), 0
        while time.time() - t0 < 120 and p.poll() is None:  # wait for a few committed batches
            if db.exists():
                try: line = stream_status(db).get(str(src.resolve()), {}).get('line', 0)
                except Exception: line = 0
            if line >= len(rp) // 3: break
            time.sleep(0.05)
        assert p.poll() is None, f"the monitor finished before it could be killed: {p.stderr.read().decode()[-2000:]}"
        p.send_signal(signal.SIGKILL); p.wait(10)
    finally:
        if p.poll() is None: p.kill()
    done = stream_status(db)[str(src.resolve())]['line']
    assert 0 < done < len(rp), f"killed at line {done} of {len(rp)}: not mid-stream"
    res = monitor_stream(src, KeywordSentiment(), db, StreamConfig(**CFG))  # restart
    T.test_eq(done + res['lines'], len(rp))
    with sqlite3.connect(db) as con: n_scores = con.execute('SELECT COUNT(*), COUNT(DISTINCT line) FROM scores').fetchone()
    T.test_eq(n_scores, (len(rp), len(rp)))
    pd.testing.assert_frame_equal(_table(db), _table(tmp_path/'ref.sqlite'))
    a, b = read_alerts(db), read_alerts(tmp_path/'ref.sqlite')
    T.test_eq(a[['topic', 'start', 'n']].values.tolist(), b[['topic', 'start', 'n']].values.tolist())
    assert len(b) and set(b.topic) == {'b'}

class _Handler(http.server.BaseHTTPRequestHandler):
    release, got = threading.Event(), []
    def do_POST(self):
        body = self.rfile.read(int(self.headers['Content-Length']))
        _Handler.got.append(json.loads(body))
        _Handler.release.wait(30)  # a webhook that hangs until the test lets it go
        self.send_response(200); self.end_headers()
    def log_message(self, *a): pass

def test_stuck_webhook_does_not_stop_scoring(tmp_path):
    rp, src = _replay(tmp_path)
    srv = http.server.ThreadingHTTPServer(('127.0.0.1', 0), _Handler)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    hook = WebhookSender(f'http://127.0.0.1:{srv.server_port}/hook', max_queue=2, retries=1, timeout_s=60)
    try:
        with StreamMonitor(tmp_path/'m.sqlite', KeywordSentiment(), StreamConfig(**CFG), webhook=hook) as m:
            res = m.run(src); m.close_windows()
            # scoring finished while the webhook is still holding its first request
            assert not _Handler.release.is_set()
            T.test_eq(res['scored'], len(rp))
            n_alerts = len(read_alerts(tmp_path/'m.sqlite'))
            assert n_alerts >= 3, n_alerts
            T.test_eq(hook.sent, 0)
            assert hook.dropped >= n_alerts - 3  # bounded queue: 1 in flight + 2 queued, the rest dropped
            _Handler.release.set()
    finally:
        _Handler.release.set(); srv.shutdown(); srv.server_close()
    assert hook.sent >= 1 and len(_Handler.got) >= 1

def test_dead_webhook_does_not_stop_scoring(tmp_path):
    rp, src = _replay(tmp_path)
    s = socket.socket(); s.bind(('127.0.0.1', 0)); port = s.getsockname()[1]; s.close()  # nothing listens there
    hook = WebhookSender(f'http://127.0.0.1:{port}/hook', retries=2, timeout_s=0.5, backoff_s=0.01)
    res = monitor_stream(src, KeywordSentiment(), tmp_path/'m.sqlite', StreamConfig(**CFG), webhook=hook,
                         alerts_jsonl=tmp_path/'alerts.jsonl')
    T.test_eq(res['scored'], len(rp))
    n = len(read_alerts(tmp_path/'m.sqlite'))
    assert n >= 1
    T.test_eq(len((tmp_path/'alerts.jsonl').read_text().splitlines()), n)  # the file channel still got every alert
    T.test_eq(hook.sent, 0); assert hook.failed + hook.dropped + hook.q.qsize() >= 1

def test_bad_records_counted_and_skipped(tmp_path, caplog):
    good = [json.dumps({'ts': 1700000000 + i, 'topic': 'fed', 'text': 'Stocks fall'}) for i in range(10)]
    lines = good[:3] + ['{not json'] + good[3:6] + [json.dumps({'ts': 'next tuesday', 'topic': 'fed', 'text': 'x'}),
                                                     json.dumps({'ts': 1700000009, 'topic': 'fed'}), '[1, 2]'] + good[6:]
    (tmp_path/'s.jsonl').write_text('\n'.join(lines) + '\n')
    with caplog.at_level('WARNING', logger='lepton_nb.monitor.stream'):
        res = monitor_stream(tmp_path/'s.jsonl', KeywordSentiment(), tmp_path/'m.sqlite', StreamConfig(**CFG))
    T.test_eq((res['scored'], res['bad']), (10, 4))
    with sqlite3.connect(tmp_path/'m.sqlite') as con:
        bad = dict(con.execute('SELECT line, reason FROM bad_records').fetchall())
    T.test_eq(sorted(bad), [4, 8, 9, 10])
    assert 'bad JSON' in bad[4] and 'not a time' in bad[8] and "no text" in bad[9] and 'not an object' in bad[10]
    assert 'line 4: bad JSON' in caplog.text and 'line 8:' in caplog.text
    T.test_eq(read_windows(tmp_path/'m.sqlite').n.sum(), 10)

def test_csv_stream_and_stdin(tmp_path):
    rows = pd.DataFrame({'ts': ['2024-01-01T00:00:%02d' % i for i in range(12)], 'topic': 'fed', 'text': 'Shares jump, record high'})
    rows.to_csv(tmp_path/'s.csv', index=False)
    r1 = monitor_stream(tmp_path/'s.csv', KeywordSentiment(), tmp_path/'a.sqlite', StreamConfig(**CFG))
    T.test_eq((r1['scored'], r1['bad']), (12, 0))
    env = {**os.environ, 'PYTHONPATH': str(ROOT) + os.pathsep + os.environ.get('PYTHONPATH', '')}
    code = f"from lepton_nb.monitor.stream import *; print(monitor_stream('-', KeywordSentiment(), {str(tmp_path/'b.sqlite')!r})['scored'])"
    out = subprocess.run([sys.executable, '-c', code], input=(tmp_path/'s.csv').read_bytes(), capture_output=True, env=env, timeout=120)
    T.test_eq(out.stdout.decode().strip().splitlines()[-1], '12')
    T.test_eq(read_windows(tmp_path/'b.sqlite').n.sum(), 12)


def test_stdin_lines_that_arrived_together_are_all_scored_while_the_pipe_stays_open(tmp_path):
    "Ten lines written at once to an open pipe are scored at once (none left in a reader's buffer until more input comes)."
    env = {**os.environ, 'PYTHONPATH': str(ROOT) + os.pathsep + os.environ.get('PYTHONPATH', '')}
    code = ("import time; from lepton_nb.monitor.stream import *; from lepton_nb.monitor.stream import read_windows; "
            f"m = StreamMonitor({str(tmp_path/'p.sqlite')!r}, KeywordSentiment(), StreamConfig(window='60s', poll_s=0.05)); t0 = time.time(); "
            "r = m.run('-', follow=True, stop=lambda: m._run_stats['scored'] >= 10 or time.time() - t0 > 20); print(r['scored'], flush=True)")
    p = subprocess.Popen([sys.executable, '-c', code], stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    lines = ''.join(json.dumps({'ts': 1_700_000_000 + i, 'text': 'Shares jump'}) + '\n' for i in range(10))
    p.stdin.write(lines.encode()); p.stdin.flush()          # all at once, and the pipe stays open
    out = p.stdout.readline()                               # the monitor stops itself once it scored 10 (or after 20 s)
    p.stdin.close(); p.wait(timeout=60)
    T.test_eq(out.decode().strip(), '10')
