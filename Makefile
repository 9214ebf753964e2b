# farm: the first two commands a new user runs are `make demo` and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
PORT   ?= 9200
DEMO   := demo-data

.PHONY: install demo test soak lint engine bench clean

$(BIN)/farm: setup.py
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev]'
	@touch $@

install: $(BIN)/farm

# Start a farm with its own Redis and SQLite, push a short burst of realistic alerts, show the
# account, stop (with KEEP=1 it keeps running, to look at in the console at /ui). Everything
# lives in ./$(DEMO). The load goes straight into Redis, so the demo
# runs without the HTTP gateway (docs/ingest.md shows that one). The supervisor's HTTP port is
# one the system says is free now, written into the demo's config, where every command reads it.
FREE_PORT := import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])
demo: install
	@[ ! -f $(DEMO)/farm.toml ] || $(BIN)/farm stop --config $(DEMO)/farm.toml >/dev/null 2>&1 || true
	@rm -rf $(DEMO) && mkdir -p $(DEMO)
	@port=$$($(BIN)/python -c '$(FREE_PORT)') && \
	printf '[farm]\ndata_dir = "$(DEMO)"\n[supervisor]\nhttp = "127.0.0.1:%s"\n[ingest]\nprocesses = 0\n[store]\nraw_sample = 0.01\n' \
		"$$port" > $(DEMO)/farm.toml
	@echo "== starting a farm (2 workers, embedded Redis, SQLite in $(DEMO)/)"
	@$(BIN)/farm start --workers 2 --config $(DEMO)/farm.toml > $(DEMO)/farm.log 2>&1 & \
	for i in $$(seq 100); do $(BIN)/farm status --config $(DEMO)/farm.toml >/dev/null 2>&1 && break; sleep 0.2; done
	@echo "== pushing 10 seconds of alerts at 600GB/day"
	@# Exit code 5 (no loss, but below the asked rate on a busy machine) does not stop the demo.
	@$(BIN)/farm-loadgen --config $(DEMO)/farm.toml --rate 600GB/day --duration 10s --seed 1 --verify \
		|| [ $$? -eq 5 ] || { $(BIN)/farm stop --config $(DEMO)/farm.toml; exit 1; }
	@echo "== status"
	@$(BIN)/farm status --config $(DEMO)/farm.toml
	@echo "== a search over the stored alerts"
	@$(BIN)/farm search --config $(DEMO)/farm.toml --limit 5 disk || true
	@if [ -n "$(KEEP)" ]; then \
		echo "== the farm keeps running (KEEP=1): open http://$$(sed -n 's/^http = "\(.*\)"/\1/p' $(DEMO)/farm.toml)/ui"; \
		echo "   stop it with: $(BIN)/farm stop --config $(DEMO)/farm.toml"; \
	else $(BIN)/farm stop --config $(DEMO)/farm.toml; fi

# The whole suite, against real services the tests start themselves (Redis; a search engine
# node in a JVM when Java and Maven are present).
test: install
	$(BIN)/pytest -q

# Long fault runs (about 15 minutes): a hundred random kills at 600 GB/day, and the like.
soak: install
	$(BIN)/pytest -q -m soak

lint: install
	$(BIN)/ruff check .

# A real search engine node in the foreground (OpenSearch by default; FARM_TEST_ENGINE=elasticsearch).
engine: install
	$(BIN)/python -m tests.support.engine --port $(PORT)

# The performance regression suite (about 15 minutes; not part of `make test`): pipeline per
# provider, end to end (every alert new; the realistic mix), latency at 600 GB/day, the engine
# against a raw _bulk (a JVM node; Java and Maven), the gateway (needs wrk: apt-get install -y
# wrk), a 10x spike and 1-4 workers. Each figure beside a checkout of BASELINE measured in the
# same run (made once under .cache/baseline/). Results and plots in bench/results/;
# `make bench PLOTS=docs/img` redraws the plots of docs/performance.md.
BASELINE ?= 354cd36
ROUNDS   ?= 2
bench: install
	$(BIN)/python bench/suite.py --baseline $(BASELINE) --rounds $(ROUNDS) \
		$(if $(PLOTS),--plots $(PLOTS)) $(if $(STEPS),--only $(STEPS))

clean:
	rm -rf $(DEMO) farm-data build *.egg-info tests/engine/target
