-- Bulk: BYTES (default 1 GiB) through a loopback echo server in 64 KiB
-- writes, with weft streams: one task writes, another reads it all back.
package.cpath = "./" .. (os.getenv("WEFT_BUILD") or "build") .. "/?.so;" .. package.cpath
local weft = require "weft"
local total = tonumber(arg[1]) or 1024 * 1024 * 1024
local block = ("x"):rep(65536)
weft.run(function()
  local server = weft.net.listen("127.0.0.1", 0, function(s)
    while true do
      local data = s:read()
      if not data then break end
      s:write(data)
    end
    s:shutdown()
  end)
  local c = weft.net.connect("127.0.0.1", server.port)
  local t0 = weft._hrtime()
  local writer = weft.spawn(function()
    for _ = 1, total // #block do c:write(block) end
    c:shutdown()
  end)
  local got = 0
  while true do
    local data = c:read()
    if not data then break end
    got = got + #data
  end
  writer:await()
  local dt = weft._hrtime() - t0
  assert(got == total, "short echo")
  print(("weft streams: %d MiB echoed in %.3f s"):format(total >> 20, dt))
  c:close()
  server:close()
end)
