-- A small data pipeline: extract from three sources in parallel (a file
-- written here, a process's output, and a computation in Lua), join them,
-- then grade each joined row in a task of its own, added while running
-- (`ctx:add`: how many rows there are is known only after the join), and
-- write the report once they are all done. No network.
-- Run: `weft run -f examples/data/Weftfile.lua` (try `--output grouped`,
-- `--dry-run`, which shows only the declared tasks, and `--report r.html`).

local dir = (os.getenv("TMPDIR") or "/tmp") .. "/weft-data-example"

local function write(path, text)
  local f = assert(io.open(path, "w"))
  f:write(text)
  f:close()
end

task "prepare" {
  desc = "make the scratch directory",
  function() weft.exec { "mkdir", "-p", dir } end,
}

task "extract_users" {
  deps = { "prepare" },
  desc = "source 1: a CSV file, sorted with sort(1)",
  function()
    write(dir .. "/users.csv", "3,carol\n1,alice\n2,bob\n")
    weft.sh(("sort -t, -k1,1 %s/users.csv > %s/users.sorted"):format(dir, dir))
    print("users extracted")
  end,
}

task "extract_sizes" {
  deps = { "prepare" },
  desc = "source 2: a process's output (word counts from /etc/passwd's shells)",
  function()
    local r = weft.sh "cut -d: -f7 /etc/passwd | sort | uniq -c | sort -rn | head -3"
    write(dir .. "/shells.txt", r.stdout)
    print("top shells: " .. r.stdout:gsub("%s+", " "))
  end,
}

task "extract_scores" {
  deps = { "prepare" },
  desc = "source 3: computed in Lua, while the others run",
  function()
    local lines = {}
    for id = 1, 3 do
      weft.sleep(0.05)   -- a slow source: the other extracts run meanwhile
      lines[#lines + 1] = ("%d,%d"):format(id, id * 37 % 100)
    end
    write(dir .. "/scores.csv", table.concat(lines, "\n") .. "\n")
    print("scores computed")
  end,
}

task "join" {
  deps = { "extract_users", "extract_sizes", "extract_scores" },
  desc = "join users with scores on id (join(1))",
  function()
    weft.sh(("sort -t, -k1,1 %s/scores.csv > %s/scores.sorted && "
      .. "join -t, %s/users.sorted %s/scores.sorted > %s/joined.csv"):format(dir, dir, dir, dir, dir))
  end,
}

task "partition" {
  deps = { "join" },
  desc = "one task per joined row, added while running (the rows are known only now)",
  function(ctx)
    for line in io.lines(dir .. "/joined.csv") do
      local id, name, score = line:match("^(%d+),([^,]+),(%d+)$")
      ctx:add("grade:" .. name, {
        desc = "grade one user",
        function()
          weft.sleep(0.02 * tonumber(id))   -- each row takes its time; they run in parallel
          local grade = tonumber(score) >= 50 and "pass" or "retry"
          write(("%s/grade-%s.txt"):format(dir, name), ("%s,%s\n"):format(name, grade))
          print(name .. ": " .. grade)
        end,
      })
    end
  end,
}

task "write" {
  deps = { "partition" },   -- waits for every grade:* task partition added
  desc = "write the report",
  function()
    local joined = io.open(dir .. "/joined.csv"):read("a")
    local shells = io.open(dir .. "/shells.txt"):read("a")
    local grades = {}
    for line in joined:gmatch("[^\n]+") do
      local f = assert(io.open(("%s/grade-%s.txt"):format(dir, line:match("^%d+,([^,]+)"))))
      grades[#grades + 1] = f:read("a")
      f:close()
    end
    grades = table.concat(grades)
    write(dir .. "/report.txt", "id,name,score\n" .. joined .. "\ngrades:\n" .. grades
      .. "\nshells:\n" .. shells)
    weft.exec { "cat", dir .. "/report.txt" }
  end,
}

default "write"
