-- A CI pipeline: lint and type-check in parallel with the build, tests
-- after the build, deploy after everything passed. Every command exists on
-- a Debian machine with weft's build dependencies; nothing uses the network.
-- Run it with `weft run -f examples/ci/Weftfile.lua` (try -j1, --dry-run,
-- --graph mermaid, --report ci.html). In CI, add `--output grouped`: each
-- task's output comes as one block when it ends, and under GitHub Actions
-- (GITHUB_ACTIONS=true) or GitLab each block is a collapsible group.

local work = os.getenv("TMPDIR") or "/tmp"
local root = "../.."   -- tasks run in the Weftfile's directory; the sources are up there
local out = work .. "/weft-ci-example"

task "lint" {
  desc = "syntax-check every Lua file of the standard library",
  function()
    weft.sh(([[for f in $(find %s/stdlib -name '*.lua' | sort); do luac5.4 -p "$f" || exit 1; done
              echo "lua syntax ok: $(find %s/stdlib -name '*.lua' | wc -l) files"]]):format(root, root))
  end,
}

task "typecheck" {
  desc = "find the C sources, then compile each with every warning, without linking",
  -- a graph that grows while it runs: one task per file found, added with
  -- ctx:add; "deploy" (which needs "typecheck") waits for all of them
  function(ctx)
    for _, f in ipairs({ "host/process.c", "host/task.c", "host/graph.c" }) do
      ctx:add("cc:" .. f, {
        function()
          weft.sh(("cc -std=c11 -D_GNU_SOURCE -fsyntax-only -Wall -Wextra $(pkg-config --cflags lua5.4 libuv) %s")
            :format(root .. "/" .. f))
          print("checked " .. f)
        end,
      })
    end
  end,
}

task "build" {
  desc = "build a small program into a scratch directory",
  function()
    weft.sh(([[mkdir -p %s && printf '#include <stdio.h>\nint main(void){puts("hello from the build");return 0;}\n' > %s/hello.c
               cc -O2 -o %s/hello %s/hello.c && echo built %s/hello]]):format(out, out, out, out, out))
  end,
}

task "test" {
  deps = { "build" },
  desc = "run what was built",
  timeout = 30, retries = 1, backoff = 0.5,
  function()
    local r = weft.exec { out .. "/hello" }
    assert(r.stdout == "hello from the build\n", "unexpected output: " .. r.stdout)
    weft.sh "echo tests passed"
  end,
}

task "deploy" {
  deps = { "lint", "typecheck", "test" },
  desc = "ship it (here: copy into the scratch directory)",
  function()
    weft.exec { "cp", out .. "/hello", out .. "/hello.deployed" }
    print("deployed to " .. out .. "/hello.deployed")
  end,
}

default "deploy"
