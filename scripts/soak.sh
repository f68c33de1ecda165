#!/usr/bin/env bash
# soak.sh runs each binding's package and the example's end-to-end tests
# many times under -race while two CPU hogs (yes > /dev/null) run beside
# them, to catch tests that depend on the scheduler's luck. Not part of
# make test; repeat it by hand:
#
#	scripts/soak.sh            # 30 runs of each package
#	SOAK_COUNT=5 scripts/soak.sh ./zishang520
#	SOAK_HOGS=0 scripts/soak.sh   # no hogs (another soak runs its own)
#	SOAK_PARALLEL=1 scripts/soak.sh  # the packages side by side, not in turn
#
# The packages' tests mostly wait (a package under -race keeps about half
# a core busy on its own), so side by side the soak takes about half as
# long, under a heavier load than in turn. Logs are verbose: count the
# rounds done so far with grep -c '^ok\|^PASS$' $SOAK_LOGS/*.log.
#
# It installs what is missing and starts a private Redis like test.sh,
# prints each package's time and result, and exits non-zero if any run
# failed (the failing logs are kept under $SOAK_LOGS, default a temp dir).
set -euo pipefail

cd "$(dirname "$0")/.."

count="${SOAK_COUNT:-30}"
pkgs=("$@")
[ "${#pkgs[@]}" -gt 0 ] || pkgs=(./zishang520 ./googollee ./example)
logs="${SOAK_LOGS:-$(mktemp -d)}"
mkdir -p "$logs"

./scripts/deps.sh

redis_port="${IOSESSIONS_REDIS_PORT:-6391}"
tmp=$(mktemp -d)
redis-server --bind 127.0.0.1 --port "$redis_port" --save '' --appendonly no \
	--daemonize no --dir "$tmp" --loglevel warning >"$tmp/redis.log" 2>&1 &
redis_pid=$!
hogs=()
cleanup() {
	for p in "${hogs[@]}"; do kill "$p" 2>/dev/null || true; done
	kill "$redis_pid" 2>/dev/null || true
	wait 2>/dev/null || true
	rm -rf "$tmp"
}
trap cleanup EXIT
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
echo "soak: ${pkgs[*]} x $count under -race, CPU hogs: ${hogs[*]:-none}; logs in $logs"

soak() {
	local pkg=$1 name start result failed
	name=$(basename "$pkg")
	start=$(date +%s)
	if go test -race -count="$count" -timeout 6h -v "$pkg" >"$logs/$name.log" 2>&1; then
		result=ok
	else
		result=FAIL
	fi
	failed=$(grep -cE '^\s*--- FAIL:' "$logs/$name.log" || true)
	echo "soak: $pkg x $count: $result in $(($(date +%s) - start)) s ($failed failing tests)"
	[ "$result" = ok ] || grep -E '^\s*--- FAIL:|_test.go:[0-9]+:' "$logs/$name.log" | head -n 20
	[ "$result" = ok ]
}

status=0
if [ "${SOAK_PARALLEL:-0}" = 1 ]; then
	pids=()
	for pkg in "${pkgs[@]}"; do
		soak "$pkg" &
		pids+=($!)
	done
	for p in "${pids[@]}"; do wait "$p" || status=1; done
else
	for pkg in "${pkgs[@]}"; do soak "$pkg" || status=1; done
fi
exit "$status"
