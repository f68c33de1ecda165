#!/usr/bin/env bash
# soak.sh runs each binding's package and the example's end-to-end tests
# many times under -race while two CPU hogs (yes > /dev/null) run beside
# them, to catch tests that depend on the scheduler's luck. Not part of
# make test; repeat it by hand:
#
#	scripts/soak.sh                      # 30 rounds of each package
#	SOAK_COUNT=5 scripts/soak.sh ./zishang520
#	SOAK_HOGS=0 scripts/soak.sh          # no hogs
#	SOAK_LOGS=/work/soaklogs scripts/soak.sh   # resumable: see below
#
# A round is one `go test -race -count=1 -v PKG`, in its own process
# group; the packages take turns (zishang520, googollee, example,
# zishang520, ...) so that a soak cut short has run each about as often.
#
# It yields to CI: while another scripts/test.sh or .ci/run runs on the
# machine, it stops the hogs and the current round (SIGSTOP to its process
# group), and once that run has ended it resumes them and runs the
# interrupted round again (its timers jumped, so its result does not
# count; its log is kept as PKG-N.interrupted.log).
#
# Every finished round appends a line to $SOAK_LOGS/rounds (package, round,
# result, seconds, code, commit). "code" names the tree without its
# Markdown files and this script, which no test reads: started again with
# the same SOAK_LOGS on the same code (a commit that changed only those
# included), it goes on from the rounds already there; on other code it
# refuses (move the directory away to start over). Failing rounds keep
# their verbose log as PKG-N.log; passing ones too (they hold each test's
# time).
#
# It installs what is missing and starts a private Redis like test.sh,
# prints each round's time and result, and exits non-zero if any round
# failed.
set -euo pipefail

cd "$(dirname "$0")/.."

count="${SOAK_COUNT:-30}"
pkgs=("$@")
[ "${#pkgs[@]}" -gt 0 ] || pkgs=(./zishang520 ./googollee ./example)
logs="${SOAK_LOGS:-$(mktemp -d)}"
mkdir -p "$logs"
logs=$(cd "$logs" && pwd)
commit=$(git rev-parse --short HEAD)
if ! git diff --quiet HEAD -- . ':!*.md' ':!scripts/soak.sh'; then
	echo "soak: the working tree has uncommitted changes to code; commit or stash them" >&2
	exit 2
fi
code=$(git ls-tree -r HEAD | grep -vE $'\t(.*\\.md|scripts/soak\\.sh)$' | git hash-object --stdin | cut -c1-12)
rounds="$logs/rounds"
touch "$rounds"
if awk -v c="$code" '$5 != c { bad = 1 } END { exit !bad }' "$rounds"; then
	echo "soak: $rounds holds rounds of other code than $code (commit $commit); move $logs away to start over" >&2
	exit 2
fi

say() { echo "soak: $(date +%T) $*"; }

./scripts/deps.sh

redis_port="${IOSESSIONS_REDIS_PORT:-6391}"
tmp=$(mktemp -d)
redis-server --bind 127.0.0.1 --port "$redis_port" --save '' --appendonly no \
	--daemonize no --dir "$tmp" --loglevel warning >"$tmp/redis.log" 2>&1 &
redis_pid=$!
hogs=()
round_pid=""
cleanup() {
	[ -z "$round_pid" ] || kill -CONT -- "-$round_pid" 2>/dev/null || true
	[ -z "$round_pid" ] || kill -TERM -- "-$round_pid" 2>/dev/null || true
	for p in "${hogs[@]}"; do kill -CONT "$p" 2>/dev/null || true; kill "$p" 2>/dev/null || true; done
	kill "$redis_pid" 2>/dev/null || true
	wait 2>/dev/null || true
	rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
for _ in $(seq 1 100); do
	redis-cli -p "$redis_port" ping >/dev/null 2>&1 && break
	sleep 0.1
done

export IOSESSIONS_REDIS_URL="redis://127.0.0.1:$redis_port/0"
export IOSESSIONS_E2E=1 IOSESSIONS_E2E_RACE=1

for _ in $(seq 1 "${SOAK_HOGS:-2}"); do
	yes >/dev/null &
	hogs+=($!)
done
say "${pkgs[*]} x $count under -race on code $code (commit $commit), CPU hogs: ${hogs[*]:-none}; logs in $logs"

# ci_running reports whether a CI run (scripts/test.sh or .ci/run) other
# than this soak's own processes is running.
ci_running() {
	pgrep -f '(^|[ /])(scripts/test\.sh|\.ci/run)( |$)' >/dev/null
}

# yield stops the hogs and the round while CI runs, then resumes them; it
# returns 0 if it had to yield.
yield() {
	ci_running || return 1
	say "a CI run started: pausing the hogs${round_pid:+ and the round}"
	for p in "${hogs[@]}"; do kill -STOP "$p" 2>/dev/null || true; done
	[ -z "$round_pid" ] || kill -STOP -- "-$round_pid" 2>/dev/null || true
	local quiet=0
	while [ "$quiet" -lt 5 ]; do
		if ci_running; then quiet=0; else quiet=$((quiet + 1)); fi
		sleep 1
	done
	say "the CI run ended: resuming"
	[ -z "$round_pid" ] || kill -CONT -- "-$round_pid" 2>/dev/null || true
	for p in "${hogs[@]}"; do kill -CONT "$p" 2>/dev/null || true; done
	return 0
}

# round runs one round of pkg, number n, and records it unless a CI run
# interrupted it (then it returns 2 and the caller runs it again).
round() {
	local pkg=$1 n=$2 name log start secs result failed interrupted=0
	name=$(basename "$pkg")
	log="$logs/$name-$n.log"
	while yield; do :; done
	start=$(date +%s)
	setsid go test -race -count=1 -timeout 30m -v "$pkg" >"$log" 2>&1 &
	round_pid=$!
	while kill -0 "$round_pid" 2>/dev/null; do
		if yield; then interrupted=1; fi
		sleep 1
	done
	result=ok
	wait "$round_pid" || result=FAIL
	round_pid=""
	secs=$(($(date +%s) - start))
	if [ "$interrupted" = 1 ]; then
		mv "$log" "$logs/$name-$n.interrupted.log"
		say "$pkg round $n: interrupted by a CI run ($result in $secs s, not counted); again"
		return 2
	fi
	failed=$(grep -cE '^\s*--- FAIL:' "$log" || true)
	echo "$name $n $result $secs $code $commit" >>"$rounds"
	say "$pkg round $n/$count: $result in $secs s ($failed failing tests)"
	[ "$result" = ok ] || grep -E '^\s*--- FAIL:|_test.go:[0-9]+:|^panic:' "$log" | head -n 20
}

done_rounds() { awk -v p="$1" '$1 == p' "$rounds" | wc -l; }

for n in $(seq 1 "$count"); do
	for pkg in "${pkgs[@]}"; do
		[ "$(done_rounds "$(basename "$pkg")")" -lt "$n" ] || continue
		until round "$pkg" "$n"; rc=$?; [ "$rc" != 2 ]; do :; done
	done
done

status=0
for pkg in "${pkgs[@]}"; do
	name=$(basename "$pkg")
	awk -v p="$name" '$1 == p { n++; t += $4; if ($3 != "ok") f++; if (min == "" || $4 < min) min = $4; if ($4 > max) max = $4 }
		END { printf "soak: %s: %d rounds, %d failed; %d s in all, %d-%d s a round\n", p, n, f, t, min, max; exit f > 0 }' "$rounds" || status=1
done
exit "$status"
