#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-2-Clause
# Description: bash completion for xseg (sys/user/bash-completion/xseg), as
# bash runs it: COMP_LINE/COMP_POINT/COMP_WORDS/COMP_CWORD set for a line
# (COMP_WORDS split at ':' as bash does), _xseg called, COMPREPLY checked:
# subcommands, each one's options, --op and --peer-type values, list's types,
# TOML files for serve, segments for SPEC from `xseg list` (a stub xseg first;
# then the real CLI with a real segment, when the node domain is built), a
# spec typed across the ':' word break, nothing for a second argument; and
# make install puts the file where bash-completion loads it.
set -u
. "$(dirname "$0")/lib.sh"
ts_tmp xseg-completion
seg=cmpl$tag
specs+=("posix:$seg:4:8:4K:0:12")

COMP_WORDBREAKS=$' \t\n"\'><=;|&(:'
# shellcheck source=../../sys/user/bash-completion/xseg
. "$home/sys/user/bash-completion/xseg"
complete -p xseg | grep -q -- '-F _xseg' || fail "no 'complete -F _xseg xseg'"

# comp LINE: the completions bash would offer at the end of LINE, one line.
comp() {
  COMP_LINE=$1
  COMP_POINT=${#1}
  local IFS=$' \t\n' split
  # bash's split: blanks separate, ':' is a word of its own.
  split=$(sed 's/:/ : /g' <<<"$1")
  read -r -a COMP_WORDS <<<"$split"
  [[ $1 =~ [[:space:]]$ || $1 == *: ]] && COMP_WORDS+=("")
  COMP_CWORD=$((${#COMP_WORDS[@]} - 1))
  COMPREPLY=()
  _xseg
  printf '%s\n' "${COMPREPLY[@]}" | sort | tr '\n' ' ' | sed 's/ $//'
}
expect() {
  local got
  got=$(comp "$1")
  [ "$got" = "$2" ] || fail "completing '$1': got '$got', expected '$2'"
}
has() {
  local got w
  got=" $(comp "$1") "
  for w in $2; do [[ $got == *" $w "* ]] || fail "completing '$1': no '$w' in '$got'"; done
}

# A stub xseg on PATH: `xseg list` prints two names.
mkdir -p "$tmp/bin" "$tmp/cfg/sub"
printf '#!/bin/sh\n[ "$1" = list ] && printf "alpha\\nbeta\\n"\n' > "$tmp/bin/xseg"
chmod +x "$tmp/bin/xseg"
PATH=$tmp/bin:$PATH

has "xseg " "create destroy list status top recover verify config submit bench pattern serve demo nbd --help --version"
expect "xseg st" "status"
expect "xseg re" "recover"
expect "xseg status " "posix:alpha posix:beta"
expect "xseg status posix:b" "beta"			# bash inserts what follows the ':'
expect "xseg top posix:" "alpha beta"
expect "xseg status posix:alpha " ""			# one SPEC only
has "xseg submit posix:alpha --" "--op --depth --target --verify --json --peer-type"
expect "xseg submit posix:alpha --op wr" "write write_zeroes"
expect "xseg submit posix:alpha -p " ""
expect "xseg --peer-type f" "futex"
expect "xseg --peer-type futex sta" "status"
expect "xseg list " "file heap posix segdev sysv"
has "xseg nbd posix:alpha --" "--port --bind-port --unix --export --request-timeout"
expect "xseg top posix:alpha --o" "--once"
expect "xseg create p" "posix:"
touch "$tmp/cfg/a.toml" "$tmp/cfg/b.txt"
expect "xseg serve $tmp/cfg/" "$tmp/cfg/a.toml $tmp/cfg/sub/"

# The real CLI and a real segment, when built.
if [ -f "$home/lib/node/cli.js" ] && [ -x "$home/lib/user/bin/xseg-tool" ] && command -v node >/dev/null; then
  printf '#!/bin/sh\nexec node "%s/lib/node/cli.js" "$@"\n' "$home" > "$tmp/bin/xseg"
  "$home/lib/user/bin/xseg-tool" create "posix:$seg:4:8:4K:0:12" || fail "create posix:$seg"
  has "xseg status " "posix:$seg"
  expect "xseg verify posix:$seg" "$seg"
else
  echo "note: the node domain is not built; the real xseg list was not tried"
  [ "${CI:-}" = true ] && fail "under CI the real CLI must be tried (make node)"
fi

# make install puts it where bash-completion loads it on demand.
make -s -C "$home" install DESTDIR="$tmp/root" PREFIX=/usr >/dev/null || fail "make install"
cmp "$home/sys/user/bash-completion/xseg" "$tmp/root/usr/share/bash-completion/completions/xseg" ||
  fail "make install did not install the completion as share/bash-completion/completions/xseg"
echo "ok"
