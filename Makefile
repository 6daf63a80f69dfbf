# NetAuto — see README.md. `make dev` runs the whole system locally, `make test` runs everything CI runs.
SHELL := /bin/bash
GO ?= go
GOFLAGS_BUILD := -trimpath -tags lambda.norpc -ldflags="-s -w"
STATICCHECK_VERSION := v0.8.2
CACHE := $(CURDIR)/.cache
GOBIN_CACHE := $(CACHE)/bin
export PATH := $(GOBIN_CACHE):$(PATH)

FUNCTIONS := api ws executor retention watchdog scheduler notifier

.PHONY: dev dev-reset test deps web-deps lint unit build deploy deploy-ui bench rie-smoke token clean fmt
.DEFAULT_GOAL := help

help:
	@echo "make dev      run the whole system locally (stand-ins, gateway on 127.0.0.1:8080, UI); state kept in .state (MEMORY=1: in memory)"
	@echo "make dev-reset  forget the local database, simulated fleet and credentials kept in .state"
	@echo "make test     install what the tests need, lint, run every test with -race"
	@echo "make unit     the fast tests (go test -short): no stack, sshd or browser needed"
	@echo "make bench    run the benchmarks"
	@echo "make build    build every Lambda function (what sam build does)"
	@echo "make deploy   sam build && sam deploy (samconfig.toml; ENV=prod for production)"
	@echo "make lint     gofmt, go vet, staticcheck"

## dev: the whole system on this machine; Ctrl-C stops everything it started. The database, the
## simulated fleet's ports and host keys are kept under .state ($NET_AUTO_STATE_DIR); MEMORY=1
## (or NET_AUTO_DEV_MEMORY=1) keeps the database in memory instead. dev-reset forgets the kept
## database, fleet and credentials (the signing key stays, so tokens remain valid).
STATE_DIR := $(or $(NET_AUTO_STATE_DIR),$(CURDIR)/.state)
dev: deps-dev
	$(if $(MEMORY),NET_AUTO_DEV_MEMORY=$(MEMORY)) $(GO) run ./infra/cmd/localdev

dev-reset:
	rm -rf $(STATE_DIR)/dynamodb $(STATE_DIR)/fleet $(STATE_DIR)/secrets

## deps: everything the tests need, installed idempotently (Debian packages, npm stand-ins, Go tools).
## chromium runs the UI's end-to-end tests (web/e2e).
DEBIAN_PACKAGES := sshd:openssh-server chromium:chromium
deps: deps-dev
	@need=""; \
	for pair in $(DEBIAN_PACKAGES); do \
	  bin=$${pair%%:*}; pkg=$${pair##*:}; \
	  command -v $$bin >/dev/null 2>&1 || [ -x /usr/sbin/$$bin ] || need="$$need $$pkg"; \
	done; \
	if [ -n "$$need" ]; then \
	  echo "installing Debian packages:$$need"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$need; \
	fi
	@test -x $(GOBIN_CACHE)/staticcheck || GOBIN=$(GOBIN_CACHE) $(GO) install honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION)

deps-dev: web-deps
	$(GO) mod download
	$(GO) run ./infra/cmd/localdev fetch

## web-deps: the UI's npm packages at the versions of web/package-lock.json; the two runtime
## libraries (Preact, htm: plain ES modules) are copied to web/vendor/, which the UI imports.
WEB_VENDOR := web/node_modules/preact/dist/preact.mjs web/node_modules/preact/hooks/dist/hooks.mjs web/node_modules/htm/dist/htm.mjs
web-deps: web/vendor/.installed
web/vendor/.installed: web/package.json web/package-lock.json
	cd web && npm ci --no-audit --no-fund --loglevel=error
	mkdir -p web/vendor
	cp $(WEB_VENDOR) web/vendor/
	touch $@

fmt:
	gofmt -w $$(git ls-files '*.go')

lint: deps
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	staticcheck ./...
	@cp go.mod /tmp/netauto-go.mod.bak; cp go.sum /tmp/netauto-go.sum.bak; $(GO) mod tidy; \
	if ! git diff --quiet -- go.mod go.sum; then echo "go mod tidy changes go.mod/go.sum: run it and commit"; \
	  cp /tmp/netauto-go.mod.bak go.mod; cp /tmp/netauto-go.sum.bak go.sum; exit 1; fi

## test: lint, then every package's tests with -race against one shared local stack.
test: lint
	$(GO) run ./infra/cmd/localdev exec -- $(GO) test -race -count=1 -timeout 15m ./...
	$(GO) run ./infra/cmd/localdev exec -- $(GO) test -count=1 -timeout 10m -run '^TestPartitionWriteShare$$' ./internal/app/

## unit: the fast tests only; under -short every test that needs the stack, sshd or Chromium skips,
## so nothing from `make deps` is needed.
unit:
	$(GO) test -short -count=1 ./...

## token: print a token the local gateway accepts (ROLE=viewer|operator|admin or <role>:<site>, EMAIL=...).
ROLE ?= admin
EMAIL ?= dev@netauto.local
token:
	@$(GO) run ./infra/cmd/localdev token -role $(ROLE) -email $(EMAIL)

rie-smoke:
	$(GO) test -count=1 -run TestRIE -v ./infra/rie/

## bench: the SSH engine fan-out and memory benchmarks, Secrets Manager calls per 1,000 devices,
## then the ones on the local stack: device import, a 1,000-device bulk job against parallel-ssh,
## pdsh and a raw Go fan-out, the writes per partition key of a 10,000-device job, and a
## 20,000-device job against a 1,000-device one.
bench: DEBIAN_PACKAGES += parallel-ssh:pssh pdsh:pdsh
bench: deps
	$(GO) test -run '^$$' -bench . -benchtime 2x -count 1 ./internal/sshexec/
	$(GO) test -run '^$$' -bench CredentialReads -benchtime 1x -count 1 ./internal/secrets/
	$(GO) run ./infra/cmd/localdev exec -- $(GO) test -run '^$$' -bench . -benchtime 3x -count 1 ./internal/api/
	$(GO) run ./infra/cmd/localdev exec -- $(GO) test -run '^$$' -bench . -benchtime 1x -count 1 -timeout 45m ./internal/app/
	$(GO) run ./infra/cmd/localdev exec -- $(GO) test -run '^$$' -bench Purge -benchtime 1x -count 1 -timeout 40m ./internal/retention/
	$(GO) run ./infra/cmd/localdev exec -- $(GO) test -run '^$$' -bench DevicesPage -benchtime 1x -count 1 ./web/

## build-<LogicalId>: what `sam build` calls (BuildMethod: makefile) for each function.
define build_function
	GOOS=linux GOARCH=$(or $(GOARCH_LAMBDA),arm64) CGO_ENABLED=0 $(GO) build $(GOFLAGS_BUILD) -o $(or $(ARTIFACTS_DIR),$(CURDIR)/bin/$(1))/bootstrap ./functions/$(1)
endef
build-ApiFunction: ; $(call build_function,api)
build-WsFunction: ; $(call build_function,ws)
build-ExecutorFunction: ; $(call build_function,executor)
build-RetentionFunction: ; $(call build_function,retention)
build-WatchdogFunction: ; $(call build_function,watchdog)
build-SchedulerFunction: ; $(call build_function,scheduler)
build-NotifierFunction: ; $(call build_function,notifier)

build: build-ApiFunction build-WsFunction build-ExecutorFunction build-RetentionFunction build-WatchdogFunction build-SchedulerFunction build-NotifierFunction

## deploy: sam build + sam deploy. The retention schedule comes from NET_AUTO_RETENTION_CRON (default
## @daily), translated to an EventBridge expression into a copy of samconfig.toml under .aws-sam/
## (values quoted so SAM CLI keeps them whole, read back as SAM CLI reads them before the deploy).
## The copy's path is absolute: SAM CLI may resolve a relative --config-file against the template's
## folder. See docs/deploy.md.
ENV ?= default
deploy:
	sam build --config-env $(ENV)
	@mkdir -p .aws-sam
	$(GO) run ./infra/cmd/cronexpr -samconfig samconfig.toml -o .aws-sam/samconfig.deploy.toml
	sam deploy --config-file $(CURDIR)/.aws-sam/samconfig.deploy.toml --config-env $(ENV)
	$(MAKE) --no-print-directory deploy-ui ENV=$(ENV)

## deploy-ui: the static UI (web/ without its tests and npm folder) into the stack's UiBucket, with
## a config.json made from the stack's outputs, then a CloudFront invalidation.
deploy-ui: web-deps
	@set -euo pipefail; \
	section() { sed -n "/^\[$(ENV)\.global\.parameters\]/,/^\[/s/^$$1 *= *\"\(.*\)\"/\1/p" samconfig.toml; }; \
	stack=$$(section stack_name); region=$$(section region); \
	rm -rf .aws-sam/ui && mkdir -p .aws-sam/ui && cp -r web/index.html web/style.css web/js web/vendor .aws-sam/ui/ && rm -f .aws-sam/ui/vendor/.installed; \
	aws cloudformation describe-stacks --region "$$region" --stack-name "$$stack" --query 'Stacks[0].Outputs' --output json > .aws-sam/outputs.json; \
	node web/tools/ui-config.mjs .aws-sam/outputs.json config > .aws-sam/ui/config.json; \
	bucket=$$(node web/tools/ui-config.mjs .aws-sam/outputs.json output UiBucketName); \
	dist=$$(node web/tools/ui-config.mjs .aws-sam/outputs.json output UiDistributionId); \
	aws s3 sync .aws-sam/ui/ "s3://$$bucket/" --region "$$region" --delete --cache-control no-cache; \
	aws cloudfront create-invalidation --distribution-id "$$dist" --paths '/*' >/dev/null; \
	echo "UI: $$(node web/tools/ui-config.mjs .aws-sam/outputs.json output UiUrl)"

clean:
	rm -rf bin .aws-sam
