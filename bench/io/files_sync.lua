-- Files with plain synchronous io.open reads, one after another.
local uv = require "luv"
local dir, n = arg[1], tonumber(arg[2]) or 10000
local bytes, t0 = 0, uv.hrtime()
for i = 1, n do
  local f = assert(io.open(dir .. "/f" .. i, "rb"))
  bytes = bytes + #f:read("a")
  f:close()
end
print(("sync io.open: %d files (%d bytes) in %.3f s"):format(n, bytes, (uv.hrtime() - t0) / 1e9))
