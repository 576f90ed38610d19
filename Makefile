# weft: build, test, check (sanitizers), bench, demo, install.
# `make test` and `make demo` first install missing Debian packages (scripts/deps.sh).

BUILD    ?= build
CC       ?= cc
LUA      ?= lua5.4
OPT      ?= -O2
SAN      ?=
PKG_LUA   = lua5.4
PKG_UV    = libuv

WARN     = -Wall -Wextra -Werror -Wshadow -Wundef -Wwrite-strings \
           -Wmissing-prototypes -Wstrict-prototypes -Wredundant-decls
CFLAGS_ALL = -std=c11 $(OPT) -g -fPIC -fvisibility=hidden -D_GNU_SOURCE $(WARN) $(SAN) \
           $(shell pkg-config --cflags $(PKG_LUA) $(PKG_UV)) $(CFLAGS)
LIBS_UV  = $(shell pkg-config --libs $(PKG_UV)) -lm
LIBS_LUA = $(shell pkg-config --libs $(PKG_LUA))

# Libraries weft.so and the CLI link (I/O issue: luv, curl, cjson go here).
LIBS_EXTRA = -llua5.4-luv -llua5.4-cjson -ldl
# Incremental pipelines (issue 13): content hashes and the state database.
LIBS_EXTRA += -lxxhash -lsqlite3
# Libraries only the CLI links (the REPL dlopens libedit: host/repl.c).
LIBS_CLI_EXTRA =
# The CLI links the static archives Debian's -dev packages ship (issue 13: the
# dynamic loader relocating 6 shared libraries was 2 M instructions of a no-op
# `weft run`); STATIC_CLI=0 links the shared ones. -rdynamic exports Lua's API
# to the C modules `require` loads.
STATIC_CLI ?= 1
ifeq ($(STATIC_CLI),1)
LIBS_CLI = -Wl,-Bstatic -llua5.4-luv -llua5.4-cjson -lxxhash -lsqlite3 -llua5.4 -luv_a \
           -Wl,-Bdynamic -lpthread -ldl -lrt -lm
else
LIBS_CLI = $(LIBS_EXTRA) $(LIBS_LUA) $(LIBS_UV)
endif

CLI_ONLY = host/main.c host/repl.c
LIB_SRCS = $(filter-out $(CLI_ONLY),$(wildcard host/*.c))
LIB_OBJS = $(LIB_SRCS:host/%.c=$(BUILD)/obj/%.o) $(BUILD)/obj/stdlib.o
STDLIB   = $(shell find stdlib -name '*.lua' | sort)
HEADERS  = $(wildcard host/*.h)

VERSION  = 0.1.0
SOMAJOR  = 0
PREFIX  ?= /usr/local
DESTDIR ?=
LUA_CMOD = $(PREFIX)/lib/lua/5.4

.PHONY: all deps test check tsan bench demo clean install uninstall
all: $(BUILD)/weft $(BUILD)/weft.so $(BUILD)/libweft.a $(BUILD)/libweft.so $(BUILD)/weft.pc

$(BUILD)/obj/%.o: host/%.c $(HEADERS) | $(BUILD)/obj
	$(CC) $(CFLAGS_ALL) -c $< -o $@

$(BUILD)/stdlib.c: scripts/embed.lua scripts/dump54.lua $(STDLIB) | $(BUILD)/obj
	$(LUA) scripts/embed.lua $@ $(STDLIB)

$(BUILD)/obj/stdlib.o: $(BUILD)/stdlib.c
	$(CC) $(CFLAGS_ALL) -Wno-missing-prototypes -c $< -o $@

$(BUILD)/libweft.a: $(LIB_OBJS)
	rm -f $@
	ar rcs $@ $^

$(BUILD)/libweft.so: $(LIB_OBJS)
	$(CC) $(SAN) -shared -Wl,-soname,libweft.so.$(SOMAJOR) -o $@.$(VERSION) $^ \
	  $(LIBS_EXTRA) $(LIBS_LUA) $(LIBS_UV)
	ln -sf libweft.so.$(VERSION) $(BUILD)/libweft.so.$(SOMAJOR)
	ln -sf libweft.so.$(VERSION) $@

$(BUILD)/weft.pc: scripts/weft.pc.in Makefile | $(BUILD)/obj
	sed -e 's|@PREFIX@|$(PREFIX)|' -e 's|@VERSION@|$(VERSION)|' $< > $@

$(BUILD)/weft.so: $(LIB_OBJS)
	$(CC) $(SAN) -shared -o $@ $^ $(LIBS_EXTRA) $(LIBS_UV)

$(BUILD)/weft: $(BUILD)/obj/main.o $(BUILD)/obj/repl.o $(BUILD)/libweft.a
	$(CC) $(SAN) -rdynamic -o $@ $(BUILD)/obj/main.o $(BUILD)/obj/repl.o $(BUILD)/libweft.a \
	  $(LIBS_CLI_EXTRA) $(LIBS_CLI) -ldl

# A lua(1)-like host linked with the sanitizers, so that busted can load an
# instrumented weft.so without LD_PRELOAD tricks.
$(BUILD)/luahost: scripts/luahost.c | $(BUILD)/obj
	$(CC) $(CFLAGS_ALL) -rdynamic -o $@ $< $(LIBS_LUA) -ldl -lm

$(BUILD)/obj:
	mkdir -p $@

deps:
	@scripts/deps.sh

test: deps
	@$(MAKE) --no-print-directory all
	@scripts/test.sh

check: deps
	@$(MAKE) --no-print-directory BUILD=build/asan OPT=-O1 \
	  SAN="-fsanitize=address,undefined,float-cast-overflow -fno-omit-frame-pointer -fno-sanitize-recover=undefined,float-cast-overflow" \
	  build/asan/weft build/asan/weft.so build/asan/luahost
	@WEFT_BUILD=build/asan scripts/test.sh

# ThreadSanitizer over what other threads may call (weft_future_post while
# the runtime closes, weft_interrupt): C fixtures built against build/tsan.
tsan: deps
	@$(MAKE) --no-print-directory BUILD=build/tsan OPT=-O1 SAN="-fsanitize=thread" \
	  build/tsan/libweft.a
	@TSAN_OPTIONS="halt_on_error=1 suppressions=$(CURDIR)/scripts/tsan.supp" \
	  WEFT_BUILD=build/tsan scripts/test.sh spec/embed_threads_spec.lua

bench: deps
	@scripts/deps.sh bench
	@$(MAKE) --no-print-directory all
	@bench/run.sh

demo: deps
	@$(MAKE) --no-print-directory all
	$(BUILD)/weft examples/diamond.lua
	$(BUILD)/weft run -f examples/ci/Weftfile.lua

clean:
	rm -rf build

# make install PREFIX=/usr/local DESTDIR=: the CLI, the libraries, weft.h,
# weft.pc, the Lua module in lua5.4's cpath, and the man page.
install: all
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/lib/pkgconfig \
	  $(DESTDIR)$(PREFIX)/include $(DESTDIR)$(LUA_CMOD) $(DESTDIR)$(PREFIX)/share/man/man1
	install -m 755 $(BUILD)/weft $(DESTDIR)$(PREFIX)/bin/weft
	install -m 644 $(BUILD)/libweft.a $(DESTDIR)$(PREFIX)/lib/libweft.a
	install -m 755 $(BUILD)/libweft.so.$(VERSION) $(DESTDIR)$(PREFIX)/lib/libweft.so.$(VERSION)
	ln -sf libweft.so.$(VERSION) $(DESTDIR)$(PREFIX)/lib/libweft.so.$(SOMAJOR)
	ln -sf libweft.so.$(VERSION) $(DESTDIR)$(PREFIX)/lib/libweft.so
	install -m 644 host/weft.h $(DESTDIR)$(PREFIX)/include/weft.h
	sed -e 's|@PREFIX@|$(PREFIX)|' -e 's|@VERSION@|$(VERSION)|' scripts/weft.pc.in \
	  > $(DESTDIR)$(PREFIX)/lib/pkgconfig/weft.pc
	sed -e 's|@PREFIX@|$(PREFIX)|' -e 's|@VERSION@|$(VERSION)|' scripts/weft-static.pc.in \
	  > $(DESTDIR)$(PREFIX)/lib/pkgconfig/weft-static.pc
	install -d $(DESTDIR)$(PREFIX)/share/doc/weft
	install -m 644 docs/embedding.md $(DESTDIR)$(PREFIX)/share/doc/weft/embedding.md
	install -m 755 $(BUILD)/weft.so $(DESTDIR)$(LUA_CMOD)/weft.so
	install -m 644 docs/weft.1 $(DESTDIR)$(PREFIX)/share/man/man1/weft.1

uninstall:
	rm -f $(DESTDIR)$(PREFIX)/bin/weft $(DESTDIR)$(PREFIX)/lib/libweft.a \
	  $(DESTDIR)$(PREFIX)/lib/libweft.so.$(VERSION) $(DESTDIR)$(PREFIX)/lib/libweft.so.$(SOMAJOR) \
	  $(DESTDIR)$(PREFIX)/lib/libweft.so $(DESTDIR)$(PREFIX)/include/weft.h \
	  $(DESTDIR)$(PREFIX)/lib/pkgconfig/weft.pc $(DESTDIR)$(LUA_CMOD)/weft.so \
	  $(DESTDIR)$(PREFIX)/share/man/man1/weft.1 $(DESTDIR)$(PREFIX)/lib/pkgconfig/weft-static.pc \
	  $(DESTDIR)$(PREFIX)/share/doc/weft/embedding.md

# The Lua module alone, for luarocks (weft-*.rockspec): LUA_LIBDIR from it.
# Debian's luarocks targets Lua 5.1 unless told: say so instead of
# installing a 5.4 module into a 5.1 tree.
install-lua: $(BUILD)/weft.so
	@case "$(LUA_LIBDIR)" in *rocks-5.4/*|*/5.4|*/5.4/) ;; *) echo "weft is a Lua 5.4 module but luarocks" \
	  "targets $(LUA_LIBDIR): run 'luarocks --lua-version 5.4 make'" >&2; exit 1;; esac
	install -d $(LUA_LIBDIR)
	install -m 755 $(BUILD)/weft.so $(LUA_LIBDIR)/weft.so

# libFuzzer over the sorter core, then the randomised core programs
# (fuzz/Makefile): make fuzz [FUZZ_SECONDS=600] [FUZZ_PROGRAMS=100000]
.PHONY: fuzz
fuzz:
	@scripts/deps.sh fuzz
	@$(MAKE) --no-print-directory -f fuzz/Makefile BUILD=$(BUILD) fuzz-run
	@$(MAKE) --no-print-directory all
	@$(MAKE) --no-print-directory -f fuzz/Makefile BUILD=$(BUILD) fuzz-core
