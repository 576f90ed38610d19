-- A small HTTP/1.1 server for spec/http_spec.lua and the HTTP benchmark,
-- written with weft.net.listen: run it as `weft http_server.lua [portfile]`.
-- It listens on 127.0.0.1 on a free port, writes the port to portfile (or
-- stdout) and serves until SIGTERM. Keep-alive; one task per connection.
--   /echo            200, body: JSON {method=, path=, headers=, body=}
--   /hello           200 "hello"
--   /redirect        302 to /hello;  /loop: 302 to itself
--   /status/N        status N, body "status N"
--   /slow/MS         answers "slow" after MS milliseconds
--   /chunked/N/MS    N chunks "chunk-i\n", MS milliseconds apart
--   /big/N           N bytes of "x", chunked in 64 KiB pieces
--   /cookies         two Set-Cookie headers
--   /conn            the number of the connection the request came on
local weft = require "weft"
local json = weft.json

local reasons = { [200] = "OK", [302] = "Found", [404] = "Not Found", [500] = "Internal Server Error" }

local function send(s, status, body, extra)
  local head = { ("HTTP/1.1 %d %s"):format(status, reasons[status] or "Status") }
  for _, h in ipairs(extra or {}) do head[#head + 1] = h end
  head[#head + 1] = "Content-Length: " .. #body
  s:write(table.concat(head, "\r\n"), "\r\n\r\n", body)
end

local function send_chunked(s, pieces, pause)
  s:write("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
  for _, p in ipairs(pieces) do
    if pause > 0 then weft.sleep(pause) end
    s:write(("%x\r\n"):format(#p), p, "\r\n")
  end
  s:write("0\r\n\r\n")
end

local function route(s, req)
  local path = req.path
  if path == "/conn" then
    return send(s, 200, tostring(req.conn))
  elseif path == "/echo" then
    return send(s, 200, json.encode({ method = req.method, path = path,
      headers = req.headers, body = req.body }), { "Content-Type: application/json" })
  elseif path == "/hello" then
    return send(s, 200, "hello")
  elseif path == "/redirect" then
    return send(s, 302, "", { "Location: /hello" })
  elseif path == "/loop" then
    return send(s, 302, "", { "Location: /loop" })
  elseif path == "/cookies" then
    return send(s, 200, "", { "Set-Cookie: a=1", "Set-Cookie: b=2" })
  end
  local n = path:match("^/status/(%d+)$")
  if n then return send(s, tonumber(n), "status " .. n) end
  local ms = path:match("^/slow/(%d+)$")
  if ms then
    weft.sleep(tonumber(ms) / 1000)
    return send(s, 200, "slow")
  end
  local count, pause = path:match("^/chunked/(%d+)/(%d+)$")
  if count then
    local pieces = {}
    for i = 1, tonumber(count) do pieces[i] = "chunk-" .. i .. "\n" end
    return send_chunked(s, pieces, tonumber(pause) / 1000)
  end
  local size = path:match("^/big/(%d+)$")
  if size then
    local pieces, left = {}, tonumber(size)
    local block = ("x"):rep(65536)
    while left > 0 do
      pieces[#pieces + 1] = left >= #block and block or block:sub(1, left)
      left = left - #pieces[#pieces]
    end
    return send_chunked(s, pieces, 0)
  end
  return send(s, 404, "not found")
end

-- Reads one request; nil at the end of the connection.
local function read_request(s)
  local line = s:read_line()
  if not line or line == "" then return nil end
  local method, path = line:match("^(%u+) (%S+)")
  local req = { method = method, path = path, headers = {} }
  while true do
    local h = assert(s:read_line())
    if h == "" then break end
    local name, value = h:match("^([^:]+):%s*(.*)$")
    req.headers[name:lower()] = value
  end
  local len = tonumber(req.headers["content-length"] or 0)
  local parts = {}
  while len > 0 do
    local p = assert(s:read(len))
    parts[#parts + 1] = p
    len = len - #p
  end
  req.body = table.concat(parts)
  return req
end

local nconn = 0
local server = weft.net.listen("127.0.0.1", 0, function(s)
  nconn = nconn + 1
  local conn = nconn
  while true do
    local req = read_request(s)
    if not req then return end
    req.conn = conn
    route(s, req)
    if (req.headers.connection or ""):lower() == "close" then return end
  end
end)

local out = arg[1] and assert(io.open(arg[1] .. ".tmp", "w")) or io.stdout
out:write(server.port, "\n")
out:flush()
if arg[1] then
  out:close()
  os.rename(arg[1] .. ".tmp", arg[1])
end
