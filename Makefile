.PHONY: run test

# run starts the example server on http://127.0.0.1:8080 (installs the page's
# npm packages first when missing).
run:
	./scripts/deps.sh && go run ./example

# test is the project's single test command (CI runs it too).
test:
	./scripts/test.sh
