"The built docs site opens in headless Chromium: index -> core page, a rendered docstring is there."
import os, shutil, socket, subprocess, sys, time
from pathlib import Path
import pytest

ROOT = Path(__file__).resolve().parents[1]
SITE = ROOT/'_site'
CHROMIUM = os.environ.get('LEPTON_CHROMIUM', '/usr/bin/chromium')


def _free_port():
    with socket.socket() as s: s.bind(('127.0.0.1', 0)); return s.getsockname()[1]


@pytest.fixture(scope='module')
def site_url():
    if not (SITE/'index.html').exists():
        subprocess.run([sys.executable, str(ROOT/'tools'/'build_docs.py')], check=True, cwd=ROOT)
    port = _free_port()
    srv = subprocess.Popen([sys.executable, '-m', 'http.server', str(port), '--bind', '127.0.0.1', '-d', str(SITE)],
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for _ in range(100):
        try: socket.create_connection(('127.0.0.1', port), timeout=0.2).close(); break
        except OSError: time.sleep(0.05)
    yield f'http://127.0.0.1:{port}/'
    srv.terminate(); srv.wait(5)


def test_index_to_core_page(site_url):
    if not Path(CHROMIUM).exists(): pytest.fail(f'{CHROMIUM} missing: apt-get install -y chromium (or set LEPTON_CHROMIUM)')
    from playwright.sync_api import sync_playwright
    shots = ROOT/'bench'/'screens'; shots.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=['--no-sandbox', '--disable-gpu', '--disable-quic',
              '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'])
        page = b.new_page(viewport={'width': 1280, 'height': 900})
        page.goto(site_url + 'index.html')
        assert 'lepton_nb' in page.title()
        page.locator('nav a', has_text='Core').first.click()
        page.wait_for_url('**/core.html')
        # a docstring rendered by show_doc, and the exported source folded under it
        doc = page.locator('em', has_text='The best available device:')   # show_doc renders the docstring in italics
        assert doc.first.is_visible()
        assert 'cuda > mps > cpu' in doc.first.inner_text()
        assert page.locator('h3', has_text='bundled_model').count() >= 1
        assert page.locator('details.lepton-source').count() >= 5
        doc.first.scroll_into_view_if_needed(); page.mouse.wheel(0, -150)
        page.screenshot(path=str(shots/'docs_core.png'), full_page=False)
        b.close()
