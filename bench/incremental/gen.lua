-- Writes the peers' build files for bench/incremental/run.sh.
--   lua5.4 gen.lua build SRC OUT_MAKE OUT_NINJA   -> SRC/bench.mk, SRC/build.ninja
--       the graph of examples/build/Weftfile.lua (same commands and flags)
--   lua5.4 gen.lua synth DIR NTASKS NFILES        -> DIR/in/*, DIR/Weftfile.lua, DIR/build.ninja
--       NTASKS tasks, each concatenating NFILES/NTASKS inputs into one output
local mode = arg[1]

local function write(path, text)
  local f = assert(io.open(path, "w"))
  f:write(text)
  f:close()
end

local function capture(cmd)
  local p = assert(io.popen(cmd))
  local s = p:read("a"):gsub("%s+$", "")
  p:close()
  return s
end

if mode == "build" then
  local src, out_make, out_ninja = arg[2], arg[3], arg[4]
  local includes = capture("pkg-config --cflags lua5.4 libuv")
  local libs = capture("pkg-config --libs lua5.4 libuv")
    .. " -llua5.4-luv -llua5.4-cjson -ldl -lm -lxxhash -lsqlite3 -ledit"
  local warn = "-Wall -Wextra -Werror -Wshadow -Wundef -Wwrite-strings"
    .. " -Wmissing-prototypes -Wstrict-prototypes -Wredundant-decls"
  local cflags = "-O2 -g"
  local cs = {}
  for line in capture("cd " .. src .. " && ls host/*.c"):gmatch("[^\n]+") do cs[#cs + 1] = line end
  local luas = {}
  for line in capture("cd " .. src .. " && find stdlib -name '*.lua' | sort"):gmatch("[^\n]+") do
    luas[#luas + 1] = line
  end
  -- ninja
  local n = {
    ("cflags = -std=c11 %s -fPIC -D_GNU_SOURCE %s %s"):format(cflags, warn, includes),
    "rule cc",
    "  command = cc $cflags -MMD -MF $out.d -c $in -o $out",
    "  depfile = $out.d",
    "  deps = gcc",
    "rule ccstd",
    ("  command = cc -std=c11 %s -fPIC %s -c $in -o $out"):format(cflags, includes),
    "rule embed",
    ("  command = cd %s && lua5.4 scripts/embed.lua %s/stdlib.c %s"):format(src, out_ninja,
      table.concat(luas, " ")),
    "rule ar",
    "  command = rm -f $out && ar rcs $out $in",
    "rule link",
    "  command = cc -rdynamic -o $out $in " .. libs,
    "rule smoke",
    "  command = $in -e 'print(weft.version)' > $out",
  }
  local objs, libobjs = {}, {}
  for _, c in ipairs(cs) do
    local base = c:match("([^/]+)%.c$")
    local o = ("%s/obj/%s.o"):format(out_ninja, base)
    n[#n + 1] = ("build %s: cc %s/%s"):format(o, src, c)
    if base ~= "main" and base ~= "repl" then libobjs[#libobjs + 1] = o end
    objs[base] = o
  end
  local luapaths = {}
  for i, l in ipairs(luas) do luapaths[i] = src .. "/" .. l end
  n[#n + 1] = ("build %s/stdlib.c: embed %s %s/scripts/embed.lua"):format(out_ninja,
    table.concat(luapaths, " "), src)
  n[#n + 1] = ("build %s/obj/stdlib.o: ccstd %s/stdlib.c"):format(out_ninja, out_ninja)
  libobjs[#libobjs + 1] = out_ninja .. "/obj/stdlib.o"
  n[#n + 1] = ("build %s/libweft.a: ar %s"):format(out_ninja, table.concat(libobjs, " "))
  n[#n + 1] = ("build %s/weft: link %s %s %s/libweft.a"):format(out_ninja, objs.main, objs.repl,
    out_ninja)
  n[#n + 1] = ("build %s/smoke.txt: smoke %s/weft"):format(out_ninja, out_ninja)
  n[#n + 1] = ("default %s/smoke.txt"):format(out_ninja)
  write(src .. "/build.ninja", table.concat(n, "\n") .. "\n")
  -- make
  local m = {
    "O := " .. out_make,
    "S := " .. src,
    ("CFLAGS := -std=c11 %s -fPIC -D_GNU_SOURCE %s %s"):format(cflags, warn, includes),
    "CS := $(wildcard $(S)/host/*.c)",
    "OBJS := $(CS:$(S)/host/%.c=$(O)/obj/%.o)",
    "LIBOBJS := $(filter-out $(O)/obj/main.o $(O)/obj/repl.o,$(OBJS)) $(O)/obj/stdlib.o",
    "LUAS := " .. table.concat(luas, " "),
    "all: $(O)/smoke.txt",
    "$(O)/obj/%.o: $(S)/host/%.c",
    "\t@mkdir -p $(O)/obj",
    "\tcc $(CFLAGS) -MMD -c $< -o $@",
    "$(O)/stdlib.c: $(addprefix $(S)/,$(LUAS)) $(S)/scripts/embed.lua",
    "\t@mkdir -p $(O)/obj",
    "\tcd $(S) && lua5.4 scripts/embed.lua $@ $(LUAS)",
    "$(O)/obj/stdlib.o: $(O)/stdlib.c",
    ("\tcc -std=c11 %s -fPIC %s -c $< -o $@"):format(cflags, includes),
    "$(O)/libweft.a: $(LIBOBJS)",
    "\trm -f $@ && ar rcs $@ $^",
    "$(O)/weft: $(O)/obj/main.o $(O)/obj/repl.o $(O)/libweft.a",
    "\tcc -rdynamic -o $@ $^ " .. libs,
    "$(O)/smoke.txt: $(O)/weft",
    "\t$< -e 'print(weft.version)' > $@",
    "-include $(OBJS:.o=.d)",
  }
  write(src .. "/bench.mk", table.concat(m, "\n") .. "\n")
elseif mode == "synth" then
  local dir, ntasks, nfiles = arg[2], tonumber(arg[3]), tonumber(arg[4])
  local per = nfiles // ntasks
  os.execute("mkdir -p " .. dir .. "/in " .. dir .. "/out")
  for i = 1, nfiles do write(("%s/in/f%05d.txt"):format(dir, i), ("file %d\n"):format(i)) end
  write(dir .. "/Weftfile.lua", ([[
local NT, PER = %d, %d
local all = {}
for i = 1, NT do
  local srcs = {}
  for j = 1, PER do srcs[j] = ("in/f%%05d.txt"):format((i - 1) * PER + j) end
  local out = ("out/t%%04d.txt"):format(i)
  all[i] = "t" .. i
  task("t" .. i) { sources = srcs, generates = { out }, function()
    weft.exec { "sh", "-c", "cat \"$@\" > " .. out, "sh", table.unpack(srcs) }
  end }
end
task "all" { deps = all }
default "all"
]]):format(ntasks, per))
  local n = { "rule cat", "  command = cat $in > $out" }
  local outs = {}
  for i = 1, ntasks do
    local srcs = {}
    for j = 1, per do srcs[j] = ("in/f%05d.txt"):format((i - 1) * per + j) end
    outs[i] = ("out/t%04d.txt"):format(i)
    n[#n + 1] = ("build %s: cat %s"):format(outs[i], table.concat(srcs, " "))
  end
  n[#n + 1] = "default " .. table.concat(outs, " ")
  write(dir .. "/build.ninja", table.concat(n, "\n") .. "\n")
else
  error("usage: gen.lua build SRC OUT_MAKE OUT_NINJA | synth DIR NTASKS NFILES")
end
