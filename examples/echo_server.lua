-- A TCP echo server: a task per connection; SIGTERM or Ctrl-C closes the
-- server, which lets open connections finish their cleanup.
-- Run: build/weft examples/echo_server.lua [port]   then: nc 127.0.0.1 PORT
local weft = require "weft"

local server = weft.net.listen("127.0.0.1", tonumber(arg and arg[1]) or 0, function(stream)
  print("connection opened")
  local ok, err = pcall(function()
    while true do
      local line = stream:read_line()
      if line == nil then break end
      stream:write(line, "\n")
    end
  end)
  print("connection closed" .. (ok and "" or " (" .. tostring(err) .. ")"))
end)
print("echo server on 127.0.0.1 port " .. server.port .. " (SIGTERM or Ctrl-C to stop)")

-- The CLI cancels every task on SIGTERM/Ctrl-C; a script that must stop on
-- SIGHUP too can say so:
local hup = weft.on_signal("SIGHUP", function()
  print("SIGHUP: closing the server")
  server:close()
end)

local ok, err = pcall(function() while true do weft.sleep(3600) end end)
hup:close()
server:close()
print("server closed" .. (ok and "" or ": " .. tostring(err)))
