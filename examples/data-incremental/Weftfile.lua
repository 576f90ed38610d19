-- A data pipeline that redoes only what its inputs changed: each day's CSV
-- is cleaned on its own, the clean files are aggregated, a report is written.
-- Edit one file in input/ and run again: that day's cleaning reruns, and the
-- aggregate only if the cleaned bytes differ (a change of spacing or case
-- that cleaning removes stops there).
--
--   weft run -f examples/data-incremental/Weftfile.lua --explain
--   weft run -f examples/data-incremental/Weftfile.lua --watch   # rerun on edits
local OUT = var("OUT", "../../build/data-example")

local function read(path)
  local f = assert(io.open(path))
  local s = f:read("a")
  f:close()
  return s
end

local function write(path, text)
  local f = assert(io.open(path, "w"))
  f:write(text)
  f:close()
end

local cleaned = {}
for _, path in ipairs(weft.fs.glob("input/*.csv")) do
  local day = path:match("([^/]+)%.csv$")
  local out = OUT .. "/clean/" .. day .. ".csv"
  cleaned[#cleaned + 1] = out
  task("clean:" .. day) {
    desc = "normalise names and numbers of " .. path,
    sources = { path }, generates = { out },
    function()
      weft.exec { "mkdir", "-p", OUT .. "/clean" }
      local rows = {}
      for line in read(path):gmatch("[^\n]+") do
        local city, temp = line:match("^%s*([^,]-)%s*,%s*(-?%d+)%s*$")
        if city then rows[#rows + 1] = ("%s,%d"):format(city:lower(), tonumber(temp)) end
      end
      table.sort(rows)
      write(out, table.concat(rows, "\n") .. "\n")
      print(("%d rows from %s"):format(#rows, path))
    end,
  }
end

local deps = {}
for i, c in ipairs(cleaned) do deps[i] = "clean:" .. c:match("([^/]+)%.csv$") end

task "aggregate" {
  desc = "mean temperature per city",
  deps = deps, sources = cleaned, generates = { OUT .. "/mean.csv" },
  function()
    local sum, n = {}, {}
    for _, c in ipairs(cleaned) do
      for city, temp in read(c):gmatch("([^,\n]+),(-?%d+)") do
        sum[city] = (sum[city] or 0) + tonumber(temp)
        n[city] = (n[city] or 0) + 1
      end
    end
    local cities = {}
    for city in pairs(sum) do cities[#cities + 1] = city end
    table.sort(cities)
    local lines = {}
    for i, city in ipairs(cities) do lines[i] = ("%s,%.1f"):format(city, sum[city] / n[city]) end
    write(OUT .. "/mean.csv", table.concat(lines, "\n") .. "\n")
  end,
}

task "report" {
  desc = "a short report, with the content hash of what it summarises",
  deps = { "aggregate" }, sources = { OUT .. "/mean.csv" }, generates = { OUT .. "/report.txt" },
  function()
    local mean = OUT .. "/mean.csv"
    write(OUT .. "/report.txt", ("mean temperatures (input %s)\n%s"):format(
      weft.fs.hash(mean):sub(1, 12), read(mean)))
    print(read(OUT .. "/report.txt"))
  end,
}

default "report"
