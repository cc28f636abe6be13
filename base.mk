# SPDX-License-Identifier: BSD-2-Clause
# base.mk - every compiler flag and per-domain rule of the project, in one place.
# Included by the top Makefile and by the per-folder Makefiles.
#
#   V=1                full commands instead of "CC foo.o"
#   SAN=asan|ubsan|tsan   build the user domain with a sanitizer into lib/user-$(SAN)/

# Simply expanded, once: MAKEFILE_LIST changes as later files are included.
ifndef XSEG_HOME
XSEG_HOME := $(abspath $(dir $(lastword $(MAKEFILE_LIST))))
endif

ifeq ($(V),1)
  Q :=
  quiet = @true
else
  Q := @
  quiet = @printf '  %-6s %s\n'
endif

CC      ?= cc
CXX     ?= c++
AR      ?= ar
CSTD    := -std=c11
WARN    := -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes -Wmissing-prototypes \
           -Wno-unused-parameter
OPT     ?= -O2 -g
CPPFLAGS_XSEG := -D_GNU_SOURCE -I$(XSEG_HOME)
# Exports of libxseg.so are decided by its version script (xseg/libxseg.map).
CFLAGS_XSEG   := $(CSTD) $(WARN) $(OPT) -fPIC -pthread

# Sanitizer flavours of the user domain.
SAN ?=
ifeq ($(SAN),asan)
  SANFLAGS := -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all
else ifeq ($(SAN),ubsan)
  SANFLAGS := -fsanitize=undefined -fno-sanitize-recover=all
else ifeq ($(SAN),tsan)
  SANFLAGS := -fsanitize=thread -fno-omit-frame-pointer
else ifneq ($(SAN),)
  $(error SAN must be asan, ubsan or tsan, not '$(SAN)')
endif

USER_OUT := $(XSEG_HOME)/lib/user$(if $(SAN),-$(SAN))
USER_OBJ := $(USER_OUT)/obj

# Domain-neutral sources compiled into every domain (xseg/segtype_heap.c: the
# heap segment type), then the user domain's own: its support, segment types and
# drivers (registered from the list sys/user/builtins.h).
CORE_SRCS := $(wildcard $(XSEG_HOME)/xq/*.c) $(wildcard $(XSEG_HOME)/xseg/*.c)
USER_SRCS := $(CORE_SRCS) $(wildcard $(XSEG_HOME)/sys/user/*.c) \
             $(wildcard $(XSEG_HOME)/sys/user/segtypes/*.c) $(wildcard $(XSEG_HOME)/drivers/user/*.c)
USER_OBJS := $(patsubst $(XSEG_HOME)/%.c,$(USER_OBJ)/%.o,$(USER_SRCS))

# Where the loader looks for drivers built elsewhere (sys/user/loader.c): the
# install's $(PREFIX)/$(LIBDIR)/xseg (the top Makefile sets PREFIX and LIBDIR).
XSEG_DRIVER_DIR ?= $(or $(PREFIX),/usr/local)/$(or $(LIBDIR),lib)/xseg
$(USER_OBJ)/sys/user/loader.o: CPPFLAGS_XSEG += -DXSEG_DRIVER_DIR='"$(XSEG_DRIVER_DIR)"'

$(USER_OBJ)/%.o: $(XSEG_HOME)/%.c
	$(quiet) CC $(patsubst $(XSEG_HOME)/%,%,$<)
	$(Q)mkdir -p $(dir $@)
	$(Q)$(CC) $(CPPFLAGS_XSEG) $(CFLAGS_XSEG) $(SANFLAGS) $(CFLAGS) -MMD -MP -c -o $@ $<

-include $(USER_OBJS:.o=.d)

$(USER_OUT)/libxseg.a: $(USER_OBJS)
	$(quiet) AR $(patsubst $(XSEG_HOME)/%,%,$@)
	$(Q)rm -f $@ && $(AR) rcs $@ $^

XSEG_VERSION := 0.1.0
# What the C tools' --version prints (peers/user/peer.h).
CPPFLAGS_XSEG += -DXSEG_RELEASE='"$(XSEG_VERSION)"'
$(USER_OUT)/libxseg.so.$(XSEG_VERSION): $(USER_OBJS) $(XSEG_HOME)/xseg/libxseg.map
	$(quiet) LD $(patsubst $(XSEG_HOME)/%,%,$@)
	$(Q)$(CC) -shared -Wl,-soname,libxseg.so.0 -Wl,--version-script=$(XSEG_HOME)/xseg/libxseg.map \
	    -Wl,--no-undefined $(SANFLAGS) -o $@ $(USER_OBJS) -lrt -ldl -lpthread
	$(Q)ln -sf libxseg.so.$(XSEG_VERSION) $(USER_OUT)/libxseg.so.0
	$(Q)ln -sf libxseg.so.0 $(USER_OUT)/libxseg.so

# Test programs: test/<topic>/<name>.c -> $(USER_OUT)/test/<topic>/<name>
# (test/tools/ holds the tools the tests run, built below, not tests).
TEST_SRCS := $(filter-out $(XSEG_HOME)/test/tools/%,$(wildcard $(XSEG_HOME)/test/*/*.c))
TEST_BINS := $(patsubst $(XSEG_HOME)/test/%.c,$(USER_OUT)/test/%,$(TEST_SRCS))
TEST_HDRS := $(wildcard $(XSEG_HOME)/test/*.h $(XSEG_HOME)/test/*/*.h)
# Libraries a test needs beyond libxseg, by its path under test/ without .c.
TEST_LDLIBS_peers/sha256 := -lcrypto
$(USER_OUT)/test/peers/sha256: $(XSEG_HOME)/peers/user/sha256.h
$(USER_OUT)/test/xseg/size: $(XSEG_HOME)/peers/user/storage.h $(XSEG_HOME)/xseg/xseg_size.h

$(USER_OUT)/test/%: $(XSEG_HOME)/test/%.c $(USER_OUT)/libxseg.a $(TEST_HDRS)
	$(quiet) CCLD $(patsubst $(XSEG_HOME)/%,%,$@)
	$(Q)mkdir -p $(dir $@)
	$(Q)$(CC) $(CPPFLAGS_XSEG) -I$(XSEG_HOME)/test $(CFLAGS_XSEG) -fvisibility=default $(SANFLAGS) \
	    $(CFLAGS) -MMD -MP -MF $@.d -o $@ $< $(USER_OUT)/libxseg.a $(LDFLAGS) $(TEST_LDLIBS_$*) -lrt -ldl -lpthread
# What each test includes beyond test/ (a peer's headers: peers/user/*.h).
-include $(TEST_BINS:=.d)

# A driver built as a shared object and the test that loads it at run time
# (test/sys/so/xseg_tcount.c, test/sys/driverso.c): both link libxseg.so, as a
# driver package and a program using it would, so that they share one libxseg.
$(USER_OUT)/test-drivers/xseg_tcount.so: $(XSEG_HOME)/test/sys/so/xseg_tcount.c \
		$(USER_OUT)/libxseg.so.$(XSEG_VERSION)
	$(quiet) CCLD $(patsubst $(XSEG_HOME)/%,%,$@)
	$(Q)mkdir -p $(dir $@)
	$(Q)$(CC) $(CPPFLAGS_XSEG) $(CFLAGS_XSEG) -fvisibility=hidden $(SANFLAGS) $(CFLAGS) -shared \
	    -Wl,--no-undefined -o $@ $< -L$(USER_OUT) -lxseg
$(USER_OUT)/test/sys/driverso: $(XSEG_HOME)/test/sys/driverso.c $(USER_OUT)/libxseg.so.$(XSEG_VERSION) \
		$(USER_OUT)/test-drivers/xseg_tcount.so $(TEST_HDRS)
	$(quiet) CCLD $(patsubst $(XSEG_HOME)/%,%,$@)
	$(Q)mkdir -p $(dir $@)
	$(Q)$(CC) $(CPPFLAGS_XSEG) -I$(XSEG_HOME)/test $(CFLAGS_XSEG) $(SANFLAGS) $(CFLAGS) -o $@ $< \
	    -L$(USER_OUT) -Wl,-rpath,$(USER_OUT) -lxseg $(LDFLAGS) -lrt -ldl -lpthread

# Tools the tests run (not installed): test/tools/<name>.c -> $(USER_OUT)/test-tools/<name>
# (xseg-corrupt). Outside $(USER_OUT)/test/ so the test runner does not run them as tests.
TEST_TOOL_SRCS := $(wildcard $(XSEG_HOME)/test/tools/*.c)
TEST_TOOL_BINS := $(patsubst $(XSEG_HOME)/test/tools/%.c,$(USER_OUT)/test-tools/%,$(TEST_TOOL_SRCS))

# They link the peer framework too (test/tools/relayd.c is a peer).
$(USER_OUT)/test-tools/%: $(XSEG_HOME)/test/tools/%.c $(USER_OBJ)/peers/user/peer.o $(USER_OUT)/libxseg.a
	$(quiet) CCLD $(patsubst $(XSEG_HOME)/%,%,$@)
	$(Q)mkdir -p $(dir $@)
	$(Q)$(CC) $(CPPFLAGS_XSEG) $(CFLAGS_XSEG) $(SANFLAGS) $(CFLAGS) -MMD -MP -MF $@.d \
	    -o $@ $< $(USER_OBJ)/peers/user/peer.o $(USER_OUT)/libxseg.a $(LDFLAGS) -lrt -ldl -lpthread

-include $(TEST_TOOL_BINS:=.d)

# Keep intermediate objects (peer.o, the peers' own .o).
.SECONDARY:

# C peers: peers/user/<name>.c (each with a main) -> $(USER_OUT)/bin/<name>,
# linked with the peer framework (peers/user/peer.c).
PEER_LIB  := $(USER_OBJ)/peers/user/peer.o
PEER_SRCS := $(filter-out %/peer.c %/xseg-debug.c,$(wildcard $(XSEG_HOME)/peers/user/*.c))
PEER_BINS := $(patsubst $(XSEG_HOME)/peers/user/%.c,$(USER_OUT)/bin/%,$(PEER_SRCS))
# Parts of a peer in files of their own (no main): xseg-tool's debug commands.
$(USER_OUT)/bin/xseg-tool: $(USER_OBJ)/peers/user/xseg-debug.o
# Libraries a peer needs beyond libxseg, by its name: the peers that hash
# (peers/user/sha256.h) link OpenSSL's libcrypto.
PEER_LDLIBS_filed  := -lcrypto
PEER_LDLIBS_radosd := -lcrypto

# radosd links librados (librados-dev: tools/install-deps check). Without it
# radosd is not built, and the build says so; under CI=true that is an error.
RADOS_OK := $(shell printf '\043include <rados/librados.h>\n' | $(CC) -E -x c - >/dev/null 2>&1 && echo 1)
# (At build time, not when make reads this file: `make check` installs the
# packages first, and a fresh machine must get that far.)
ifeq ($(RADOS_OK),)
ifeq ($(CI),true)
$(USER_OUT)/bin/radosd:
	@echo "radosd needs librados-dev (<rados/librados.h>): run tools/install-deps check" >&2; exit 1
else
ifneq ($(filter $(USER_OUT)/bin/radosd,$(PEER_BINS)),)
$(info radosd is NOT built: librados-dev is missing (<rados/librados.h>); run tools/install-deps check)
endif
PEER_BINS := $(filter-out $(USER_OUT)/bin/radosd,$(PEER_BINS))
endif
endif
PEER_LDLIBS_radosd += -lrados

$(USER_OBJ)/peers/user/%.o: $(XSEG_HOME)/peers/user/%.c
	$(quiet) CC $(patsubst $(XSEG_HOME)/%,%,$<)
	$(Q)mkdir -p $(dir $@)
	$(Q)$(CC) $(CPPFLAGS_XSEG) $(CFLAGS_XSEG) $(SANFLAGS) $(CFLAGS) -MMD -MP -c -o $@ $<

$(USER_OUT)/bin/%: $(USER_OBJ)/peers/user/%.o $(PEER_LIB) $(USER_OUT)/libxseg.a
	$(quiet) CCLD $(patsubst $(XSEG_HOME)/%,%,$@)
	$(Q)mkdir -p $(dir $@)
	$(Q)$(CC) $(CFLAGS_XSEG) $(SANFLAGS) $(CFLAGS) -o $@ $^ $(LDFLAGS) $(PEER_LDLIBS_$*) -lrt -ldl

-include $(patsubst $(XSEG_HOME)/%.c,$(USER_OBJ)/%.d,$(PEER_SRCS) $(XSEG_HOME)/peers/user/peer.c \
	   $(XSEG_HOME)/peers/user/xseg-debug.c)

# The nbdkit plugin (peers/user/nbdkit/): nbdkit-xseg-plugin.so with libxseg
# linked in and only plugin_init exported, when nbdkit's plugin header is
# installed (Debian nbdkit-plugin-dev). A sanitizer build has one too, for
# nbdkit started with the sanitizer's runtime preloaded (test/scripts/nbdkit-san.sh).
NBDKIT_PLUGIN_DIR := $(shell pkg-config --variable=plugindir nbdkit 2>/dev/null)
NBDKIT_PLUGIN := $(if $(NBDKIT_PLUGIN_DIR),$(USER_OUT)/nbdkit/nbdkit-xseg-plugin.so)
# Where make install puts it: nbdkit's plugin folder with nbdkit's prefix
# replaced by ours (/usr/lib/x86_64-linux-gnu/nbdkit/plugins for PREFIX=/usr).
NBDKIT_PREFIX := $(if $(NBDKIT_PLUGIN_DIR),$(shell pkg-config --variable=prefix nbdkit 2>/dev/null))
NBDKIT_PLUGIN_SUBDIR := $(patsubst $(NBDKIT_PREFIX)/%,%,$(NBDKIT_PLUGIN_DIR))

$(USER_OBJ)/peers/user/nbdkit/%.o: $(XSEG_HOME)/peers/user/nbdkit/%.c
	$(quiet) CC $(patsubst $(XSEG_HOME)/%,%,$<)
	$(Q)mkdir -p $(dir $@)
	$(Q)$(CC) $(CPPFLAGS_XSEG) $(CFLAGS_XSEG) $(SANFLAGS) $(shell pkg-config --cflags nbdkit 2>/dev/null) \
	    $(CFLAGS) -MMD -MP -c -o $@ $<

$(USER_OUT)/nbdkit/nbdkit-xseg-plugin.so: $(USER_OBJ)/peers/user/nbdkit/xseg-plugin.o $(USER_OUT)/libxseg.a \
		$(XSEG_HOME)/peers/user/nbdkit/plugin.map
	$(quiet) LD $(patsubst $(XSEG_HOME)/%,%,$@)
	$(Q)mkdir -p $(dir $@)
	$(Q)$(CC) -shared -Wl,--version-script=$(XSEG_HOME)/peers/user/nbdkit/plugin.map -Wl,--exclude-libs,ALL \
	    $(SANFLAGS) $(CFLAGS) -o $@ $(USER_OBJ)/peers/user/nbdkit/xseg-plugin.o $(USER_OUT)/libxseg.a $(LDFLAGS) -lrt -ldl -lpthread

-include $(USER_OBJ)/peers/user/nbdkit/xseg-plugin.d
