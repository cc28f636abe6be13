# SPDX-License-Identifier: BSD-2-Clause
# xseg - top-level build. See README.md; every flag lives in base.mk.
#
#   make                 build every domain that has sources and a toolchain
#   make DOMAINS=user    build only the listed domains
#   make check           build and run all tests; ends with "N passed, N failed, N skipped"
#   make bench           run the benchmarks against in-run baselines, then make charts
#   make charts          draw bench/results/*.json as bench/results/*.svg (bench/chart.mjs)
#   make demo            the main job
#   make asan|ubsan|tsan build the user domain with a sanitizer (lib/user-<san>/)
#   make check-san       run the C tests under ASan+UBSan and TSan
#   V=1                  show full commands

XSEG_HOME := $(abspath $(dir $(lastword $(MAKEFILE_LIST))))
include $(XSEG_HOME)/base.mk
include $(XSEG_HOME)/sys/kernel/kernel.mk

DOMAINS ?= $(shell $(XSEG_HOME)/tools/xseg-domain-targets --buildable)

.PHONY: install uninstall all user node check check-run check-c check-san asan ubsan tsan bench charts demo deps clean help
.DEFAULT_GOAL := all

all: $(DOMAINS)

user: $(USER_OUT)/libxseg.a $(USER_OUT)/libxseg.so.$(XSEG_VERSION) $(PEER_BINS) $(TEST_TOOL_BINS) \
      $(TEST_BINS) $(NBDKIT_PLUGIN)

# The node domain: node_modules, the addon (prebuildify) and the TypeScript (tsup).
node:
	$(Q)$(XSEG_HOME)/sys/node/build

asan ubsan tsan:
	$(Q)$(MAKE) --no-print-directory SAN=$@ user

deps:
	$(Q)$(XSEG_HOME)/tools/install-deps check

# Every test of the machine, one runner, one summary line. The packages are
# installed before the sub-make reads base.mk, which looks for some of them
# (librados, nbdkit's plugin folder). Under CI (or with
# CHECK_SAN=1) the C tests also run built with ASan+UBSan and with TSan. The
# last test, tools/tree-check, fails if the build or the tests changed a
# tracked file (compared with a record taken before anything was built).
CHECK_SAN ?= $(if $(filter true,$(CI)),1)
check:
	$(Q)$(XSEG_HOME)/tools/install-deps check
	$(Q)state=$$(mktemp /tmp/xseg-tree.XXXXXX) && $(XSEG_HOME)/tools/tree-check save "$$state" && \
	  XSEG_TREE_STATE="$$state" $(MAKE) --no-print-directory check-run; rc=$$?; rm -f "$$state" "$$state.shm"; exit $$rc

check-run: deps user $(if $(CHECK_SAN),asan tsan)
	$(Q)$(XSEG_HOME)/tools/run-tests $(CHECK_ARGS) $(USER_OUT)/test $(XSEG_HOME)/test/scripts \
	    $(XSEG_HOME)/tools/vm/check $(if $(filter node,$(DOMAINS)),$(XSEG_HOME)/test/node/run) \
	    $(if $(CHECK_SAN),$(XSEG_HOME)/lib/user-asan/test $(XSEG_HOME)/lib/user-tsan/test) \
	    $(XSEG_HOME)/tools/tree-check

check-san: asan tsan
	$(Q)$(XSEG_HOME)/tools/run-tests $(XSEG_HOME)/lib/user-asan/test $(XSEG_HOME)/lib/user-tsan/test

# The block pipeline (NBD gateway + blockd vs nbdkit and qemu-nbd, fio) needs
# the peers and the node domain built.
bench: user node
	$(Q)$(XSEG_HOME)/tools/install-deps bench
	$(Q)$(MAKE) --no-print-directory -C $(XSEG_HOME)/bench run
	$(Q)$(XSEG_HOME)/node_modules/.bin/tsx $(XSEG_HOME)/bench/pipeline/run.ts $(PIPELINE_ARGS)
	$(Q)$(XSEG_HOME)/node_modules/.bin/tsx $(XSEG_HOME)/bench/volume/run.ts $(VOLUMES_ARGS)	# -> bench/results/volumes.json
	$(Q)$(XSEG_HOME)/tools/vm/bench || [ $$? = 77 ]	# xsegbd vs loop in the VM -> bench/results/kernel.json
	$(Q)$(XSEG_HOME)/bench/rados/run.py $(RADOS_BENCH_ARGS)	# gateway -> radosd vs librbd, rados bench -> bench/results/rados.json
	$(Q)$(MAKE) --no-print-directory charts

# Every results file drawn as an SVG beside it (vega-lite, headless; the devDependencies).
charts:
	$(Q)[ -d $(XSEG_HOME)/node_modules/vega-lite ] || (cd $(XSEG_HOME) && npm ci --no-audit --no-fund)
	$(Q)node $(XSEG_HOME)/bench/chart.mjs

# The main job: blockd and the NBD gateway on a temporary volume, a verified
# workload and a failover through them (peers/node/cli/demo.ts). DEMO_ARGS='--size 1G -v'.
demo: deps user node
	$(Q)node $(XSEG_HOME)/lib/node/cli.js demo $(DEMO_ARGS)

# make install PREFIX=/usr/local DESTDIR=: libxseg (.so and .a), the public
# headers in one folder include/xseg/ (so <xseg/xseg.h> with the one include
# root of xseg.pc, -I$(PREFIX)/include), xseg.pc, the C peers and xseg-tool, the
# nbdkit plugin (when built), the manual pages (MANDIR, default
# $(PREFIX)/share/man), bash completion for xseg, the systemd unit templates
# (SYSTEMDUNITDIR) and their readiness check (XSEG_LIBEXECDIR). make uninstall
# (same variables) removes exactly these files, and the folders that are ours
# alone (include/xseg/, libexec/xseg/).
PREFIX ?= /usr/local
LIBDIR ?= lib
DESTDIR ?=
INSTALL_HEADERS := xseg/xseg.h xseg/xseg_layout.h xq/xq.h xq/xq_layout.h xq/xq_inline.h sys/domain.h \
                   sys/user/domain_user.h drivers/user/posixfd.h xseg/signal_area.h \
                   sys/user/segtypes/xseg_memfd.h
D := $(DESTDIR)$(PREFIX)
MANDIR ?= $(PREFIX)/share/man
BASHCOMPDIR ?= $(PREFIX)/share/bash-completion/completions
SYSTEMDUNITDIR ?= $(PREFIX)/lib/systemd/system
XSEG_LIBEXECDIR ?= $(PREFIX)/libexec/xseg
# systemd unit templates and their readiness check (sys/user/systemd/*.in),
# with the install paths filled in.
SYSTEMD_UNITS := blockd@.service xseg-serve@.service
subst_paths = sed -e 's|@BINDIR@|$(PREFIX)/bin|g' -e 's|@LIBEXECDIR@|$(XSEG_LIBEXECDIR)|g'
# Manual pages (roff, docs/man/<name>.<section>) -> $(MANDIR)/man<section>/.
MAN_PAGES := $(notdir $(wildcard $(XSEG_HOME)/docs/man/*.[1-8]))
man_path = $(DESTDIR)$(MANDIR)/man$(subst .,,$(suffix $(1)))/$(1)
install: user
	$(quiet) INSTALL $(D)
	$(Q)install -d $(D)/$(LIBDIR)/pkgconfig $(D)/bin $(D)/include/xseg
	$(Q)install -m 0644 $(USER_OUT)/libxseg.a $(D)/$(LIBDIR)/
	$(Q)install -m 0755 $(USER_OUT)/libxseg.so.$(XSEG_VERSION) $(D)/$(LIBDIR)/
	$(Q)ln -sf libxseg.so.$(XSEG_VERSION) $(D)/$(LIBDIR)/libxseg.so.0
	$(Q)ln -sf libxseg.so.0 $(D)/$(LIBDIR)/libxseg.so
	$(Q)# The headers include each other by relative path in the tree ("../xq/xq.h");
	$(Q)# installed side by side in include/xseg/, they include by bare name.
	$(Q)for h in $(INSTALL_HEADERS); do \
	    sed -E 's|^(#[[:space:]]*include[[:space:]]+")([^"]*/)?([^"/]+")|\1\3|' $(XSEG_HOME)/$$h \
	        > $(D)/include/xseg/$$(basename $$h) && chmod 0644 $(D)/include/xseg/$$(basename $$h) || exit 1; done
	$(Q)sed -e 's|@PREFIX@|$(PREFIX)|' -e 's|@LIBDIR@|$(LIBDIR)|' -e 's|@VERSION@|$(XSEG_VERSION)|' \
	    $(XSEG_HOME)/xseg/xseg.pc.in > $(D)/$(LIBDIR)/pkgconfig/xseg.pc
	$(Q)install -m 0755 $(PEER_BINS) $(D)/bin/
ifneq ($(NBDKIT_PLUGIN),)
	$(Q)install -D -m 0755 $(NBDKIT_PLUGIN) $(D)/$(NBDKIT_PLUGIN_SUBDIR)/nbdkit-xseg-plugin.so
endif
	$(Q)$(foreach m,$(MAN_PAGES),install -D -m 0644 $(XSEG_HOME)/docs/man/$(m) $(call man_path,$(m)) &&) true
	$(Q)install -D -m 0644 $(XSEG_HOME)/sys/user/bash-completion/xseg $(DESTDIR)$(BASHCOMPDIR)/xseg
	$(Q)install -d $(DESTDIR)$(SYSTEMDUNITDIR) $(DESTDIR)$(XSEG_LIBEXECDIR)
	$(Q)for u in $(SYSTEMD_UNITS); do \
	    $(subst_paths) $(XSEG_HOME)/sys/user/systemd/$$u.in > $(DESTDIR)$(SYSTEMDUNITDIR)/$$u && \
	    chmod 0644 $(DESTDIR)$(SYSTEMDUNITDIR)/$$u || exit 1; done
	$(Q)$(subst_paths) $(XSEG_HOME)/sys/user/systemd/xseg-ready.in > $(DESTDIR)$(XSEG_LIBEXECDIR)/xseg-ready && \
	    chmod 0755 $(DESTDIR)$(XSEG_LIBEXECDIR)/xseg-ready

# Only the files install puts there; the folders stay (bin/, lib/, share/man/...
# are shared with other packages), except include/xseg/ and libexec/xseg/,
# which are ours alone (kept too if something else was put in them).
uninstall:
	$(quiet) UNINST $(D)
	$(Q)rm -f $(D)/$(LIBDIR)/libxseg.a $(D)/$(LIBDIR)/libxseg.so.$(XSEG_VERSION) \
	    $(D)/$(LIBDIR)/libxseg.so.0 $(D)/$(LIBDIR)/libxseg.so $(D)/$(LIBDIR)/pkgconfig/xseg.pc \
	    $(addprefix $(D)/include/xseg/,$(notdir $(INSTALL_HEADERS))) \
	    $(addprefix $(D)/bin/,$(notdir $(PEER_BINS))) \
	    $(if $(NBDKIT_PLUGIN),$(D)/$(NBDKIT_PLUGIN_SUBDIR)/nbdkit-xseg-plugin.so) \
	    $(foreach m,$(MAN_PAGES),$(call man_path,$(m))) $(DESTDIR)$(BASHCOMPDIR)/xseg \
	    $(addprefix $(DESTDIR)$(SYSTEMDUNITDIR)/,$(SYSTEMD_UNITS)) $(DESTDIR)$(XSEG_LIBEXECDIR)/xseg-ready
	$(Q)for d in $(D)/include/xseg $(DESTDIR)$(XSEG_LIBEXECDIR); do \
	    if [ -d $$d ]; then rmdir --ignore-fail-on-non-empty $$d; fi; done

clean:
	$(quiet) CLEAN lib
	$(Q)rm -rf $(XSEG_HOME)/lib/user/*/ $(XSEG_HOME)/lib/user/*.* $(XSEG_HOME)/lib/user-* \
	    $(XSEG_HOME)/build $(XSEG_HOME)/prebuilds $(wildcard $(XSEG_HOME)/lib/node/*.*) \
	    $(XSEG_HOME)/bench/build

help:
	@sed -n '2,13p' $(XSEG_HOME)/Makefile | sed 's/^# \{0,1\}//'
