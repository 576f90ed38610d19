-- Alternating A/B runner: runs command A, then B, PAIRS times (A B A B ...),
-- reads the key=value pairs each prints on stdout, and reports for every
-- asked key each pair's values, the B/A ratio, and the medians. The machine's
-- speed drifts between runs; the ratio within a pair and the median over
-- pairs is what holds still.
--   lua5.4 ab.lua [-n PAIRS] [-k KEY]... NAME_A 'CMD_A' NAME_B 'CMD_B'
-- Commands run through /bin/sh; their stderr passes through.
local pairs_n, keys, pos = 5, {}, {}
local i = 1
while i <= #arg do
  local a = arg[i]
  if a == "-n" then pairs_n = assert(math.tointeger(tonumber(arg[i + 1])), "-n N"); i = i + 1
  elseif a == "-k" then keys[#keys + 1] = arg[i + 1]; i = i + 1
  else pos[#pos + 1] = a end
  i = i + 1
end
assert(#pos == 4, "usage: ab.lua [-n PAIRS] [-k KEY]... NAME_A CMD_A NAME_B CMD_B")
if #keys == 0 then keys = { "time" } end
local name_a, cmd_a, name_b, cmd_b = pos[1], pos[2], pos[3], pos[4]

local function run(cmd)
  local p = assert(io.popen(cmd, "r"))
  local out = p:read("a")
  local ok, how, code = p:close()
  if not ok then
    io.stderr:write(("ab.lua: command failed (%s %s): %s\n%s"):format(how, code, cmd, out))
    os.exit(1)
  end
  local vals = {}
  for k, v in out:gmatch("([%w_]+)=([-%d.e+]+)") do vals[k] = tonumber(v) end
  return vals
end

local function median(t)
  local s = {}
  for j = 1, #t do s[j] = t[j] end
  table.sort(s)
  local n = #s
  if n % 2 == 1 then return s[(n + 1) // 2] end
  return (s[n // 2] + s[n // 2 + 1]) / 2
end

local va, vb, ratio = {}, {}, {}
for _, k in ipairs(keys) do va[k], vb[k], ratio[k] = {}, {}, {} end
print(("A = %s: %s"):format(name_a, cmd_a))
print(("B = %s: %s"):format(name_b, cmd_b))
for p = 1, pairs_n do
  local a = run(cmd_a)
  local b = run(cmd_b)
  local line = {}
  for _, k in ipairs(keys) do
    local x, y = assert(a[k], "A printed no " .. k), assert(b[k], "B printed no " .. k)
    table.insert(va[k], x)
    table.insert(vb[k], y)
    table.insert(ratio[k], y / x)
    line[#line + 1] = ("%s A=%.6g B=%.6g B/A=%.3f"):format(k, x, y, y / x)
  end
  print(("pair %d: %s"):format(p, table.concat(line, "  ")))
  io.stdout:flush()
end
for _, k in ipairs(keys) do
  print(("median %s: A(%s)=%.6g B(%s)=%.6g  median ratio B/A = %.3f (min %.3f, max %.3f)")
    :format(k, name_a, median(va[k]), name_b, median(vb[k]), median(ratio[k]),
            math.min(table.unpack(ratio[k])), math.max(table.unpack(ratio[k]))))
end
