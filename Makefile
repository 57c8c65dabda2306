# lvsmon — see README.md. Every target installs what it needs first.
SHELL := /bin/bash
export PATH := $(PATH):/usr/local/go/bin
# ziutek/rrd v0.0.4 declares librrd 1.9 prototypes; Debian 12 ships 1.7.2, whose
# older (non-const) prototypes make gcc warn on every build. The calls are ABI-identical.
export CGO_CFLAGS := -O2 -g -Wno-incompatible-pointer-types
GO ?= go
LISTEN ?= :9160
# Build information, as Prometheus' tools carry theirs: `lvsmon version`
# prints it and lvsmon_build_info labels it (a build without these falls
# back to the VCS revision and commit time Go records).
VERSION ?= $(shell git describe --always --dirty 2>/dev/null || echo devel)
REVISION ?= $(shell git rev-parse HEAD 2>/dev/null || echo unknown)
BRANCH ?= $(shell git rev-parse --abbrev-ref HEAD 2>/dev/null || echo unknown)
BUILD_USER ?= $(shell id -un 2>/dev/null || echo unknown)@$(shell hostname 2>/dev/null || echo unknown)
BUILD_DATE ?= $(shell date -u +%Y-%m-%dT%H:%M:%SZ)
BUILDINFO := github.com/lvsmon/lvsmon/internal/buildinfo
LDFLAGS := -X $(BUILDINFO).Version=$(VERSION) -X $(BUILDINFO).Revision=$(REVISION) -X $(BUILDINFO).Branch=$(BRANCH) \
	-X $(BUILDINFO).User=$(BUILD_USER) -X $(BUILDINFO).Date=$(BUILD_DATE)
VMEXEC := $(CURDIR)/test/vm/vmexec.sh

.PHONY: all build demo test test-fast test-nonroot test-unit test-kernel fuzz bench lint clean deps-build deps-test deps-bench \
	deb rpm package-files install

all: build

deps-build:
	@scripts/deps.sh build

deps-test:
	@scripts/deps.sh test

deps-bench:
	@scripts/deps.sh bench

build: deps-build
	$(GO) build -ldflags '$(LDFLAGS)' -o bin/lvsmon ./cmd/lvsmon

## demo: a simulated director on http://localhost:9160 (no root, no IPVS needed)
demo: build
	bin/lvsmon demo --listen $(LISTEN)

## test: every tier (README, Tests) — the unit and lab tiers with -race,
## the unit tier again as a non-root user with a bare Debian's programs,
## then the kernel tier inside qemu. Nothing is skipped: a missing tool is
## installed or fails.
test: deps-test lint test-unit test-nonroot test-kernel
	@echo "make test: all suites passed"

## test-fast: the unit tier alone: plain go test, as any user, with no
## daemon, namespace or root (what a developer runs between edits)
test-fast: deps-build
	$(GO) test ./...

## test-nonroot: the unit tier as the user lvsmontest, offline, with only a
## bare Debian's programs reachable (run as root; scripts/unit-as-user.sh)
test-nonroot: deps-build
	scripts/unit-as-user.sh

lint:
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed: $$out"; exit 1; fi
	$(GO) vet ./...
	$(GO) vet -tags lab ./...
	$(GO) vet -tags ipvskernel ./lvs/ ./checker/ ./test/sidebyside/

## test-unit: the unit and lab tiers with -race, as root: the lab tag adds
## the tests that need root, namespaces, Debian's daemons and tools, load
## and long waits
test-unit: deps-test
	$(GO) test -race -count=1 -tags lab ./...

## test-kernel: the netlink backend, the checker's classic scenario and restarts,
## and Debian's keepalived side by side with lvsmon's import of its config,
## against Debian's own kernel in qemu (one VM per package)
test-kernel: deps-test
	test/vm/setup.sh
	CGO_ENABLED=0 $(GO) test -tags ipvskernel -exec $(VMEXEC) -count=1 -v -run '^TestKernel' ./lvs/ ./checker/ ./test/sidebyside/

## fuzz: run every fuzz target for FUZZTIME each (seed corpora run in test-unit)
FUZZTIME ?= 30s
fuzz: deps-build
	$(GO) test -run '^$$' -fuzz '^FuzzParseIPVS$$' -fuzztime $(FUZZTIME) ./lvs/
	$(GO) test -run '^$$' -fuzz '^FuzzParseIPVSStats$$' -fuzztime $(FUZZTIME) ./lvs/
	$(GO) test -run '^$$' -fuzz '^FuzzParse$$' -fuzztime $(FUZZTIME) ./config/
	$(GO) test -run '^$$' -fuzz '^FuzzStatusPage$$' -fuzztime $(FUZZTIME) ./peers/
	$(GO) test -run '^$$' -fuzz '^FuzzParseVRRP$$' -fuzztime $(FUZZTIME) ./ha/
	$(GO) test -run '^$$' -fuzz '^FuzzParseNotifyLine$$' -fuzztime $(FUZZTIME) ./ha/
	$(GO) test -run '^$$' -fuzz '^FuzzParseKeepalivedJSON$$' -fuzztime $(FUZZTIME) ./ha/
	$(GO) test -run '^$$' -fuzz '^FuzzDecodeIP$$' -fuzztime $(FUZZTIME) ./ha/sources/
	$(GO) test -run '^$$' -fuzz '^FuzzPlainAnswer$$' -fuzztime $(FUZZTIME) ./probe/
	$(GO) test -run '^$$' -fuzz '^FuzzPlainRequest$$' -fuzztime $(FUZZTIME) ./probe/
	$(GO) test -run '^$$' -fuzz '^FuzzMatchBody$$' -fuzztime $(FUZZTIME) ./probe/
	$(GO) test -run '^$$' -fuzz '^FuzzKeepalived$$' -fuzztime $(FUZZTIME) ./importer/
	$(GO) test -run '^$$' -fuzz '^FuzzLdirectord$$' -fuzztime $(FUZZTIME) ./importer/
	$(GO) test -run '^$$' -fuzz '^FuzzUpgrade$$' -fuzztime $(FUZZTIME) ./events/
	$(GO) test -run '^$$' -fuzz '^FuzzParseServerArg$$' -fuzztime $(FUZZTIME) ./internal/ctl/
	$(GO) test -run '^$$' -fuzz '^FuzzParseSince$$' -fuzztime $(FUZZTIME) ./internal/ctl/
	$(GO) test -run '^$$' -fuzz '^FuzzParseTemplate$$' -fuzztime $(FUZZTIME) ./events/
	$(GO) test -run '^$$' -fuzz '^FuzzParseRetryAfter$$' -fuzztime $(FUZZTIME) ./alerting/
	$(GO) test -run '^$$' -fuzz '^FuzzKeepalivedScan$$' -fuzztime $(FUZZTIME) ./reconcile/
	$(GO) test -run '^$$' -fuzz '^FuzzKeepalivedArgs$$' -fuzztime $(FUZZTIME) ./reconcile/
	$(GO) test -run '^$$' -fuzz '^FuzzLdirectordScan$$' -fuzztime $(FUZZTIME) ./reconcile/

## bench: Go benchmarks, then the measurements against the anchor tools,
## then the soak of the lvsmon binary at 1000 x 50 for SOAK (e.g. SOAK=2m)
SOAK ?= 30m
bench: deps-test deps-bench
	$(GO) test -run '^$$' -bench . -benchmem ./...
	$(GO) run ./bench/graphs
	$(GO) run ./bench/scrape
	$(GO) run ./bench/checker
	$(GO) run ./bench/soak -duration $(SOAK)

## deb, rpm: installable packages in dist/ (README, Install on a director),
## built by nfpm, a pinned tool of its own module (tools/go.mod) so that
## its dependencies stay out of lvsmon's go.mod. PKG_VERSION: from the
## latest v* tag, else 0.0~git<commit date>.<short revision>.
NFPM := $(GO) tool -modfile=$(CURDIR)/tools/go.mod nfpm
ifeq ($(origin PKG_VERSION),undefined)
PKG_VERSION := $(shell v=$$(git describe --tags --match 'v[0-9]*' --abbrev=0 2>/dev/null) && echo $${v\#v} || \
	echo 0.0~git$$(git log -1 --format=%cd --date=format:%Y%m%d 2>/dev/null || date +%Y%m%d).$$(git rev-parse --short HEAD 2>/dev/null || echo 0))
endif
export PKG_VERSION

# The generated files both packages and make install hold: the man page
# (gzipped without a time stamp) and the completions, written by the
# binary itself from its flag sets.
package-files: build
	mkdir -p dist/build
	gzip -9nc packaging/lvsmon.1 > dist/build/lvsmon.1.gz
	bin/lvsmon completion bash > dist/build/lvsmon.bash
	bin/lvsmon completion zsh > dist/build/_lvsmon
	bin/lvsmon completion fish > dist/build/lvsmon.fish

deb: package-files
	$(NFPM) package --config packaging/nfpm.yaml --packager deb --target dist/

rpm: package-files
	$(NFPM) package --config packaging/nfpm.yaml --packager rpm --target dist/

## install: what the packages hold, into DESTDIR (PREFIX for the binary,
## the man page and the completions; the config is never overwritten)
DESTDIR ?=
PREFIX ?= /usr/local
UNITDIR ?= /lib/systemd/system
install: package-files
	install -D -m 0755 bin/lvsmon $(DESTDIR)$(PREFIX)/bin/lvsmon
	install -d -m 0755 $(DESTDIR)$(UNITDIR)
	sed 's|^ExecStart=/usr/bin/lvsmon|ExecStart=$(PREFIX)/bin/lvsmon|' packaging/lvsmon.service > $(DESTDIR)$(UNITDIR)/lvsmon.service
	chmod 0644 $(DESTDIR)$(UNITDIR)/lvsmon.service
	install -d -m 0755 $(DESTDIR)/etc/lvsmon
	[ -e $(DESTDIR)/etc/lvsmon/lvsmon.yaml ] || install -m 0640 packaging/lvsmon.yaml $(DESTDIR)/etc/lvsmon/lvsmon.yaml
	install -d -m 0750 $(DESTDIR)/var/lib/lvsmon
	install -D -m 0644 dist/build/lvsmon.1.gz $(DESTDIR)$(PREFIX)/share/man/man1/lvsmon.1.gz
	install -D -m 0644 dist/build/lvsmon.bash $(DESTDIR)$(PREFIX)/share/bash-completion/completions/lvsmon
	install -D -m 0644 dist/build/_lvsmon $(DESTDIR)$(PREFIX)/share/zsh/vendor-completions/_lvsmon
	install -D -m 0644 dist/build/lvsmon.fish $(DESTDIR)$(PREFIX)/share/fish/vendor_completions.d/lvsmon.fish

clean:
	rm -rf bin dist
