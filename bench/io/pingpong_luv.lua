-- The same ping-pong with raw luv callbacks (no tasks).
local uv = require "luv"
local N = tonumber(arg[1]) or 100000
local server = uv.new_tcp()
server:bind("127.0.0.1", 0)
server:listen(128, function()
  local c = uv.new_tcp()
  server:accept(c)
  local buf = ""
  c:read_start(function(err, data)
    if not data then c:close() return end
    buf = buf .. data
    while true do
      local i = buf:find("\n", 1, true)
      if not i then break end
      c:write(buf:sub(1, i)); buf = buf:sub(i + 1)
    end
  end)
end)
local port = server:getsockname().port
local client = uv.new_tcp()
local n, t0, buf = 0, nil, ""
client:connect("127.0.0.1", port, function()
  t0 = uv.hrtime()
  client:read_start(function(err, data)
    buf = buf .. data
    while true do
      local i = buf:find("\n", 1, true)
      if not i then break end
      buf = buf:sub(i + 1)
      n = n + 1
      if n == N then
        print(("raw luv: %d round trips, %.2f us each"):format(N, (uv.hrtime() - t0) / N / 1e3))
        client:close(); server:close()
        return
      end
      client:write("ping\n")
    end
  end)
  client:write("ping\n")
end)
uv.run()
