-- Hostile: tries to reach the system from the sandbox.
local tried = {}
for _, probe in ipairs({
  function() return os.execute("true") end,
  function() return io.open("/etc/passwd") end,
  function() return require("os") end,
  function() return load(string.dump(print)) end,
  function() return getmetatable("").__index end,
  function() return weft.sh("true") end,
}) do
  tried[#tried + 1] = pcall(probe) and "open" or "closed"
end
app.log("escapes: " .. table.concat(tried, " "))
error("escape failed")
