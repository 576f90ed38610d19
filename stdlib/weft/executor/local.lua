--- The local executor: a pipeline task's process is a child of weft,
-- started with weft.exec (see weft.executor for the interface). Resources
-- are not enforced here; -j bounds how many tasks run at once.
-- @module weft.executor.local
local weft = require "weft"

local M = {}

local Local = {}
Local.__index = Local
-- its processes are weft.exec's, options untouched: weft run may hand it
-- a line sink (`_sink`) that writes their output from C
Local.runs_weft_exec = true

--- A local executor (the config is not needed).
function M.new()
  return setmetatable({}, Local)
end

--- Runs `argv` with weft.exec's options; cancellation terminates and reaps
-- the process group (TERM, then KILL after `grace`).
function Local:exec(argv, opts)
  return weft.exec(argv, opts)
end

--- The command line a dry run prints.
function Local:describe(argv)
  return argv and table.concat(argv, " ") or "(runs on this machine)"
end

return M
