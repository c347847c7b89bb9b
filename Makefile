# lepton_nb developer tasks. `make test` is what CI runs (.ci/run).
SHELL := /bin/bash
.PHONY: test sync nbtest pytest docs readme export clean quarto-docs

test: sync nbtest docs pytest

sync:          ## notebooks and library in sync (nbdev_clean + nbdev_export change nothing)
	python tools/check_sync.py

export:
	nbdev_clean && nbdev_export

nbtest:        ## every notebook as a test, skipping cells flagged slow/cuda/notest
	nbdev_test --n_workers 2 --timing

pytest:        ## server, CLI, distributed and browser tests; exit 5 (no tests collected) is not a failure
	python -m pytest -q tests/ ; rc=$$?; if [ $$rc -eq 5 ]; then echo "no pytest tests collected"; exit 0; fi; exit $$rc

docs:          ## static docs site in _site/ without Quarto, README.md from nbs/index.ipynb
	python tools/build_docs.py

readme:
	python tools/build_docs.py --readme

quarto-docs:   ## the Quarto site, for machines that have Quarto
	nbdev_docs

clean:
	rm -rf _proc _docs _site _docs_src .pytest_cache
