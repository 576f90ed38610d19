-- Bulk echo with raw luv callbacks: BYTES (default 1 GiB) in 64 KiB writes.
-- Both sides stop reading or writing while more than 1 MiB is queued in
-- libuv (the back-pressure weft's write applies), and resume when it drains.
local uv = require "luv"
local total = tonumber(arg[1]) or 1024 * 1024 * 1024
local block = ("x"):rep(65536)
local HIGH = 1024 * 1024

local server = uv.new_tcp()
server:bind("127.0.0.1", 0)
server:listen(128, function()
  local c = uv.new_tcp()
  server:accept(c)
  local on_read
  local function drained()
    if c:get_write_queue_size() < HIGH and not c:is_closing() then c:read_start(on_read) end
  end
  function on_read(err, data)
    if not data then c:shutdown(function() c:close() end) return end
    c:write(data, drained)
    if c:get_write_queue_size() >= HIGH then c:read_stop() end
  end
  c:read_start(on_read)
end)

local client = uv.new_tcp()
local sent, got, t0 = 0, 0, nil
local function pump()
  while sent < total and client:get_write_queue_size() < HIGH do
    sent = sent + #block
    client:write(block, pump)
    if sent >= total then client:shutdown() end
  end
end
client:connect("127.0.0.1", server:getsockname().port, function()
  t0 = uv.hrtime()
  client:read_start(function(err, data)
    if data then got = got + #data return end
    assert(got == total, "short echo")
    print(("raw luv: %d MiB echoed in %.3f s"):format(total >> 20, (uv.hrtime() - t0) / 1e9))
    client:close(); server:close()
  end)
  pump()
end)
uv.run()
