-- HTTP: N GETs (default 10000) of URL with weft.http, at most C (default 50)
-- at a time: C worker tasks taking URLs from a shared counter.
package.cpath = "./" .. (os.getenv("WEFT_BUILD") or "build") .. "/?.so;" .. package.cpath
local weft = require "weft"
local url, n, conc = arg[1], tonumber(arg[2]) or 10000, tonumber(arg[3]) or 50
weft.run(function()
  local next_i, bytes = 0, 0
  local t0 = weft._hrtime()
  local workers = {}
  for w = 1, conc do
    workers[w] = weft.spawn(function()
      while next_i < n do
        next_i = next_i + 1
        local r = weft.http.get(url)
        assert(r.status == 200)
        bytes = bytes + #r.body
      end
    end)
  end
  weft.gather(workers)
  print(("weft.http: %d GETs in %.3f s (%d bytes)"):format(n, weft._hrtime() - t0, bytes))
end)
