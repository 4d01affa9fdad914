# Hikyaku - one non-recursive Makefile. Every output goes under build/
# (generated re2c/Lemon code and objects per flavour in build/<flavour>/,
# the gen/ folder included). See README.md for the two commands that matter:
#   make run    install missing Debian packages, build, run the demo
#   make test   install missing Debian packages, build, run every test
# Other targets: all, check (tests without the install step), golden-update,
# fuzz, bench, clean. Flavours: SAN=address,undefined (sanitizers),
# VALGRIND=1 (tests under valgrind), DEBUG=1.

CC      ?= gcc
PREFIX  ?= /usr/local
LEMPAR  ?= /usr/share/lemon/lempar.c

# libraries: the rule language needs PCRE2, OpenSSL's libcrypto and jansson;
# the servers add libevent (with its OpenSSL and pthreads glue), c-ares,
# libxcrypt (yescrypt), libidn (SASLprep) and GDBM (no .pc file).
PKGS    := libpcre2-8 libssl libcrypto jansson libevent libevent_openssl libevent_pthreads libcares libxcrypt libidn
EXTRA_LIBS := -lgdbm -lpthread
WARN    := -Wall -Wextra -Wshadow -Wstrict-prototypes -Wmissing-prototypes \
           -Wmissing-declarations -Wpointer-arith -Wcast-qual -Wwrite-strings \
           -Wformat=2 -Wundef -Werror=implicit-function-declaration -Wvla
ifeq ($(CI),true)
WARN    += -Werror
endif
OPT     ?= -O2
CFLAGS  ?= $(OPT) -g
BASE_CFLAGS := -std=c11 -D_GNU_SOURCE -fno-common -fstack-protector-strong \
           -I. -Iruntime -Ilang -Iservers $(WARN)
ifeq ($(DEBUG),1)
BASE_CFLAGS += -DHK_DEBUG=1
else
BASE_CFLAGS += -DNDEBUG -D_FORTIFY_SOURCE=2
endif

FLAVOUR := default
ifneq ($(SAN),)
FLAVOUR := san
BASE_CFLAGS += -fsanitize=$(SAN) -fno-sanitize-recover=all -fno-omit-frame-pointer
LDFLAGS += -fsanitize=$(SAN)
endif
ifeq ($(DEBUG),1)
FLAVOUR := $(FLAVOUR)-debug
endif

BUILD_DIR ?= build/$(FLAVOUR)
B       := $(BUILD_DIR)
GEN     := $(B)/gen
PKG_CFLAGS = $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS   = $(shell pkg-config --libs $(PKGS) 2>/dev/null)
LIBS    = $(PKG_LIBS) $(EXTRA_LIBS)

ALL_CFLAGS = $(BASE_CFLAGS) -I$(GEN)/lang $(PKG_CFLAGS) $(CFLAGS)

# Quiet by default; `make V=1` prints the commands.
ifeq ($(V),1)
Q :=
say = @true
else
Q := @
say = @printf '  %-7s %s\n'
endif

# --- sources ----------------------------------------------------------------
LANG_SRC    := $(wildcard lang/*.c)
RUNTIME_SRC := $(wildcard runtime/*.c)
GEN_SRC     := $(GEN)/lang/lexer.c $(GEN)/lang/grammar.c
# servers/: main.c and the command files at the top, one folder per
# server or service below it (smtp/, dns/, ...); all but main.c also go
# into a library so unit tests can link them.
CLI_SRC     := servers/main.c
SERV_SRC    := $(filter-out servers/main.c,$(wildcard servers/*.c servers/*/*.c))
LIB_OBJ     := $(patsubst %.c,$(B)/obj/%.o,$(LANG_SRC) $(RUNTIME_SRC)) \
               $(patsubst $(GEN)/%.c,$(B)/obj/gen/%.o,$(GEN_SRC))
CLI_OBJ     := $(patsubst %.c,$(B)/obj/%.o,$(CLI_SRC))
SERV_OBJ    := $(patsubst %.c,$(B)/obj/%.o,$(SERV_SRC))
SERV_LIB    := $(B)/libhkserv.a
LIB         := $(B)/libhikyaku.a
HIKYAKU     := $(B)/hikyaku
UNIT_SRC    := $(wildcard tests/unit/test_*.c)
UNIT_BIN    := $(patsubst tests/unit/%.c,$(B)/tests/%,$(UNIT_SRC))

.PHONY: all run demo test check deps deps-test clean golden-update fuzz fuzz-replay bench bench-smtp bench-imap install
.DEFAULT_GOAL := all

all: $(HIKYAKU) $(if $(filter build/default,$(B)),build/hikyaku)

# A stable path to the binary of the last plain build, for scripts and docs.
build/hikyaku: $(HIKYAKU)
	@ln -sf $(patsubst build/%,%,$(HIKYAKU)) $@

deps:
	@scripts/install-deps.sh build
deps-test:
	@scripts/install-deps.sh test

run: deps
	@$(MAKE) -s --no-print-directory all
	@scripts/run-server.sh $(HIKYAKU)

# the rule-language demo: every example checked and dry-run
demo: all
	@scripts/run-demo.sh $(HIKYAKU)

test: deps-test
	@$(MAKE) --no-print-directory check

check: $(HIKYAKU) $(UNIT_BIN) fuzz-replay
	@HIKYAKU=$(HIKYAKU) B=$(B) VALGRIND=$(VALGRIND) tests/run-all.sh

golden-update: $(HIKYAKU)
	@HIKYAKU=$(HIKYAKU) tests/golden/run.sh --update

# --- generated code -----------------------------------------------------------
$(GEN)/lang/lexer.c: lang/lexer.re | $(GEN)/lang/grammar.h
	@mkdir -p $(@D)
	$(say) RE2C $@
	$(Q)re2c -W -Werror --no-generation-date --location-format gnu -o $@ $<

# Lemon writes grammar.c, grammar.h and grammar.out next to its input, so
# it runs on a copy in $(GEN)/lang.
$(GEN)/lang/grammar.c $(GEN)/lang/grammar.h &: lang/grammar.y
	@mkdir -p $(GEN)/lang
	$(say) LEMON $@
	$(Q)cp lang/grammar.y $(GEN)/lang/grammar.y
	$(Q)lemon -q -T$(LEMPAR) -s $(GEN)/lang/grammar.y >/dev/null || lemon -T$(LEMPAR) $(GEN)/lang/grammar.y
	@test -f $(GEN)/lang/grammar.c
	@touch $(GEN)/lang/grammar.c $(GEN)/lang/grammar.h # lemon keeps an unchanged header's old time

# --- objects ------------------------------------------------------------------
$(B)/obj/%.o: %.c | $(GEN)/lang/grammar.h
	@mkdir -p $(@D)
	$(say) CC $<
	$(Q)$(CC) $(ALL_CFLAGS) -MMD -MP -c -o $@ $<

# Generated code is compiled with the same warnings; lemon's template needs
# -Wno-unused-parameter and -Wno-missing-prototypes in places, scoped here.
$(B)/obj/gen/%.o: $(GEN)/%.c
	@mkdir -p $(@D)
	$(say) CC $<
	$(Q)$(CC) $(ALL_CFLAGS) -Wno-unused-parameter -Wno-missing-prototypes -Wno-missing-declarations -Wno-implicit-fallthrough -MMD -MP -c -o $@ $<

$(LIB): $(LIB_OBJ)
	@rm -f $@
	$(say) AR $@
	$(Q)ar rcs $@ $^

$(SERV_LIB): $(SERV_OBJ)
	@rm -f $@
	$(say) AR $@
	$(Q)ar rcs $@ $^

$(HIKYAKU): $(CLI_OBJ) $(SERV_LIB) $(LIB)
	$(say) LINK $@
	$(Q)$(CC) $(LDFLAGS) -o $@ $(CLI_OBJ) $(SERV_LIB) $(LIB) $(LIBS)

$(B)/tests/%: tests/unit/%.c $(SERV_LIB) $(LIB)
	@mkdir -p $(@D)
	$(say) CC $<
	$(Q)$(CC) $(ALL_CFLAGS) -Iservers $(shell pkg-config --cflags cmocka) -o $@ $< $(SERV_LIB) $(LIB) $(LDFLAGS) $(LIBS) $(shell pkg-config --libs cmocka)

# --- fuzzing (clang libFuzzer) ------------------------------------------------
FUZZ_SRC := $(wildcard tests/fuzz/fuzz_*.c)
FUZZ_B   ?= build/fuzz
FUZZ_BIN := $(patsubst tests/fuzz/%.c,$(FUZZ_B)/%,$(FUZZ_SRC))
# the protocol parsers of servers/ are fuzzed too (they need nothing else)
# (the pure ones: no event loop, no store; the IMAP session files are not)
IMAP_SESSION_SRC := $(wildcard servers/imap/imapd_*.c)
FUZZ_SERV_SRC := servers/core/sasl.c servers/queue/srs.c servers/queue/smtp_reply.c servers/smtp/smtp_cmd.c servers/smtp/smtp_dsn.c servers/smtp/smtp_data.c servers/pop3/pop3_cmd.c \
                 servers/pop3/pop3_format.c $(filter-out $(IMAP_SESSION_SRC),$(wildcard servers/imap/*.c)) \
                 $(wildcard servers/spf/*.c servers/dns/*.c)
FUZZ_LIB_OBJ := $(patsubst %.c,$(FUZZ_B)/obj/%.o,$(LANG_SRC) $(RUNTIME_SRC) $(FUZZ_SERV_SRC)) \
               $(patsubst $(GEN)/%.c,$(FUZZ_B)/obj/gen/%.o,$(GEN_SRC))
FUZZ_CFLAGS := -std=c11 -D_GNU_SOURCE -O1 -g -I. -Iruntime -Ilang -Iservers -I$(GEN)/lang \
               -fsanitize=fuzzer-no-link,address,undefined -fno-sanitize-recover=all $(PKG_CFLAGS)
FUZZ_TIME ?= 60
FUZZ_JOBS ?= 1
# the objects are shared by every target: keep them between builds
.SECONDARY: $(FUZZ_LIB_OBJ)

$(FUZZ_B)/obj/%.o: %.c | $(GEN)/lang/grammar.h
	@mkdir -p $(@D)
	clang $(FUZZ_CFLAGS) -c -o $@ $<
$(FUZZ_B)/obj/gen/%.o: $(GEN)/%.c
	@mkdir -p $(@D)
	clang $(FUZZ_CFLAGS) -c -o $@ $<
$(FUZZ_B)/%: tests/fuzz/%.c $(wildcard tests/fuzz/*.h) $(FUZZ_LIB_OBJ)
	clang $(FUZZ_CFLAGS) -fsanitize=fuzzer -o $@ $< $(FUZZ_LIB_OBJ) $(LIBS)

# make fuzz [FUZZ_TIME=seconds] [FUZZ_JOBS=2] [FUZZ_B=dir]: runs every target
# for FUZZ_TIME seconds (FUZZ_JOBS at once) and stores any crash under
# tests/fuzz/crashes/<target>/ for make test to replay.
fuzz: $(FUZZ_BIN)
	@FUZZ_JOBS=$(FUZZ_JOBS) tests/fuzz/run.sh $(FUZZ_B) $(FUZZ_TIME)

# make fuzz-replay: the same targets built with $(CC) (no clang needed) and
# tests/fuzz/replay_main.c into $(B)/fuzz-replay/, for tests/fuzz/replay.sh
# (make check) to run every stored crash and corpus file through.
FUZZ_REPLAY_BIN := $(patsubst tests/fuzz/%.c,$(B)/fuzz-replay/%,$(FUZZ_SRC))
fuzz-replay: $(FUZZ_REPLAY_BIN)
$(B)/fuzz-replay/%: tests/fuzz/%.c tests/fuzz/replay_main.c $(wildcard tests/fuzz/*.h) $(SERV_LIB) $(LIB)
	@mkdir -p $(@D)
	$(say) CC $<
	$(Q)$(CC) $(ALL_CFLAGS) -include tests/fuzz/fuzz_target.h -o $@ $< tests/fuzz/replay_main.c $(SERV_LIB) $(LIB) $(LDFLAGS) $(LIBS)

# --- benchmarks -----------------------------------------------------------------
bench: $(HIKYAKU)
	@bench/run.sh $(HIKYAKU)

# end-to-end SMTP with the anchor's clients (bench/smtp/run.sh; ~5 min, root
# for installing smtp-source once). N=, REPS=, SIZES=, CONCS= pass through.
bench-smtp: $(HIKYAKU)
	@bench/smtp/run.sh $(HIKYAKU)

# IMAP and POP3 against Dovecot on the same 10,000-message Maildir, one
# sitting (bench/imap/run.sh; ~6 min, root for the Dovecot side; ANCHOR_RUN=0
# runs ours alone). REPS=, IDLE_CONNS=, PERF=1 pass through.
bench-imap: $(HIKYAKU)
	@bench/imap/run.sh $(HIKYAKU)

# make install [PREFIX=/usr/local] [DESTDIR=...]
install: all
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/share/hikyaku/stdlib \
		$(DESTDIR)$(PREFIX)/share/man/man1 $(DESTDIR)$(PREFIX)/share/man/man5 \
		$(DESTDIR)$(PREFIX)/share/vim/vimfiles/syntax $(DESTDIR)$(PREFIX)/share/vim/vimfiles/ftdetect \
		$(DESTDIR)$(PREFIX)/share/emacs/site-lisp
	install -m 755 $(HIKYAKU) $(DESTDIR)$(PREFIX)/bin/hikyaku
	install -m 644 stdlib/*.hk $(DESTDIR)$(PREFIX)/share/hikyaku/stdlib/
	install -m 644 doc/man/hikyaku.1 $(DESTDIR)$(PREFIX)/share/man/man1/
	install -m 644 doc/man/hikyaku-rules.5 $(DESTDIR)$(PREFIX)/share/man/man5/
	install -m 644 editors/vim/syntax/hikyaku.vim $(DESTDIR)$(PREFIX)/share/vim/vimfiles/syntax/
	install -m 644 editors/vim/ftdetect/hikyaku.vim $(DESTDIR)$(PREFIX)/share/vim/vimfiles/ftdetect/
	install -m 644 editors/emacs/hikyaku-mode.el $(DESTDIR)$(PREFIX)/share/emacs/site-lisp/

clean:
	rm -rf build

-include $(LIB_OBJ:.o=.d) $(CLI_OBJ:.o=.d) $(SERV_OBJ:.o=.d)
