--- The CLI's main task: what `weft [options] [script [args]]` runs once its
-- flags are parsed (host/main.c spawns `run` as the task named "main").
-- @module weft.main
local M = {}

--- Runs the `-e` and `-l` actions in their command-line order, then the
-- script with its arguments, as lua(1) does.
-- @tparam table actions `{ {"e", chunk} | {"l", "name" or "name=module"} ... }`
-- @tparam[opt] string script a path, `"-"` for stdin, nil for none
-- @tparam table args the script's arguments, with `n`
-- @raise the first error of a chunk, a module or the script
function M.run(actions, script, args)
  for _, a in ipairs(actions) do
    if a[1] == "e" then
      local f, err = load(a[2], "=(command line)")
      if not f then error(err, 0) end
      f()
    else
      local name, mod = a[2]:match("^([^=]+)=(.+)$")
      name = name or a[2]
      _G[name] = require(mod or a[2])   -- lua(1)'s -l makes a global: so does weft's
    end
  end
  if script then
    local f, err = loadfile(script ~= "-" and script or nil)
    if not f then error(err, 0) end
    f(table.unpack(args, 1, args.n))
  end
end

return M
