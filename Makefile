# Build, test and CI entry points. `make test` is the test command; .ci/run runs `make ci`.

GO ?= go
GOFMT ?= $(shell $(GO) env GOROOT)/bin/gofmt
BIN ?= bin
TESTFLAGS ?= -count=1 -timeout 25m
BENCHFLAGS ?= -bench . -benchmem -count 1 -timeout 60m
FUZZ ?= FuzzParse
FUZZPKG ?= ./schema
FUZZTIME ?= 60s
RACE ?=

ifeq ($(RACE),1)
RACEFLAG := -race
endif

# bash with pipefail, so `go test | tee` fails when go test does.
SHELL := bash
.SHELLFLAGS := -eu -o pipefail -c

# TESTENV brings up PostgreSQL (and checks Docker) and exports CAESIUM_TEST_* for the command
# that follows on the same line. The output goes through a variable rather than straight into
# eval, because eval "$(cmd)" succeeds even when cmd fails.
TESTENV = testenv="$$(scripts/testenv.sh)" && eval "$$testenv"

.PHONY: test ci vet fmt-check build bench fuzz schema run

test:
	$(TESTENV) && $(GO) test $(RACEFLAG) $(TESTFLAGS) ./...

ci: vet fmt-check
	$(MAKE) test RACE=1

vet:
	$(GO) vet ./...

fmt-check:
	@files="$$($(GOFMT) -l .)"; \
	if [ -n "$$files" ]; then echo "gofmt -w needed on:" >&2; echo "$$files" >&2; exit 1; fi

build:
	mkdir -p $(BIN)
	$(GO) build -o $(BIN)/ ./cmd/caesium ./cmd/caesium-agent

bench:
	$(TESTENV) && $(GO) test -run '^$$' $(BENCHFLAGS) ./... | tee bench.out

fuzz:
	$(GO) test -run '^$$' -fuzz '$(FUZZ)' -fuzztime $(FUZZTIME) $(FUZZPKG)

# Written through a temporary file so a failing command leaves the committed schema alone.
schema:
	$(GO) run ./cmd/caesium schema > schema/job.v1.json.tmp && mv schema/job.v1.json.tmp schema/job.v1.json \
		|| { rm -f schema/job.v1.json.tmp; exit 1; }

# Placeholder for running the agent with its embedded defaults.
# The agent on the embedded default: SQLite in ./.caesium, API on 127.0.0.1:8080, syncing the
# committed examples/ of this repository.
run:
	$(GO) run ./cmd/caesium-agent --repo examples $(ARGS)
