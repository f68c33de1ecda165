#!/usr/bin/env bash
# deps.sh installs what the example and the end-to-end tests need and is
# missing: redis-server and chromium (Debian packages), and the npm packages
# of example/web and test/e2e. It is idempotent: a second run does nothing.
# redis-cli (Debian's redis-tools, which redis-server depends on) makes the
# Redis Cluster of the tests (internal/redistest.StartCluster).
set -euo pipefail

cd "$(dirname "$0")/.."

die() { echo "deps.sh: $*" >&2; exit 1; }

# Debian packages, only when their command is missing.
missing=()
command -v redis-server >/dev/null 2>&1 || missing+=(redis-server)
command -v redis-cli >/dev/null 2>&1 || missing+=(redis-tools)
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
if ((${#missing[@]})); then
	command -v apt-get >/dev/null 2>&1 || die "missing ${missing[*]} and no apt-get to install them; install them by hand"
	sudo=""
	if [ "$(id -u)" -ne 0 ]; then
		command -v sudo >/dev/null 2>&1 || die "missing ${missing[*]}; run as root (or with sudo available) to install them"
		sudo="sudo"
	fi
	echo "deps.sh: installing ${missing[*]} with apt-get"
	log=$(mktemp)
	if ! { $sudo apt-get update -qq && DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}"; } >"$log" 2>&1; then
		tail -n 30 "$log" >&2
		rm -f "$log"
		die "apt-get install ${missing[*]} failed (output above)"
	fi
	rm -f "$log"
fi

# npm packages, only when node_modules is missing or older than the
# package.json / package-lock.json beside it.
command -v node >/dev/null 2>&1 || die "node is missing; install Node.js 18 or newer"
command -v npm >/dev/null 2>&1 || die "npm is missing; install Node.js 18 or newer (it brings npm)"

for dir in example/web test/e2e; do
	[ -f "$dir/package.json" ] || die "$dir/package.json is missing"
	stamp="$dir/node_modules/.package-lock.json" # npm writes it on every install
	if [ -f "$stamp" ] && [ "$stamp" -nt "$dir/package.json" ] &&
		{ [ ! -f "$dir/package-lock.json" ] || [ "$stamp" -nt "$dir/package-lock.json" ]; }; then
		continue
	fi
	echo "deps.sh: installing npm packages in $dir"
	if [ -f "$dir/package-lock.json" ]; then
		cmd=(npm ci --no-audit --no-fund --loglevel=error)
	else
		cmd=(npm install --no-audit --no-fund --loglevel=error)
	fi
	# PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD: playwright-core downloads nothing,
	# but say so anyway; the tests use the system chromium.
	if ! out=$(cd "$dir" && PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 "${cmd[@]}" 2>&1); then
		echo "$out" >&2
		die "'${cmd[*]}' failed in $dir (output above)"
	fi
	touch "$stamp"
done
