.PHONY: run test bench bench-idle

# run starts the example server on http://127.0.0.1:8080 (installs the page's
# npm packages first when missing).
run:
	./scripts/deps.sh && go run ./example

# test is the project's single test command (CI runs it too).
test:
	./scripts/test.sh

# bench-idle reports the heap (B/conn) and goroutines of an idle websocket
# connection in the server, per engine, bare and with iosessions, at 1,000
# and 10,000 connections (the clients run in a child process). With
# IOSESSIONS_IDLE_HEAPPROFILE=/tmp/idle it also writes each case's heap profile.
bench-idle:
	go test -p 1 -run '^$$' -bench BenchmarkIdleConn -benchtime=1x ./googollee/ ./zishang520/

# bench drives the example (each engine, both modes, memory and Redis) and
# a bare server of each engine with the same load from outside, and prints
# one table with the ratios to the bare engine (see bench/main.go).
bench:
	./scripts/deps.sh && go run ./bench
