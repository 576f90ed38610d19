-- Line ping-pong over loopback TCP with weft streams: N round trips.
package.cpath = "./" .. (os.getenv("WEFT_BUILD") or "build") .. "/?.so;" .. package.cpath
local weft = require "weft"
local N = tonumber(arg[1]) or 100000
weft.run(function()
  local server = weft.net.listen("127.0.0.1", 0, function(s)
    while true do
      local l = s:read_line()
      if not l then return end
      s:write(l, "\n")
    end
  end)
  local c = weft.net.connect("127.0.0.1", server.port)
  local t0 = weft.now()
  for _ = 1, N do c:write("ping\n"); c:read_line() end
  local dt = weft.now() - t0
  print(("weft streams: %d round trips, %.2f us each"):format(N, dt / N * 1e6))
  c:close()
  server:close()
end)
