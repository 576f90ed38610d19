-- Fanning a request out to backend services: a small HTTP server (weft.net)
-- whose every answer takes 0.2 s, and 50 GETs to it through weft.http, at
-- most 10 at a time (a semaphore). Run: build/weft examples/http_fanout.lua
-- Sequentially that would be 50 x 0.2 = 10 s; 10 at a time it is about 1 s.
local weft = require "weft"

-- The "backend": reads a request head, waits 0.2 s, answers with the path.
local function handle(stream)
  while true do
    local line = stream:read_line()
    if not line then return end
    local path = line:match("^%u+ (%S+)")
    repeat line = stream:read_line() until line == "" or line == nil
    weft.sleep(0.2)
    local body = "answer for " .. path
    stream:write("HTTP/1.1 200 OK\r\nContent-Length: ", tostring(#body), "\r\n\r\n", body)
  end
end

local server = weft.net.listen("127.0.0.1", 0, handle)
local base = ("http://127.0.0.1:%d/item/"):format(server.port)

local limit = weft.semaphore(10)
local t0 = weft.now()
local tasks = {}
for i = 1, 50 do
  tasks[i] = weft.spawn(function()
    limit:acquire()
    local ok, r = pcall(weft.http.get, base .. i)
    limit:release()
    assert(ok, r)
    return r.body
  end)
end
local bodies = weft.gather(tasks)
local elapsed = weft.now() - t0
server:close()

print(("%d responses, first %q, last %q"):format(#bodies, bodies[1], bodies[#bodies]))
print(("total %.2f s for 50 requests of 0.2 s, 10 at a time (sequential: 10 s)"):format(elapsed))
