-- weft.http (API.md "The event loop and I/O", HTTP client) against servers
-- this spec starts on 127.0.0.1 and stops itself: nginx serving static
-- files from a temp dir, and spec/support/http_server.lua (weft.net) for
-- echo, redirects, statuses, slow and chunked answers. Nothing leaves the
-- machine: the unknown host is under .invalid, the refused port is local.
local weft = require "weft"

local bin = os.getenv("WEFT_BIN") or "build/weft"

local function sh(cmd)
  local f = assert(io.popen(cmd))
  local out = f:read("a")
  f:close()
  return out
end

local function wait_for(path)
  for _ = 1, 500 do
    local f = io.open(path)
    if f then
      local s = f:read("a")
      f:close()
      if s ~= "" then return s end
    end
    os.execute("sleep 0.01")
  end
  error("timed out waiting for " .. path)
end

local function free_port()
  return weft.run(function()
    local s = weft.net.listen("127.0.0.1", 0, function() end)
    local port = s.port
    s:close()
    return port
  end)
end

local dir = sh("mktemp -d /tmp/weft-http-XXXXXX"):gsub("%s+$", "")
local weft_pid, nginx_port, base, static
local one_k = ("0123456789abcdef"):rep(64)

local function start_weft_server()
  local pid = sh(("%s spec/support/http_server.lua %s/port >%s/server.log 2>&1 & echo $!")
    :format(bin, dir, dir))
  weft_pid = assert(tonumber(pid))
  base = "http://127.0.0.1:" .. tonumber(wait_for(dir .. "/port")) .. "/"
end

local function start_nginx()
  os.execute("mkdir -p " .. dir .. "/www " .. dir .. "/tmp && chmod 755 " .. dir)
  local f = assert(io.open(dir .. "/www/1k.txt", "w"))
  f:write(one_k)
  f:close()
  nginx_port = free_port()
  f = assert(io.open(dir .. "/nginx.conf", "w"))
  -- as root, nginx's workers would run as an unprivileged user (and one
  -- that a minimal system may lack): keep them as the user running the spec
  local as_root = sh("id -u"):match("^0") ~= nil
  f:write((as_root and "user root;\n" or "") .. ([[
daemon on;
pid %s/nginx.pid;
error_log %s/error.log;
worker_processes 1;
events { worker_connections 1024; }
http {
  access_log off;
  client_body_temp_path %s/tmp;
  keepalive_requests 100000;
  server { listen 127.0.0.1:%d; root %s/www; }
}
]]):format(dir, dir, dir, nginx_port, dir))
  f:close()
  -- nginx's workers run as an unprivileged user when started as root: they
  -- must be able to read the files whatever the umask was
  os.execute("chmod -R a+rX " .. dir)
  assert(os.execute(("nginx -q -c %s/nginx.conf -p %s"):format(dir, dir)))
  wait_for(dir .. "/nginx.pid")
  static = "http://127.0.0.1:" .. nginx_port .. "/"
end

-- TERM, and KILL if it is still there a second later: a server that
-- ignored TERM must not outlive the run.
local function stop(pid)
  if not pid then return end
  os.execute("kill " .. pid .. " 2>/dev/null")
  for _ = 1, 20 do
    if os.execute("kill -0 " .. pid .. " 2>/dev/null") ~= true then return end
    os.execute("sleep 0.05")
  end
  os.execute("kill -KILL " .. pid .. " 2>/dev/null")
end

setup(function()
  start_weft_server()
  start_nginx()
end)

teardown(function()
  stop(weft_pid)
  local f = io.open(dir .. "/nginx.pid")
  if f then
    stop(tonumber(f:read("l")))
    f:close()
  end
  os.execute("sleep 0.1; rm -rf " .. dir)
end)

local function run(fn, ...)
  return weft.run(fn, ...)
end

local function failure(fn)
  local ok, err = pcall(weft.run, fn)
  assert.is_false(ok)
  return err
end

describe("weft.http against nginx", function()
  it("gets a static file with its status and lower-case headers", function()
    local r = run(weft.http.get, static .. "1k.txt")
    assert.equal(200, r.status)
    assert.equal(one_k, r.body)
    assert.equal("1024", r.headers["content-length"])
    assert.equal("text/plain", r.headers["content-type"])
    assert.matches("^nginx", r.headers.server)
  end)

  it("returns a 404 without raising when check is not set", function()
    local r = run(weft.http.get, static .. "missing.txt")
    assert.equal(404, r.status)
    assert.matches("404", r.body)
  end)

  it("serves many concurrent GETs under a semaphore", function()
    local ok = run(function()
      local sem = weft.semaphore(20)
      local tasks = {}
      for i = 1, 200 do
        tasks[i] = weft.spawn(function()
          sem:acquire()
          local r = weft.http.get(static .. "1k.txt")
          sem:release()
          return r.status == 200 and #r.body == 1024
        end)
      end
      local n = 0
      for _, good in ipairs(weft.gather(tasks)) do
        if good then n = n + 1 end
      end
      return n
    end)
    assert.equal(200, ok)
  end)
end)

describe("weft.http against a weft server", function()
  it("posts a body with headers and the POST method by default", function()
    local r = run(weft.http.post, base .. "echo", "payload", { headers = { ["X-Weft"] = "yes" } })
    local echo = weft.json.decode(r.body)
    assert.equal("POST", echo.method)
    assert.equal("payload", echo.body)
    assert.equal("yes", echo.headers["x-weft"])
    assert.is_nil(echo.headers.expect)
  end)

  it("sends the method given, and header lines from the array part", function()
    local echo = weft.json.decode(run(weft.http.request, {
      url = base .. "echo", method = "PUT", body = "x", headers = { "X-Line: 1" } }).body)
    assert.equal("PUT", echo.method)
    assert.equal("1", echo.headers["x-line"])
    echo = weft.json.decode(run(weft.http.request, { url = base .. "echo", method = "DELETE" }).body)
    assert.equal("DELETE", echo.method)
  end)

  it("makes a HEAD request without a body", function()
    local r = run(weft.http.request, { url = base .. "hello", method = "HEAD" })
    assert.equal(200, r.status)
    assert.equal("", r.body)
    assert.equal("5", r.headers["content-length"])
  end)

  it("joins repeated headers with a comma", function()
    local r = run(weft.http.get, base .. "cookies")
    assert.equal("a=1, b=2", r.headers["set-cookie"])
  end)

  it("reuses the connection for the next request", function()
    local a, b = run(function()
      return weft.http.get(base .. "conn").body, weft.http.get(base .. "conn").body
    end)
    assert.equal(a, b)
  end)

  it("follows redirects by default and keeps the last response's headers", function()
    local r = run(weft.http.get, base .. "redirect")
    assert.equal(200, r.status)
    assert.equal("hello", r.body)
    assert.is_nil(r.headers.location)
  end)

  it("does not follow with follow = false", function()
    local r = run(weft.http.get, base .. "redirect", { follow = false })
    assert.equal(302, r.status)
    assert.equal("/hello", r.headers.location)
  end)

  it("raises TOO_MANY_REDIRECTS on a redirect loop", function()
    local err = failure(function() return weft.http.get(base .. "loop") end)
    assert.equal("HTTPError", err.kind)
    assert.equal("TOO_MANY_REDIRECTS", err.code)
  end)

  it("raises HTTP_RETURNED_ERROR with status and body when check = true", function()
    local err = failure(function() return weft.http.get(base .. "status/500", { check = true }) end)
    assert.equal("HTTPError", err.kind)
    assert.equal("HTTP_RETURNED_ERROR", err.code)
    assert.equal(500, err.status)
    assert.equal("status 500", err.body)
    assert.equal(base .. "status/500", err.url)
  end)

  it("does not raise with check = true below 400", function()
    assert.equal(200, run(weft.http.get, base .. "hello", { check = true }).status)
  end)

  it("hands a chunked body to on_data as it arrives", function()
    local chunks = {}
    local r = run(weft.http.get, base .. "chunked/4/30", {
      on_data = function(c) chunks[#chunks + 1] = c end })
    assert.equal(200, r.status)
    assert.is_nil(r.body)
    assert.is_true(#chunks >= 2)
    assert.equal("chunk-1\nchunk-2\nchunk-3\nchunk-4\n", table.concat(chunks))
  end)

  it("streams a large body through on_data", function()
    local n = 0
    run(weft.http.get, base .. "big/5000000", { on_data = function(c) n = n + #c end })
    assert.equal(5000000, n)
  end)

  it("aborts the transfer and raises the error of a failing on_data", function()
    local err = failure(function()
      return weft.http.get(base .. "chunked/3/20", { on_data = function() error("stop here", 0) end })
    end)
    assert.equal("stop here", err)
  end)

  it("runs slow requests concurrently", function()
    local t0 = weft._hrtime()
    run(function()
      local tasks = {}
      for i = 1, 10 do tasks[i] = weft.spawn(weft.http.get, base .. "slow/200") end
      weft.gather(tasks)
    end)
    assert.is_true(weft._hrtime() - t0 < 1.5)
  end)

  it("removes a cancelled transfer at once", function()
    local t0 = weft._hrtime()
    local err = failure(function()
      local t = weft.spawn(weft.http.get, base .. "slow/3000")
      weft.sleep(0.05)
      t:cancel()
      return t:await()
    end)
    assert.equal("Cancelled", err.kind)
    assert.is_true(weft._hrtime() - t0 < 1)
    assert.equal("hello", run(weft.http.get, base .. "hello").body)
  end)

  it("is cancelled by weft.timeout", function()
    local err = failure(function()
      return weft.timeout(0.05, weft.http.get, base .. "slow/3000")
    end)
    assert.equal("Timeout", err.kind)
  end)

  it("keeps the run alive while a transfer is in progress", function()
    assert.equal("slow", run(weft.http.get, base .. "slow/100").body)
  end)
end)

describe("weft.http failures", function()
  it("raises COULDNT_CONNECT for a refused port", function()
    local url = "http://127.0.0.1:" .. free_port() .. "/"
    local err = failure(function() return weft.http.get(url) end)
    assert.equal("HTTPError", err.kind)
    assert.equal("COULDNT_CONNECT", err.code)
    assert.equal(url, err.url)
  end)

  it("takes an infinite or huge timeout as no deadline (no undefined cast)", function()
    -- tried: math.huge, 1e300 and 2^63 ms; each must reach the refused port, not trap
    for _, t in ipairs({ math.huge, 1e300, 2 ^ 63 / 1000 }) do
      local url = "http://127.0.0.1:" .. free_port() .. "/"
      local err = failure(function() return weft.http.get(url, { timeout = t }) end)
      assert.equal("COULDNT_CONNECT", err.code)
    end
  end)

  it("raises COULDNT_RESOLVE_HOST for an unknown host", function()
    local err = failure(function() return weft.http.get("http://no-such-host.invalid/") end)
    assert.equal("COULDNT_RESOLVE_HOST", err.code)
  end)

  it("raises OPERATION_TIMEDOUT past the timeout", function()
    local err = failure(function() return weft.http.get(base .. "slow/2000", { timeout = 0.1 }) end)
    assert.equal("OPERATION_TIMEDOUT", err.code)
  end)

  it("raises URL_MALFORMAT for a malformed URL", function()
    local err = failure(function() return weft.http.get("http://[::1") end)
    assert.equal("URL_MALFORMAT", err.code)
  end)

  it("raises UNSUPPORTED_PROTOCOL for an unknown scheme", function()
    local err = failure(function() return weft.http.get("gopherx://127.0.0.1/") end)
    assert.equal("UNSUPPORTED_PROTOCOL", err.code)
  end)

  it("rejects bad arguments", function()
    run(function()
      assert.has_error(function() weft.http.request("x") end,
        "bad argument #1 to 'request' (table expected, got string)")
      assert.has_error(function() weft.http.request({}) end,
        "bad option 'url' (string expected, got nil)")
      assert.has_error(function() weft.http.get(base, { timeout = "soon" }) end,
        "bad option 'timeout' (number expected, got string)")
      assert.has_error(function() weft.http.get(base, { headers = 1 }) end,
        "bad option 'headers' (table expected, got number)")
      assert.has_error(function() weft.http.get(base, { on_data = 1 }) end,
        "bad option 'on_data' (function expected, got number)")
      assert.has_error(function() weft.http.post(base) end,
        "bad argument #2 to 'post' (string expected, got no value)")
    end)
  end)

  it("raises outside a task", function()
    assert.has_error(function() weft.http.get(base) end,
      "weft.http.request: not inside a task (start one with weft.run or weft.spawn)")
  end)
end)
