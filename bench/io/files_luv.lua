-- Files with raw luv fs callbacks: the same requests weft.fs.read makes (open,
-- read 64 KiB until an empty read, close), 64 files in flight.
local uv = require "luv"
local dir, n, conc = arg[1], tonumber(arg[2]) or 10000, tonumber(arg[3]) or 64
local next_i, bytes, t0 = 0, 0, uv.hrtime()
local function start()
  if next_i >= n then return end
  next_i = next_i + 1
  local path = dir .. "/f" .. next_i
  uv.fs_open(path, "r", 420, function(err, fd)
    assert(fd, err)
    local offset, parts = 0, {}
    local function on_read(rerr, data)
      assert(data, rerr)
      if data == "" then
        bytes = bytes + #table.concat(parts)
        uv.fs_close(fd, function() start() end)
        return
      end
      parts[#parts + 1] = data
      offset = offset + #data
      uv.fs_read(fd, 65536, offset, on_read)
    end
    uv.fs_read(fd, 65536, offset, on_read)
  end)
end
for _ = 1, conc do start() end
uv.run()
print(("raw luv fs: %d files (%d bytes) in %.3f s"):format(n, bytes, (uv.hrtime() - t0) / 1e9))
