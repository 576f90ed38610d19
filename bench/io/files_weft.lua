-- Files: read the N files DIR/f1 .. DIR/fN with weft.fs.read, 64 tasks at once
-- (workers taking the next index from a shared counter).
package.cpath = "./" .. (os.getenv("WEFT_BUILD") or "build") .. "/?.so;" .. package.cpath
local weft = require "weft"
local dir, n, conc = arg[1], tonumber(arg[2]) or 10000, tonumber(arg[3]) or 64
weft.run(function()
  local fs = weft.fs
  local next_i, bytes = 0, 0
  local t0 = weft._hrtime()
  local workers = {}
  for w = 1, conc do
    workers[w] = weft.spawn(function()
      while next_i < n do
        next_i = next_i + 1
        local data = fs.read(dir .. "/f" .. next_i)
        bytes = bytes + #data
      end
    end)
  end
  weft.gather(workers)
  print(("weft.fs: %d files (%d bytes) in %.3f s"):format(n, bytes, weft._hrtime() - t0))
end)
