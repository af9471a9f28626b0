# Thin front for CMake. `make test` builds and runs every test suite:
# normal, ASan+UBSan, TSan, the ucontext fallback and aarch64 under qemu-user.
JOBS ?= $(shell nproc)
WERROR := $(if $(CI),-DAIOC_WERROR=ON,)
# Tests and the demo talk to servers on loopback only: without the proxy
# variables, which would send their requests elsewhere.
NOPROXY := env -u http_proxy -u HTTP_PROXY -u https_proxy -u HTTPS_PROXY \
  -u all_proxy -u ALL_PROXY -u no_proxy -u NO_PROXY
CTEST := $(NOPROXY) ctest --output-on-failure -j$(JOBS)
BENCH ?= B1,B2,B3,B4,B5,B6,B6n,B6tls,B7,B8,B9,B10
PREFIX ?= /usr/local

.PHONY: all build deps test test-normal test-asan test-tsan test-ucontext \
        test-aarch64 \
        demo demo-amqp bench valgrind install clean

all: build

deps:
	@scripts/install-deps.sh

build:
	cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo $(WERROR) >/dev/null
	cmake --build build -j$(JOBS)

test: deps test-normal test-asan test-tsan test-ucontext test-aarch64
	@echo "make test: all suites passed (normal, asan+ubsan, tsan, ucontext, aarch64)"

test-normal:
	cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo $(WERROR) >/dev/null
	cmake --build build -j$(JOBS)
	cd build && $(CTEST)

test-asan:
	cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=Debug \
	  -DAIOC_SANITIZE=address,undefined $(WERROR) >/dev/null
	cmake --build build-asan -j$(JOBS)
	cd build-asan && ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
	  UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 $(CTEST)

test-tsan:
	cmake -S . -B build-tsan -DCMAKE_BUILD_TYPE=Debug -DAIOC_SANITIZE=thread \
	  -DAIOC_EXAMPLES=OFF $(WERROR) >/dev/null
	cmake --build build-tsan -j$(JOBS)
	cd build-tsan && TSAN_OPTIONS=halt_on_error=1 $(CTEST)

test-ucontext:
	cmake -S . -B build-ucontext -DCMAKE_BUILD_TYPE=Debug -DAIOC_UCONTEXT=ON \
	  -DAIOC_EXAMPLES=OFF $(WERROR) >/dev/null
	cmake --build build-ucontext -j$(JOBS)
	cd build-ucontext && $(CTEST)

test-aarch64:
	cmake -S . -B build-aarch64 -DCMAKE_BUILD_TYPE=RelWithDebInfo \
	  -DCMAKE_TOOLCHAIN_FILE=cmake/aarch64-linux-gnu.cmake \
	  -DAIOC_EXAMPLES=OFF $(WERROR) >/dev/null
	cmake --build build-aarch64 -j$(JOBS)
	cd build-aarch64 && AIOC_TEST_QEMU=1 $(CTEST)

# The RPC demo over a throwaway RabbitMQ (installs it if missing).
demo-amqp:
	@scripts/install-deps.sh
	@cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
	@cmake --build build -j$(JOBS) --target aioc-rpc >/dev/null
	@scripts/demo-amqp.sh build/tools/aioc-rpc

demo:
	@scripts/install-deps.sh --minimal
	@cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
	@cmake --build build -j$(JOBS) --target demo >/dev/null
	@$(NOPROXY) ./build/examples/demo --trace build/demo-rpc-trace.json
	@python3 tools/aioc-trace2svg.py build/demo-rpc-trace.json \
	  -o build/demo-rpc-timeline.svg | sed 's/^/timeline of the RPC call: /'

bench:
	@scripts/install-deps.sh --bench
	cmake -S . -B build-bench -DCMAKE_BUILD_TYPE=Release -DAIOC_BENCH=ON \
	  -DAIOC_TESTS=OFF -DAIOC_EXAMPLES=OFF >/dev/null
	cmake --build build-bench -j$(JOBS)
	python3 bench/run.py --bench $(BENCH) --aioc-bin build-bench/bench

valgrind: deps
	cmake -S . -B build-vg -DCMAKE_BUILD_TYPE=Debug -DAIOC_EXAMPLES=OFF >/dev/null
	cmake --build build-vg -j$(JOBS)
	@for t in test_coro test_loop test_task test_combine; do \
	  echo "== valgrind $$t"; \
	  AIOC_TEST_VALGRIND=1 valgrind -q --error-exitcode=1 --leak-check=full \
	    --errors-for-leak-kinds=definite build-vg/tests/$$t || exit 1; \
	done
	@echo "make valgrind: core tests clean under memcheck"

# make install PREFIX=/some/dir (default /usr/local); DESTDIR is honoured.
install: build
	DESTDIR="$(DESTDIR)" cmake --install build --prefix "$(abspath $(PREFIX))"

clean:
	rm -rf build build-asan build-tsan build-ucontext build-aarch64 build-bench \
	  build-vg
