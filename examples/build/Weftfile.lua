-- Builds weft itself (host/*.c and the embedded stdlib) into a separate
-- directory, as `make` does, with gcc depfiles: a no-op run, a touched file
-- and a one-file change show what incremental runs skip.
--
--   weft run -f examples/build/Weftfile.lua             # build OUT/weft
--   weft run -f examples/build/Weftfile.lua --explain   # why each step runs
--   weft why -f examples/build/Weftfile.lua link        # would the link run?
--   weft run -f examples/build/Weftfile.lua CFLAGS=-O0  # reruns every compile
--
-- Tasks run in this file's directory, so paths are relative to it.
local ROOT = var("ROOT", "../..")
local OUT = var("OUT", ROOT .. "/build/example")
local CC = var("CC", "cc")
local CFLAGS = var("CFLAGS", "-O2 -g")
local PKG = "lua5.4 libuv"

-- Flags from pkg-config, read once at load (part of each task's key).
local function pkg(what)
  local p = assert(io.popen(("pkg-config %s %s"):format(what, PKG)))
  local s = p:read("a"):gsub("%s+$", "")
  p:close()
  return s
end
-- INCLUDES=... LIBS=... on the command line skip pkg-config (bench/incremental does).
local INCLUDES = var("INCLUDES") or pkg("--cflags")
local LIBS = var("LIBS") or (pkg("--libs") .. " -llua5.4-luv -llua5.4-cjson -ldl -lm -lxxhash -lsqlite3 -ledit")
local WARN = "-Wall -Wextra -Werror -Wshadow -Wundef -Wwrite-strings"
  .. " -Wmissing-prototypes -Wstrict-prototypes -Wredundant-decls"

local function sh(cmd) weft.sh(cmd) end

local objects, lib_objects = {}, {}
for _, c in ipairs(weft.fs.glob(ROOT .. "/host/*.c")) do
  local base = c:gsub("^.*/", ""):sub(1, -3)   -- "../../host/x.c" -> "x"
  local o = OUT .. "/obj/" .. base .. ".o"
  objects[#objects + 1] = o
  if base ~= "main" and base ~= "repl" then lib_objects[#lib_objects + 1] = o end
  task("cc:" .. base) {
    sources = { c }, generates = { o }, depfile = OUT .. "/obj/" .. base .. ".d",
    function()
      weft.fs.mkdir(OUT .. "/obj", { parents = true })
      sh(("%s -std=c11 %s -fPIC -D_GNU_SOURCE %s %s -MMD -c %s -o %s")
        :format(CC, CFLAGS, WARN, INCLUDES, c, o))
    end,
  }
end

local STDLIB_C = OUT .. "/stdlib.c"
task "embed" {
  desc = "embed stdlib/**/*.lua into C",
  sources = { ROOT .. "/stdlib/**/*.lua", ROOT .. "/scripts/embed.lua" },
  generates = { STDLIB_C },
  function()
    local files = {}
    for _, p in ipairs(weft.fs.glob(ROOT .. "/stdlib/**/*.lua")) do
      files[#files + 1] = p:sub(#ROOT + 2)
    end
    local out = STDLIB_C:sub(1, 1) == "/" and STDLIB_C or (weft.uv.cwd() .. "/" .. STDLIB_C)
    weft.fs.mkdir(OUT .. "/obj", { parents = true })
    sh(("cd %s && lua5.4 scripts/embed.lua %s %s"):format(ROOT, out, table.concat(files, " ")))
  end,
}

local STDLIB_O = OUT .. "/obj/stdlib.o"
task "cc:stdlib" {
  deps = { "embed" },
  sources = { STDLIB_C }, generates = { STDLIB_O },
  function()
    sh(("%s -std=c11 %s -fPIC %s -c %s -o %s"):format(CC, CFLAGS, INCLUDES, STDLIB_C, STDLIB_O))
  end,
}

local compile_tasks = { "cc:stdlib" }
for _, o in ipairs(objects) do
  compile_tasks[#compile_tasks + 1] = "cc:" .. o:gsub("^.*/", ""):sub(1, -3)
end

local LIB = OUT .. "/libweft.a"
local archive_inputs = { table.unpack(lib_objects) }
archive_inputs[#archive_inputs + 1] = STDLIB_O
task "archive" {
  deps = compile_tasks,
  sources = archive_inputs, generates = { LIB },
  function() sh(("rm -f %s && ar rcs %s %s"):format(LIB, LIB, table.concat(archive_inputs, " "))) end,
}

local BIN = OUT .. "/weft"
task "link" {
  desc = "link OUT/weft",
  deps = { "archive" },
  sources = { LIB, OUT .. "/obj/main.o", OUT .. "/obj/repl.o" }, generates = { BIN },
  function()
    sh(("%s -rdynamic -o %s %s/obj/main.o %s/obj/repl.o %s %s"):format(CC, BIN, OUT, OUT, LIB, LIBS))
  end,
}

task "smoke" {
  desc = "run the built weft once",
  deps = { "link" },
  sources = { BIN }, generates = { OUT .. "/smoke.txt" },
  function() sh(("%s -e 'print(weft.version)' > %s/smoke.txt"):format(BIN, OUT)) end,
}

default "smoke"
