# cosocket: the ONE build definition (STYLE.md 7, 9; DECISIONS.md 10).
# `make` builds $(BUILD)/cosocket.so and never installs anything; luarocks runs
# `make` and `make install` through the rockspec. Every target that runs tools
# (test, demo, asan, valgrind, lint, format, check-symbols) first runs `deps`,
# which installs only the Debian packages dpkg reports missing.

# luarocks passes these on the command line (beats assignments): own flags go
# in CS_CFLAGS, never in CFLAGS.
LUA_PC     ?= lua5.1
lua_incdir  = $(patsubst -I%,%,$(shell pkg-config --cflags-only-I $(1)))
LUA_INCDIR ?= $(call lua_incdir,$(LUA_PC))
CFLAGS     ?= -O2 -g
LIBFLAG    ?= -shared
BUILD      ?= build
BUILD52    ?= build/lua52
BUILD53    ?= build/lua53
BUILD54    ?= build/lua54

SRCS    = $(wildcard src/*.c)
HDRS    = $(wildcard src/*.h)
OBJS    = $(SRCS:src/%.c=$(BUILD)/%.o)
C_FILES = $(wildcard src/*.[ch])
SO      = $(BUILD)/cosocket.so
FIXTURE = $(BUILD)/fixture
# programs the specs run: the fixture servers, and two Lua states in C
TEST_PROGS = $(FIXTURE) $(BUILD)/two_states

# -Werror only in CI (CI=true, set by .ci/run) or on request (WERROR=1): a new
# compiler's new warning must not break a user's `luarocks make`.
WARN = -std=c99 -D_DEFAULT_SOURCE -Wall -Wextra -Wshadow -Wstrict-prototypes \
       -Wmissing-prototypes -Wformat=2 -Wundef -Wvla \
       -Werror=implicit-function-declaration \
       $(if $(CI)$(filter 1,$(WERROR)),-Werror)
# the specs' peer servers: host compiler, WARN, and never CFLAGS or LDFLAGS
# (`make asan` puts the sanitizers there; fixtures are not the code under test)
FIXTURE_CFLAGS = -O2 -g $(WARN)
# luarocks may pass the same directory for every library (/usr/include):
# sort dedupes, and an empty variable adds no bare -I/-L eating the next word
DEP_INCDIRS = $(sort $(LIBEV_INCDIR) $(LIBTLS_INCDIR) $(CARES_INCDIR) $(PCRE2_INCDIR))
DEP_LIBDIRS = $(sort $(LIBEV_LIBDIR) $(LIBTLS_LIBDIR) $(CARES_LIBDIR) $(PCRE2_LIBDIR))
CS_CFLAGS = $(CFLAGS) -fPIC -fvisibility=hidden $(WARN) \
            $(addprefix -I,$(LUA_INCDIR) $(DEP_INCDIRS))
# never link liblua: the interpreter (lua5.1 or luajit) provides the symbols
# -z nodelete: lua_close dlcloses the module; libtls and libcrypto keep
# process-wide state (their one-time init), which must outlive a Lua state
CS_LIBS = $(addprefix -L,$(DEP_LIBDIRS)) -lev -ltls -lcrypto -lcares -lpcre2-8 -ldl \
          -Wl,-z,nodelete

# `make install` by hand; luarocks passes its own INST_* directories
LUA_VERSION ?= $(shell pkg-config --variable=major_version $(LUA_PC))
INST_PREFIX ?= /usr/local
INST_LIBDIR ?= $(INST_PREFIX)/lib/lua/$(LUA_VERSION)
INST_LUADIR ?= $(INST_PREFIX)/share/lua/$(LUA_VERSION)
INST_BINDIR ?= $(INST_PREFIX)/bin

# Debian 12 packages for building and testing. luajit2 is OpenResty's LuaJIT
# branch; Debian's plain `luajit` package must never be installed with it.
# lua-socket: the specs' own listeners and peers (nothing else here depends
# on it: only a recommendation of luarocks, which .ci/run does not install).
DEB_PACKAGES = build-essential pkg-config libev-dev libtls-dev libssl-dev \
               libc-ares-dev libpcre2-dev luajit2 libluajit2-5.1-dev lua5.1 \
               liblua5.1-0-dev lua5.2 liblua5.2-dev lua5.3 liblua5.3-dev \
               lua5.4 liblua5.4-dev lua-busted luarocks \
               lua-socket lua-check clang clang-format valgrind socat openssl \
               redis-server memcached nginx libnginx-mod-http-lua \
               lua-resty-core libfuzzer-14-dev
SUDO := $(if $(filter 0,$(shell id -u)),,$(shell command -v sudo))

# lua and luajit are not instrumented: the ASan runtime is preloaded into the
# Lua process only (spec/run-all), and the sanitizer build uses gcc.
# float-cast-overflow is not in gcc's "undefined": a Lua number (NaN, 1e300)
# cast to an integer type it does not fit is undefined behaviour too.
SAN      = -fsanitize=address,undefined,float-cast-overflow \
           -fno-sanitize-recover=all
ASAN_CC  = gcc
# --keep-debuginfo: lua_close dlcloses the module before the leak report
VALGRIND = valgrind -q --error-exitcode=99 --leak-check=full \
           --errors-for-leak-kinds=definite --keep-debuginfo=yes
VALGRIND_SCALE = 0.05

ROCK = cosocket-scm-1.src.rock

.PHONY: all build52 build53 build54 deps deps-list test conformance demo asan \
        valgrind fuzz lint format check-symbols rock install clean FORCE
.DELETE_ON_ERROR:

all: $(SO)

$(SO): $(OBJS) $(BUILD)/flags
	@test -n "$(OBJS)" || { echo "no src/*.c to build" >&2; exit 1; }
	$(CC) $(LIBFLAG) $(LDFLAGS) -o $@ $(OBJS) $(CS_LIBS)

# every object depends on every header: few files, and a stale struct layout
# is a miserable bug to chase
$(BUILD)/%.o: src/%.c $(HDRS) $(BUILD)/flags
	$(CC) $(CS_CFLAGS) -c -o $@ $<

# the compile and link lines, rewritten only when they change: `make` then
# `make WERROR=1` (or luarocks' CFLAGS) must rebuild, not reuse old objects
FLAGS_NOW = $(CC) $(CS_CFLAGS) | $(LIBFLAG) $(LDFLAGS) $(CS_LIBS)
$(BUILD)/flags: FORCE
	@mkdir -p $(BUILD)
	@echo '$(FLAGS_NOW)' | cmp -s - $@ || echo '$(FLAGS_NOW)' > $@

FORCE:

# $(BUILD)/flags: a new CC (or -Werror) rebuilds it too
$(FIXTURE): spec/fixtures/fixture.c $(BUILD)/flags
	$(CC) $(FIXTURE_CFLAGS) -o $@ $<

# a C host embedding liblua: the one program here that links it
$(BUILD)/two_states: spec/c/two_states.c $(BUILD)/flags
	$(CC) $(FIXTURE_CFLAGS) $(addprefix -I,$(LUA_INCDIR)) -o $@ $< \
	  $$(pkg-config --libs $(LUA_PC))

# the bench's own programs (bench/run.lua runs them): host compiler, WARN,
# never CFLAGS, as the fixtures
BENCH_PROGS = $(BUILD)/bench/line_server $(BUILD)/bench/raw_client \
              $(BUILD)/bench/rusage
$(BUILD)/bench/%: bench/%.c $(BUILD)/flags
	@mkdir -p $(BUILD)/bench
	$(CC) $(FIXTURE_CFLAGS) -o $@ $<
# W5 (TLS): line_server -tls serves with libtls, the raw C client is OpenSSL's
BENCH_TLS_FLAGS = $(addprefix -I,$(DEP_INCDIRS)) $(addprefix -L,$(DEP_LIBDIRS))
$(BUILD)/bench/line_server: bench/line_server.c $(BUILD)/flags
	@mkdir -p $(BUILD)/bench
	$(CC) $(FIXTURE_CFLAGS) $(BENCH_TLS_FLAGS) -o $@ $< -ltls
$(BUILD)/bench/raw_client: bench/raw_client.c $(BUILD)/flags
	@mkdir -p $(BUILD)/bench
	$(CC) $(FIXTURE_CFLAGS) $(BENCH_TLS_FLAGS) -o $@ $< -lssl -lcrypto

# the 5.2, 5.3 and 5.4 builds get their own directories and headers (STYLE.md 6)
build52 build53 build54: build5%:
	$(MAKE) BUILD=$(BUILD5$*) LUA_PC=lua5.$* \
	  LUA_INCDIR=$(call lua_incdir,lua5.$*) all

# `dpkg -s` exits 0 for removed-but-not-purged packages: read its Status line
deps:
	@missing=; \
	for p in $(DEB_PACKAGES); do \
	  dpkg -s $$p 2>/dev/null | grep -q '^Status: install ok installed' \
	    || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" != 0 ] && [ -z "$(SUDO)" ]; then \
	    echo "make deps: missing$$missing; run as root or install sudo" >&2; \
	    exit 1; \
	  fi; \
	  echo "make deps: installing$$missing"; \
	  $(SUDO) apt-get update && \
	  $(SUDO) env DEBIAN_FRONTEND=noninteractive \
	    apt-get install -y --no-install-recommends $$missing; \
	else \
	  echo "make deps: all $(words $(DEB_PACKAGES)) packages installed"; \
	fi

# the package list, for .ci/run (keeps DEB_PACKAGES the only list)
deps-list:
	@echo $(DEB_PACKAGES)

# deps first, then the build: a recursive make keeps that order under -j
# Lua 5.2, 5.3 and 5.4 are built and tested too: each costs about 45 seconds
# (COSOCKET_LUA52=0, COSOCKET_LUA53=0, COSOCKET_LUA54=0: not)
COSOCKET_LUA52 ?= 1
COSOCKET_LUA53 ?= 1
COSOCKET_LUA54 ?= 1
test: deps
	$(MAKE) all $(TEST_PROGS)
	$(if $(filter 1,$(COSOCKET_LUA52)),$(MAKE) build52)
	$(if $(filter 1,$(COSOCKET_LUA53)),$(MAKE) build53)
	$(if $(filter 1,$(COSOCKET_LUA54)),$(MAKE) build54)
	COSOCKET_LUA52=$(COSOCKET_LUA52) COSOCKET_LUA53=$(COSOCKET_LUA53) \
	  COSOCKET_LUA54=$(COSOCKET_LUA54) COSOCKET_BUILD=$(BUILD) \
	  COSOCKET_BUILD52=$(BUILD52) COSOCKET_BUILD53=$(BUILD53) \
	  COSOCKET_BUILD54=$(BUILD54) spec/run-all

# conformance/: every case run in nginx (the oracle) and on cosocket (LuaJIT
# and Lua 5.1), outputs compared; `make test` runs it too (spec/run-all).
# CONFORMANCE_ARGS: e.g. "-v receive_" (see conformance/run.lua)
conformance: deps
	$(MAKE) all $(FIXTURE)
	COSOCKET_BUILD=$(BUILD) COSOCKET_FIXTURE=$(FIXTURE) \
	  luajit conformance/run.lua $(CONFORMANCE_ARGS)

demo: deps
	$(MAKE) all
	LUA_CPATH='./$(BUILD)/?.so;;' LUA_PATH='./src/?.lua;;' \
	  luajit examples/demo.lua

# The bench (issue #8; bench/run.lua says what it measures). CI never runs it,
# so its peers are installed here only, by `deps` given another list.
# BENCH_SCALE scales the operation counts (the default run takes under 10
# minutes); BENCH_REPS, BENCH_ROWS, BENCH_CELLS: see bench/run.lua.
BENCH_PACKAGES = lua-copas lua-cqueues lua-luv redis-tools \
                 util-linux linux-perf strace
.PHONY: bench bench-deps
bench-deps:
	@$(MAKE) --no-print-directory deps DEB_PACKAGES="$(BENCH_PACKAGES)"

bench: deps
	$(MAKE) bench-deps
	$(MAKE) all $(BENCH_PROGS)
	COSOCKET_BUILD=$(BUILD) luajit bench/run.lua

# The soak (issue #9): 1,000,000 pooled roundtrips by 100 light threads;
# RSS must stay flat after a warm-up and descriptors return to their start.
# Bounded (SOAK_ROUNDTRIPS to scale), not part of `make test`.
SOAK_ROUNDTRIPS ?= 1000000
.PHONY: soak
soak: deps
	$(MAKE) all $(BUILD)/bench/line_server
	SOAK_ROUNDTRIPS=$(SOAK_ROUNDTRIPS) SOAK_SERVER=$(BUILD)/bench/line_server \
	  LUA_CPATH='./$(BUILD)/?.so;;' timeout 600 luajit bench/soak.lua

# lua_close dlcloses the module before LeakSanitizer's report at exit: linked
# with -z nodelete, the .so stays mapped and leak stacks keep their names.
# LeakSanitizer reports nothing of lua5.1's own at exit (checked: passing and
# failing runs, busted's os.exit path), so there is no suppressions file: every
# leak it reports is ours. exitcode=23 (not 1, busted's "a test failed") lets
# spec/run-all tell a sanitizer report at exit from test failures.
asan: deps
	$(MAKE) CC=$(ASAN_CC) BUILD=build/asan \
	  CFLAGS="-O1 -g -fno-omit-frame-pointer $(SAN)" \
	  LDFLAGS="$(SAN) -Wl,-z,nodelete" all build/asan/fixture \
	  build/asan/two_states
	COSOCKET_BUILD=build/asan RUNS=lua51 \
	  COSOCKET_PRELOAD="$$($(ASAN_CC) -print-file-name=libasan.so)" \
	  ASAN_OPTIONS=detect_leaks=1:exitcode=23 \
	  UBSAN_OPTIONS=print_stacktrace=1 \
	  spec/run-all

valgrind: deps
	$(MAKE) all $(TEST_PROGS)
	COSOCKET_BUILD=$(BUILD) RUNS=lua51 COSOCKET_TEST_SCALE=$(VALGRIND_SCALE) \
	  COSOCKET_LUA_WRAPPER="$(VALGRIND)" spec/run-all

# fuzz/ (issue #9): libFuzzer drives buffer.c and pattern.c the way tcp_io.c
# does and checks them against fuzz/model.c (fuzz/receive_fuzz.c says how).
# clang, as gcc has no libFuzzer; never CFLAGS or LDFLAGS. UBSan aborts at its
# first report (no recover), or libFuzzer would not keep the input; $(WARN)
# and $(BUILD)/flags as the fixtures (CI's -Werror rebuilds it). The run works
# on $(BUILD)/fuzz/corpus, seeded from fuzz/corpus/receive/ (what it finds
# stays there for the next run; the repo's corpus is seeds only), for
# FUZZ_SECONDS; a crash or mismatch leaves $(BUILD)/fuzz/crash-<sha1>, which
# `$(BUILD)/fuzz/receive_fuzz FILE` replays.
FUZZ_SECONDS ?= 60
FUZZ_CFLAGS = -g -O1 -fsanitize=fuzzer,address,undefined \
              -fno-sanitize-recover=all $(WARN)
FUZZ_SRCS = src/buffer.c src/pattern.c $(wildcard fuzz/*.c)
$(BUILD)/fuzz/receive_fuzz: $(FUZZ_SRCS) src/buffer.h src/pattern.h \
                            $(wildcard fuzz/*.h) $(BUILD)/flags
	@mkdir -p $(BUILD)/fuzz
	clang $(FUZZ_CFLAGS) -o $@ $(FUZZ_SRCS)

fuzz: deps
	$(MAKE) $(BUILD)/fuzz/receive_fuzz
	mkdir -p $(BUILD)/fuzz/corpus
	cp fuzz/corpus/receive/* $(BUILD)/fuzz/corpus/
	$(BUILD)/fuzz/receive_fuzz -max_total_time=$(FUZZ_SECONDS) \
	  -print_final_stats=1 -artifact_prefix=$(BUILD)/fuzz/ $(BUILD)/fuzz/corpus

# with no C file yet, clang-format must not be left reading stdin
lint: deps
	luacheck .
	$(if $(C_FILES),clang-format --dry-run --Werror $(C_FILES))

format: deps
	$(if $(C_FILES),clang-format -i $(C_FILES))

# Every lua* symbol the module needs must be exported by BOTH interpreters
# (LuaJIT's headers declare functions PUC 5.1 lacks, and luajit does not export
# lua_setlevel); and no writable globals (.data/.bss, thread-locals), since all
# state lives per lua_State. `_...` and `completed.N` come from the C runtime.
# objdump -t: "addr flags section<TAB>size name"; flags may be blank.
check-symbols: deps
	$(MAKE) all
	nm -D --undefined-only $(SO) | awk '{sub(/@.*/,"",$$2)} $$2 ~ /^lua/ {print $$2}' \
	  | sort -u > $(BUILD)/need
	for x in lua5.1 luajit; do nm -D --defined-only $$(readlink -f $$(command -v $$x)) \
	  | awk '{sub(/@.*/,"",$$3); print $$3}' | sort -u > $(BUILD)/has-$$x; done
	@bad=0; \
	comm -12 $(BUILD)/has-lua5.1 $(BUILD)/has-luajit | comm -23 $(BUILD)/need - \
	  | sed 's/^/not exported by both lua5.1 and luajit: /' | grep . && bad=1; \
	objdump -t $(SO) \
	  | awk -F '\t' '{ n = split($$1, a, " "); m = split($$2, b, " ") } \
	      a[n] ~ /^\.(data|bss|tdata|tbss)(\.|$$)/ && a[n] !~ /^\.data\.rel\.ro/ \
	      && b[m] !~ /^(_|completed\.)/' \
	  | sed 's/^/writable global: /' | grep . && bad=1; \
	if [ $$bad = 0 ]; then echo "check-symbols: ok"; fi; \
	exit $$bad

# A .src.rock is a zip of the rockspec plus the source tree in the directory
# luarocks derives from source.url (git+https://.../cosocket.git -> cosocket/).
# `luarocks pack` would clone that url; we zip the working tree instead: files
# git tracks plus untracked ones not ignored (so it works before the first
# commit; build/, .rocks/ and *.src.rock are ignored). Needs git and zip only.
rock:
	rm -rf build/rock $(ROCK)
	mkdir -p build/rock/cosocket
	git ls-files -z --cached --others --exclude-standard \
	  | tar --null -T - --ignore-failed-read -cf - \
	  | tar -xf - -C build/rock/cosocket
	cp cosocket-scm-1.rockspec build/rock/
	cd build/rock && zip -qr ../../$(ROCK) cosocket-scm-1.rockspec cosocket
	rm -rf build/rock
	@echo "wrote $(ROCK)"

# luarocks runs `make install` without the build variables: rebuilding here
# would replace its build with one made with default flags
install:
	test -f $(SO) || $(MAKE) all
	install -d $(DESTDIR)$(INST_LIBDIR)
	install -m 755 $(SO) $(DESTDIR)$(INST_LIBDIR)/cosocket.so
	$(if $(wildcard src/cosocket/*.lua),install -d $(DESTDIR)$(INST_LUADIR)/cosocket)
	$(if $(wildcard src/cosocket/*.lua),install -m 644 $(wildcard src/cosocket/*.lua) \
	  $(DESTDIR)$(INST_LUADIR)/cosocket/)
	$(if $(wildcard bin/cosocket),install -d $(DESTDIR)$(INST_BINDIR))
	$(if $(wildcard bin/cosocket),install -m 755 bin/cosocket $(DESTDIR)$(INST_BINDIR)/)

clean:
	rm -rf build $(ROCK)
