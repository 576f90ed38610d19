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
CFLAGS_ALL = -std=c11 $(OPT) -g -fPIC -D_GNU_SOURCE $(WARN) $(SAN) \
           $(shell pkg-config --cflags $(PKG_LUA) $(PKG_UV)) $(CFLAGS)
LIBS_UV  = $(shell pkg-config --libs $(PKG_UV)) -lm
LIBS_LUA = $(shell pkg-config --libs $(PKG_LUA))

# Libraries weft.so and the CLI link (I/O issue: luv, curl, cjson go here).
LIBS_EXTRA =
# Libraries only the CLI links (the REPL's libedit goes here).
LIBS_CLI_EXTRA =

CLI_ONLY = host/main.c host/repl.c
LIB_SRCS = $(filter-out $(CLI_ONLY),$(wildcard host/*.c))
LIB_OBJS = $(LIB_SRCS:host/%.c=$(BUILD)/obj/%.o) $(BUILD)/obj/stdlib.o
STDLIB   = $(shell find stdlib -name '*.lua' | sort)
HEADERS  = $(wildcard host/*.h)

.PHONY: all deps test check bench demo clean
all: $(BUILD)/weft $(BUILD)/weft.so $(BUILD)/libweft.a

$(BUILD)/obj/%.o: host/%.c $(HEADERS) | $(BUILD)/obj
	$(CC) $(CFLAGS_ALL) -c $< -o $@

$(BUILD)/stdlib.c: scripts/embed.lua $(STDLIB) | $(BUILD)/obj
	$(LUA) scripts/embed.lua $@ $(STDLIB)

$(BUILD)/obj/stdlib.o: $(BUILD)/stdlib.c
	$(CC) $(CFLAGS_ALL) -Wno-missing-prototypes -c $< -o $@

$(BUILD)/libweft.a: $(LIB_OBJS)
	rm -f $@
	ar rcs $@ $^

$(BUILD)/weft.so: $(LIB_OBJS)
	$(CC) $(SAN) -shared -o $@ $^ $(LIBS_EXTRA) $(LIBS_UV)

$(BUILD)/weft: $(BUILD)/obj/main.o $(BUILD)/obj/repl.o $(BUILD)/libweft.a
	$(CC) $(SAN) -rdynamic -o $@ $(BUILD)/obj/main.o $(BUILD)/obj/repl.o $(BUILD)/libweft.a \
	  $(LIBS_CLI_EXTRA) $(LIBS_EXTRA) $(LIBS_LUA) $(LIBS_UV) -ldl

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
	  SAN="-fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined" \
	  build/asan/weft build/asan/weft.so build/asan/luahost
	@WEFT_BUILD=build/asan scripts/test.sh

bench: deps
	@scripts/deps.sh bench
	@$(MAKE) --no-print-directory all
	@bench/run.sh

demo: deps
	@$(MAKE) --no-print-directory all
	$(BUILD)/weft examples/diamond.lua

clean:
	rm -rf build
