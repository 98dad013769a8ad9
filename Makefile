# The commands developers and CI run. `make test` sets everything up from nothing.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
PATIENTS ?= 2000

.PHONY: install hapi system-deps run test test-workers lint bench bench-portal bench-peers clean docs-screenshots

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -c constraints.txt -e '.[dev,bench]'
	touch $(STAMP)

ASSETS := src/sokhoe/web/static/vendor/.installed-stamp

# the pages' browser libraries (htmx, jsQR) and axe-core, from the npm registry, pinned by the lock
$(ASSETS): package.json package-lock.json scripts/vendor_assets.sh
	bash scripts/vendor_assets.sh
	touch $(ASSETS)

HAPI := tools/hapi/target/.built-stamp

# HAPI FHIR's validator and generic client (tools/hapi), run by tests/conformance: compiled once,
# its Maven Central artifacts cached in ~/.m2 (offline after the first build)
$(HAPI): tools/hapi/pom.xml $(wildcard tools/hapi/src/main/java/vn/sokhoe/hapi/*.java)
	cd tools/hapi && mvn -q -B package
	touch $(HAPI)

hapi: $(HAPI)

install: $(STAMP) $(ASSETS)

LIGHTHOUSE := bench/lighthouse/node_modules/.installed-stamp
# the portal pages: these paths, as far as they exist ({ward}: the demo ward's code)
PORTAL_PAGES ?= /portal /portal/w/{ward} /portal/sign-in /portal/book /portal/declare

# Lighthouse for the portal's bench only (pinned by its lock; 12.2.3 runs on Node 20)
$(LIGHTHOUSE): bench/lighthouse/package.json bench/lighthouse/package-lock.json
	cd bench/lighthouse && npm ci --no-audit --no-fund --loglevel=error
	touch $(LIGHTHOUSE)

SMART_APP := tests/access/smart_app/node_modules/.installed-stamp
# the SMART JavaScript client (fhirclient) that tests/access/test_smart_app_browser.py serves from
# its own static pages (pinned by its lock; the test installs it too when it is missing)
$(SMART_APP): tests/access/smart_app/package.json tests/access/smart_app/package-lock.json
	cd tests/access/smart_app && npm ci --no-audit --no-fund --ignore-scripts --loglevel=error
	touch $(SMART_APP)

OIDC_PROVIDER := tests/access/oidc_provider/node_modules/.installed-stamp
# the OpenID provider (node-oidc-provider) that tests/access/test_oidc.py runs, installed here
# rather than inside the test (pinned by its lock; the test still installs it when missing)
$(OIDC_PROVIDER): tests/access/oidc_provider/package.json tests/access/oidc_provider/package-lock.json
	cd tests/access/oidc_provider && npm ci --no-audit --no-fund --loglevel=error
	touch $(OIDC_PROVIDER)

system-deps:
	bash scripts/system-deps.sh

run: install
	$(BIN)/sokhoe serve --demo $(PATIENTS)

# HAPI's tools only for the tests (tests/conformance), not for `make run`
test: system-deps install $(HAPI) $(SMART_APP) $(OIDC_PROVIDER)
	$(BIN)/pytest -n 2 --dist loadfile -q

# the REST suite (every test of the `client` fixture) against the app served by two worker
# processes over SQLite and PostgreSQL, as `sokhoe serve --workers 2` runs it (tests/served.py)
API_SUITE := tests/web/test_crud.py tests/web/test_search.py tests/web/test_search_modifiers.py \
	tests/web/test_bundles.py tests/web/test_merge.py tests/web/test_check_in.py \
	tests/web/test_synthea.py tests/interop/test_hl7v2_http.py
test-workers: system-deps install
	SOKHOE_TEST_WORKERS=2 $(BIN)/pytest -n 2 --dist loadfile -q $(API_SUITE)

# the screenshots of the guides (docs/huong-dan-*.md), from the browser tests: each test names its
# guide's folder under docs/img (clinic/…, portal/…)
docs-screenshots: system-deps install
	SOKHOE_SCREENSHOTS=docs/img $(BIN)/pytest -q -p no:cacheprovider tests/clinic/test_clinic_browser.py tests/prescribing/test_prescribing_browser.py tests/access/test_smart_app_browser.py $(wildcard tests/portal/test_*browser.py)
	$(BIN)/sokhoe portal ward-qr --ward 00070 --out docs/img/portal/00-ap-phich.png --base-url https://sokhoe.example.vn

lint: install
	$(BIN)/ruff check src tests scripts
	$(BIN)/mypy

bench: system-deps install
	$(BIN)/sokhoe bench
	$(BIN)/sokhoe bench-mpi
	$(BIN)/sokhoe bench-warehouse
	$(BIN)/python -m sokhoe.interop.hl7v2.bench --messages 2000 > bench/results/$$(date +%F)-hl7-mllp.json
	$(BIN)/python -m sokhoe.interop.bulk.bench --patients 20000 > bench/results/$$(date +%F)-bulk-export-20000.json
	$(BIN)/sokhoe bench-clinic > bench/results/$$(date +%F)-clinic-pages.json
	$(BIN)/sokhoe bench-prescribing > bench/results/$$(date +%F)-prescribing.json
	$(BIN)/python -m sokhoe.bench.portal > bench/results/$$(date +%F)-portal-book.json
	$(BIN)/python -m sokhoe.bench.http_reads > bench/results/$$(date +%F)-http-reads.json
	$(MAKE) bench-portal
	$(BIN)/python scripts/bench_summary.py

# the portal on a throttled phone: Lighthouse (mobile preset) with Debian's Chromium
bench-portal: install $(LIGHTHOUSE)
	$(BIN)/python -m sokhoe.bench.portal_lighthouse $(foreach p,$(PORTAL_PAGES),--page '$(p)') > bench/results/$$(date +%F)-portal-lighthouse.json

# sokhoe beside HAPI FHIR's JPA server on the same Synthea bundles, in one run (not part of
# `make bench`: ~15 min): builds bench/peers/hapi with Maven (Maven Central, cached in ~/.m2),
# starts a throw-away PostgreSQL, HAPI and `sokhoe serve --workers 2` (SQLite and PostgreSQL),
# prints the table and writes bench/results/<date>-peers.json
bench-peers: system-deps install
	$(BIN)/python -m sokhoe.bench.peers

clean:
	rm -rf $(VENV) var .pytest_cache .mypy_cache .ruff_cache
