# SPDX-License-Identifier: BSD-2-Clause
# xseg - top-level build. See README.md; every flag lives in base.mk.
#
#   make                 build every domain that has sources and a toolchain
#   make DOMAINS=user    build only the listed domains
#   make check           build and run all tests; ends with "N passed, N failed, N skipped"
#   make bench           run the benchmarks against in-run baselines
#   make demo            the main job
#   make asan|ubsan|tsan build the user domain with a sanitizer (lib/user-<san>/)
#   make check-san       run the C tests under ASan+UBSan and TSan
#   V=1                  show full commands

XSEG_HOME := $(abspath $(dir $(lastword $(MAKEFILE_LIST))))
include $(XSEG_HOME)/base.mk
include $(XSEG_HOME)/sys/kernel/kernel.mk

DOMAINS ?= $(shell $(XSEG_HOME)/tools/xseg-domain-targets --buildable)

.PHONY: install all user node check check-run check-c check-san asan ubsan tsan bench demo deps clean help
.DEFAULT_GOAL := all

all: $(DOMAINS)

user: $(USER_OUT)/libxseg.a $(USER_OUT)/libxseg.so.$(XSEG_VERSION) $(PEER_BINS) $(TEST_TOOL_BINS) \
      $(TEST_BINS)

# The node domain: node_modules, the addon (prebuildify) and the TypeScript (tsup).
node:
	$(Q)$(XSEG_HOME)/sys/node/build

asan ubsan tsan:
	$(Q)$(MAKE) --no-print-directory SAN=$@ user

deps:
	$(Q)$(XSEG_HOME)/tools/install-deps check

# Every test of the machine, one runner, one summary line. Under CI (or with
# CHECK_SAN=1) the C tests also run built with ASan+UBSan and with TSan. The
# last test, tools/tree-check, fails if the build or the tests changed a
# tracked file (compared with a record taken before anything was built).
CHECK_SAN ?= $(if $(filter true,$(CI)),1)
check:
	$(Q)state=$$(mktemp /tmp/xseg-tree.XXXXXX) && $(XSEG_HOME)/tools/tree-check save "$$state" && \
	  XSEG_TREE_STATE="$$state" $(MAKE) --no-print-directory check-run; rc=$$?; rm -f "$$state"; exit $$rc

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

# The main job: blockd and the NBD gateway on a temporary volume, a verified
# workload and a failover through them (peers/node/cli/demo.ts). DEMO_ARGS='--size 1G -v'.
demo: deps user node
	$(Q)node $(XSEG_HOME)/lib/node/cli.js demo $(DEMO_ARGS)

# make install PREFIX=/usr/local DESTDIR=: libxseg (.so and .a), headers under
# include/xseg/, xseg.pc, and the C peers and xseg-tool.
PREFIX ?= /usr/local
LIBDIR ?= lib
DESTDIR ?=
INSTALL_HEADERS := xseg/xseg.h xseg/xseg_layout.h xq/xq.h xq/xq_layout.h sys/domain.h \
                   sys/user/domain_user.h drivers/user/posixfd.h drivers/user/signal_area.h
install: user
	$(quiet) INSTALL $(DESTDIR)$(PREFIX)
	$(Q)install -d $(DESTDIR)$(PREFIX)/$(LIBDIR)/pkgconfig $(DESTDIR)$(PREFIX)/bin
	$(Q)install -m 0644 $(USER_OUT)/libxseg.a $(DESTDIR)$(PREFIX)/$(LIBDIR)/
	$(Q)install -m 0755 $(USER_OUT)/libxseg.so.$(XSEG_VERSION) $(DESTDIR)$(PREFIX)/$(LIBDIR)/
	$(Q)ln -sf libxseg.so.$(XSEG_VERSION) $(DESTDIR)$(PREFIX)/$(LIBDIR)/libxseg.so.0
	$(Q)ln -sf libxseg.so.0 $(DESTDIR)$(PREFIX)/$(LIBDIR)/libxseg.so
	$(Q)for h in $(INSTALL_HEADERS); do \
	    install -D -m 0644 $(XSEG_HOME)/$$h $(DESTDIR)$(PREFIX)/include/xseg/$$h || exit 1; done
	$(Q)sed -e 's|@PREFIX@|$(PREFIX)|' -e 's|@LIBDIR@|$(LIBDIR)|' -e 's|@VERSION@|$(XSEG_VERSION)|' \
	    $(XSEG_HOME)/xseg/xseg.pc.in > $(DESTDIR)$(PREFIX)/$(LIBDIR)/pkgconfig/xseg.pc
	$(Q)install -m 0755 $(PEER_BINS) $(DESTDIR)$(PREFIX)/bin/

clean:
	$(quiet) CLEAN lib
	$(Q)rm -rf $(XSEG_HOME)/lib/user/*/ $(XSEG_HOME)/lib/user/*.* $(XSEG_HOME)/lib/user-* \
	    $(XSEG_HOME)/build $(XSEG_HOME)/prebuilds $(wildcard $(XSEG_HOME)/lib/node/*.*) \
	    $(XSEG_HOME)/bench/build

help:
	@sed -n '2,13p' $(XSEG_HOME)/Makefile | sed 's/^# \{0,1\}//'
