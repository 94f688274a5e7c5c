# ngx_http_token_ratelimit_module
#
#   make            build build/ngx_http_token_ratelimit_module.so
#   make test       unit tests (Check) and integration tests (t/, real nginx)
#   make run        nginx in the foreground on 127.0.0.1:8080 (conf.d/)
#   make bench      throughput and cost per request against stock nginx,
#                   limit_req and a per-request Redis limiter (bench/; not
#                   a test; takes a few minutes)
#   make bench-reputation   what a reputation lookup costs per request with
#                   1k, 100k and 1M ranges, against geo (bench/README.md)
#   make deb        build/libnginx-mod-http-token-ratelimit_VERSION_ARCH.deb
#   make test-asan  the suite against a build with ASan and UBSan
#   make fuzz       the core's parsers under libFuzzer (t/fuzz)
#
# NGINX_SRC is the nginx source tree to build against; the default is the
# tree Debian's nginx-dev installs (nginx 1.22.1, --with-compat), whose
# conf_flags are used so that the module loads into Debian's /usr/sbin/nginx.

SHELL       := /bin/bash
VERSION     := 0.9.0
NGINX_SRC   ?= /usr/share/nginx/src
NGINX_BIN   ?= /usr/sbin/nginx

BUILD       ?= build
CXX         ?= g++
CC          ?= gcc
CXXFLAGS    ?= -O2 -g
CFLAGS      ?= -O2 -g
# the glue, like Debian's own nginx build (nginx alone would use -O)
NGX_CC_OPT  ?= -g -O2 -fstack-protector-strong -Wformat \
               -Werror=format-security -D_FORTIFY_SOURCE=2
NGX_LD_OPT  ?=

# make test-asan: the same build under build/asan with AddressSanitizer and
# UndefinedBehaviorSanitizer in the core, the glue and the unit tests
ifeq ($(SANITIZE),1)
BUILD       := build/asan
SAN_FLAGS   := -fsanitize=address,undefined -fno-omit-frame-pointer \
               -fno-sanitize-recover=undefined
CXXFLAGS    := -O1 -g $(SAN_FLAGS)
CFLAGS      := -O1 -g $(SAN_FLAGS)
NGX_CC_OPT  := -g -O1 $(SAN_FLAGS)
NGX_LD_OPT  := $(SAN_FLAGS)
endif

CORE_FLAGS  := -std=c++17 -fPIC -fvisibility=hidden -Wall -Wextra -Werror \
               -Isrc/core/include
CORE_SRCS   := $(wildcard src/core/*.cpp)
CORE_OBJS   := $(CORE_SRCS:src/core/%.cpp=$(BUILD)/core/%.o)
CORE_LIB    := $(BUILD)/libtrlcore.a

NGX_BUILD   := $(BUILD)/nginx
MODULE      := $(BUILD)/ngx_http_token_ratelimit_module.so
DASHBOARD_H := src/nginx/ngx_http_token_ratelimit_dashboard_assets.h
GLUE_FILES  := config $(wildcard src/nginx/*.c src/nginx/*.h) \
               $(wildcard src/core/include/*.h) $(DASHBOARD_H)

UNIT_SRCS   := $(wildcard t/unit/*.c)
UNIT_BIN    := $(BUILD)/unit/core_tests

export NGINX_BIN

.PHONY: all core deps unit integration test test-asan test-asan-ci fuzz \
        run bench bench-reputation rep-micro deb clean

all: $(MODULE)

core: $(CORE_LIB)

$(BUILD)/core/%.o: src/core/%.cpp
	@mkdir -p $(dir $@)
	$(CXX) $(CXXFLAGS) $(CORE_FLAGS) -MMD -MP -c $< -o $@

-include $(CORE_OBJS:.o=.d)

$(CORE_LIB): $(CORE_OBJS)
	rm -f $@
	ar rcs $@ $^

# A configured copy of the nginx tree: Debian's nginx-dev ships headers and
# build scripts only, enough for "make modules".  Debian's conf_flags have
# --with-debug (NGX_DEBUG: the module's ngx_log_debug traces are compiled
# in, as in Debian's nginx); without them, the fallback has it too.  The
# core library only has to exist for configure (order-only): a core edit
# relinks the module, it does not configure nginx again nor recompile the
# glue.
$(NGX_BUILD)/objs/Makefile: config Makefile | $(CORE_LIB)
	@test -f $(NGINX_SRC)/configure || { echo "no nginx source tree at" \
	    "$(NGINX_SRC): run scripts/install-deps.sh or set NGINX_SRC"; \
	    exit 1; }
	rm -rf $(NGX_BUILD)
	cp -a $(NGINX_SRC) $(NGX_BUILD)
	cd $(NGX_BUILD) && flags=(--with-compat --with-debug) \
	    && if [ -f conf_flags ]; then . ./conf_flags; \
	           flags=("$${NGX_CONF_FLAGS[@]}"); fi \
	    && TRL_CORE_LIB=$(abspath $(CORE_LIB)) ./configure "$${flags[@]}" \
	           --with-cc-opt="$(NGX_CC_OPT)" --with-ld-opt="$(NGX_LD_OPT)" \
	           --add-dynamic-module=$(CURDIR) > ../nginx-configure.log 2>&1 \
	    || { tail -20 ../nginx-configure.log; exit 1; }

$(MODULE): $(CORE_LIB) $(NGX_BUILD)/objs/Makefile $(GLUE_FILES)
	@# nginx's Makefile does not know the library: relink by hand
	@if [ $(CORE_LIB) -nt $(NGX_BUILD)/objs/ngx_http_token_ratelimit_module.so ]; \
	    then rm -f $(NGX_BUILD)/objs/ngx_http_token_ratelimit_module.so; fi
	$(MAKE) -C $(NGX_BUILD) -f objs/Makefile modules
	@! nm -u $(NGX_BUILD)/objs/ngx_http_token_ratelimit_module.so \
	    | grep -E ' (ngx_http_trl_|trl_)' \
	    || { echo "the module refers to functions nobody defines"; exit 1; }
	cp $(NGX_BUILD)/objs/ngx_http_token_ratelimit_module.so $@.tmp
	mv -f $@.tmp $@     # a new inode: running nginx keeps its mapping

# the dashboard's files, as C strings (the header is committed: nginx's
# own configure builds the module without this Makefile)
$(DASHBOARD_H): share/dashboard.html share/dashboard.css \
                share/dashboard.js scripts/embed-assets.pl
	scripts/embed-assets.pl share > $@.tmp
	mv -f $@.tmp $@

$(UNIT_BIN): $(UNIT_SRCS) t/unit/unit.h $(CORE_LIB)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -Wall -Wextra -Werror -Isrc/core/include \
	    $(UNIT_SRCS) $(CORE_LIB) $$(pkg-config --cflags --libs check) \
	    -lyaml -lstdc++ -o $@

# scripts/install-deps.sh installs what is missing, but only when a package
# the build or the tests cannot do without is missing: the optional tools
# (the tests that use them skip with a message, make bench checks its own)
# are named here, never installed on every run.
OPTIONAL_PKGS := wrk valgrind prometheus chromium libnginx-mod-http-lua

deps:
	@missing=$$(scripts/install-deps.sh --check 2>/dev/null \
	        | sed -n 's/^missing packages: //p'); \
	needed=$$(for p in $$missing; do \
	        case " $(OPTIONAL_PKGS) " in *" $$p "*) ;; *) echo $$p ;; esac; \
	    done); \
	if [ -n "$$needed" ]; then scripts/install-deps.sh; \
	elif [ -n "$$missing" ]; then \
	    echo "optional, not installed: $$missing (the tests that need" \
	         "them skip; scripts/install-deps.sh installs them)"; fi

unit: $(UNIT_BIN)
	$(UNIT_BIN)

integration: $(MODULE)
	prove -I t/lib t/

test: deps
	$(MAKE) all
	$(MAKE) unit
	$(MAKE) integration
	$(MAKE) fuzz FUZZ_SECONDS=5

# The whole suite against the sanitized module: nginx (not instrumented)
# runs with the ASan runtime preloaded, every report goes to a file under
# build/asan/reports and fails the run.  Leaks are not checked (nginx frees
# its pools at exit only in part, by design).
ASAN_RT      = $(shell $(CC) -print-file-name=libasan.so)
# what .ci/run checks under the sanitizers: the functional tests (the
# timing-bound ones measure the sanitizer's slowness, not the module)
ASAN_CI_TESTS := t/api_lists.t t/api_penalties.t t/config_errors.t \
                 t/config_errors_v4.t t/policy_file.t t/keys.t \
                 t/key_address.t t/log_key.t t/response.t t/variables.t \
                 t/bypass_deny.t t/event_log.t t/redis_long_keys.t \
                 t/redis_strict.t t/retry_after.t t/count_modes.t \
                 t/reload.t t/multi_zone.t t/redis_cluster.t t/distinct.t \
                 t/debug_log.t t/reputation.t t/reputation_api.t \
                 t/reputation_file.t t/reputation_redis.t \
                 t/signal.t t/waf_modsecurity.t t/auto_ban.t \
                 t/attack_mode.t t/event_log_ecs.t t/crowdsec_stream.t \
                 t/crowdsec_conf.t t/crowdsec_in.t t/fail2ban.t \
                 t/active_tokens.t t/active_tokens_sync.t
ASAN_REPORTS = $(CURDIR)/build/asan/reports

test-asan: deps
	$(MAKE) SANITIZE=1 all
	$(MAKE) SANITIZE=1 unit
	rm -rf $(ASAN_REPORTS) && mkdir -p $(ASAN_REPORTS) \
	    && chmod 1777 $(ASAN_REPORTS)
	LD_PRELOAD=$(ASAN_RT) \
	ASAN_OPTIONS=detect_leaks=0:abort_on_error=0:log_path=$(ASAN_REPORTS)/asan \
	UBSAN_OPTIONS=print_stacktrace=1:log_path=$(ASAN_REPORTS)/ubsan \
	TRL_MODULE=$(CURDIR)/build/asan/ngx_http_token_ratelimit_module.so \
	TRL_SANITIZED=1 prove -I t/lib $(or $(TESTS),t/)
	@if ls $(ASAN_REPORTS) | grep -q .; then \
	    echo "sanitizer reports:"; head -50 $(ASAN_REPORTS)/*; exit 1; fi
	@echo "no sanitizer report"

test-asan-ci:
	$(MAKE) test-asan TESTS="$(ASAN_CI_TESTS)"

# Fuzz targets (t/fuzz, libFuzzer): the core built by clang with the fuzzer
# and sanitizers, each target run FUZZ_SECONDS from a copy of its corpus.
FUZZ_CXX      ?= clang++
FUZZ_CC       ?= clang
FUZZ_SECONDS  ?= 20
FUZZ_SAN      := -fsanitize=address,undefined -fno-sanitize-recover=undefined
FUZZ_DIR      := build/fuzz
FUZZ_TARGETS  := $(patsubst t/fuzz/%.c,$(FUZZ_DIR)/%,$(wildcard t/fuzz/*.c))
FUZZ_OBJS     := $(CORE_SRCS:src/core/%.cpp=$(FUZZ_DIR)/core/%.o)

$(FUZZ_DIR)/core/%.o: src/core/%.cpp
	@mkdir -p $(dir $@)
	$(FUZZ_CXX) -O1 -g -fsanitize=fuzzer-no-link $(FUZZ_SAN) -std=c++17 \
	    -fPIC -Isrc/core/include -MMD -MP -c $< -o $@

$(FUZZ_DIR)/fuzz_%.o: t/fuzz/fuzz_%.c
	@mkdir -p $(dir $@)
	$(FUZZ_CC) -O1 -g -fsanitize=fuzzer-no-link $(FUZZ_SAN) \
	    -Isrc/core/include -MMD -MP -c $< -o $@

# a header change rebuilds what includes it (a stale object read an old
# struct layout: a false stack-buffer-overflow in fuzz_policy)
-include $(FUZZ_OBJS:.o=.d) $(FUZZ_TARGETS:=.d)

# linked by the C++ driver: the core's UBSan checks need its C++ runtime
$(FUZZ_DIR)/fuzz_%: $(FUZZ_DIR)/fuzz_%.o $(FUZZ_OBJS)
	$(FUZZ_CXX) -fsanitize=fuzzer $(FUZZ_SAN) $< $(FUZZ_OBJS) -lyaml -o $@

.SECONDARY: $(FUZZ_OBJS) $(FUZZ_TARGETS:=.o)

fuzz: $(FUZZ_TARGETS)
	@for f in $(FUZZ_TARGETS); do \
	    name=$${f##*/fuzz_}; rm -rf $(FUZZ_DIR)/corpus-$$name; \
	    cp -r t/fuzz/corpus/$$name $(FUZZ_DIR)/corpus-$$name; \
	    echo "== $$f, $(FUZZ_SECONDS) s"; \
	    (cd $(FUZZ_DIR) && ./fuzz_$$name -max_total_time=$(FUZZ_SECONDS) \
	        -print_final_stats=1 corpus-$$name > fuzz_$$name.log 2>&1); \
	    rc=$$?; \
	    grep -E '^(stat::number_of_executed_units|stat::new_units_added)|ERROR|SUMMARY|deadly signal|^artifact' \
	        $(FUZZ_DIR)/fuzz_$$name.log; \
	    if [ $$rc -ne 0 ]; then echo "fuzz_$$name failed: $(FUZZ_DIR)/fuzz_$$name.log"; \
	        exit 1; fi; \
	done

run: deps
	$(MAKE) all
	scripts/run.sh

bench: deps
	$(MAKE) all
	bench/run.sh

# the reputation table alone: parse, install and lookup times, bytes per
# range, for random lists of 1k, 100k and 1M ranges (REP_SEED repeats a run)
REP_MICRO := $(BUILD)/rep_micro

$(REP_MICRO): bench/rep_micro.cpp $(CORE_LIB)
	@mkdir -p $(dir $@)
	$(CXX) $(CXXFLAGS) -std=c++17 -Wall -Wextra -Werror -Isrc/core/include \
	    $< $(CORE_LIB) -lyaml -o $@

rep-micro: $(REP_MICRO)
	$(REP_MICRO) $(REP_SEED)

# apart from make bench (its own output, build/bench-reputation): loading
# 1M ranges, under callgrind too, takes a few minutes of its own
bench-reputation: deps
	$(MAKE) all
	NO_SYNC=1 ROUNDS=$${ROUNDS:-3} DURATION=$${DURATION:-3} \
	    BENCH_OUT=$${BENCH_OUT:-build/bench-reputation} \
	    perl bench/reputation.pl

deb: $(MODULE)
	scripts/mkdeb.sh $(BUILD)

clean:
	rm -rf $(BUILD)
