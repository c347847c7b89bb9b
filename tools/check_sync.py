"Fail when nbdev_clean + nbdev_export would change the notebooks or the library (they must be committed in sync)."
import hashlib, subprocess, sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

def snapshot():
    files = sorted([*ROOT.glob('nbs/**/*.ipynb'), *ROOT.glob('lepton_nb/**/*.py')])
    return {str(f.relative_to(ROOT)): hashlib.sha256(f.read_bytes()).hexdigest() for f in files if '.ipynb_checkpoints' not in str(f)}

before = snapshot()
for cmd in (['nbdev_clean'], ['nbdev_export']): subprocess.run(cmd, check=True, cwd=ROOT)
after = snapshot()
changed = sorted(k for k in before.keys() | after.keys() if before.get(k) != after.get(k))
if changed:
    print('Notebooks and library were out of sync; nbdev_clean/nbdev_export changed:', *changed, sep='\n  ')
    print('Run nbdev_clean && nbdev_export and commit the result.')
    sys.exit(1)
print(f'sync: {len(after)} notebooks/modules in sync')
