--- The REPL's Lua half (docs/repl.md): compiling entries into the persistent
-- environment, printing values and errors, completion candidates and the ':'
-- commands. host/repl.c (CLI only) owns the terminal, libedit and signals and
-- calls in here; it hands over its C functions with `attach` first.
-- @module weft.repl
local weft = require "weft"
local M = {}

local C   -- the C side's functions (traceback, started, awaited, write, ...)

--- Takes the C side's functions; called once by host/repl.c before anything else.
-- @tparam table c
function M.attach(c)
  C = c
end

local keywords = {}
for w in ("and break do else elseif end false for function goto if in local nil not or "
  .. "repeat return then true until while"):gmatch("%a+") do
  keywords[w] = true
end

-- {======== the environment: REPL locals live in 'locals', globals in _G

local locals, declared = {}, {}
local env = setmetatable({}, {
  __index = function(_, k)
    if declared[k] then return locals[k] end
    return _G[k]
  end,
  __newindex = function(_, k, v)
    if declared[k] then locals[k] = v else _G[k] = v end
  end,
})

-- Declares REPL locals; a new one starts as the value the name had, so
-- that `local print = print` reads the old binding.
local function declare(...)
  for i = 1, select("#", ...) do
    local k = select(i, ...)
    if not declared[k] then
      locals[k] = _G[k]
      declared[k] = true
    end
  end
end

-- Skips a long bracket at i ("[==["); returns the index after it closes.
local function skip_long(src, i)
  local level = src:match("^%[(=*)%[", i)
  local _, e = src:find("]" .. level .. "]", i, true)
  return e and e + 1 or #src + 1
end

-- Skips a string, a comment or a number at i, or returns nil.
local function skip_other(src, i)
  local c = src:sub(i, i)
  if c == "-" and src:sub(i + 1, i + 1) == "-" then
    if src:match("^%[=*%[", i + 2) then return skip_long(src, i + 2) end
    local e = src:find("\n", i, true)
    return e and e + 1 or #src + 1
  elseif c == '"' or c == "'" then
    local j = i + 1
    while j <= #src do
      local d = src:sub(j, j)
      if d == "\\" then j = j + 2
      elseif d == c or d == "\n" then break
      else j = j + 1 end
    end
    return j + 1
  elseif c == "[" and src:match("^%[=*%[", i) then
    return skip_long(src, i)
  elseif c:match("%d") then
    return i + #src:match("^[%w_.]+", i)
  end
end

-- Parses the name list after 'local' at i: returns the names, the index
-- after the list, and whether some name is <close>.
local function namelist(src, i)
  local names, close = {}, false
  while true do
    local s, name, e = src:match("^%s*()([%a_][%w_]*)()", i)
    if not s or keywords[name] then return nil end
    names[#names + 1] = name
    i = e
    local attrib, e2 = src:match("^%s*<%s*(%a+)%s*>()", i)
    if attrib then
      close = close or attrib == "close"
      i = e2
    end
    local comma = src:match("^%s*,()", i)
    if not comma then return names, i, close end
    i = comma
  end
end

local function quoted_names(names)
  local q = {}
  for k, n in ipairs(names) do q[k] = ("%q"):format(n) end
  return table.concat(q, ",")
end

-- Rewrites the top-level local declarations of a chunk into assignments to
-- REPL locals, keeping line numbers:
--   local a <const>, b = e   ->  ;__repl_decl("a","b") a, b = e
--   local x                  ->  ;__repl_decl("x") x = nil
--   local function f         ->  ;__repl_decl("f") function f
-- <close> variables stay real locals, closed when the entry ends.
local function rewrite(src)
  local out, copied, i, depth = {}, 1, 1, 0
  while i <= #src do
    local skip = skip_other(src, i)
    local word = not skip and src:match("^[%a_][%w_]*", i)
    if skip then
      i = skip
    elseif not word then
      i = i + 1
    elseif word == "function" or word == "do" or word == "if" or word == "repeat" then
      depth, i = depth + 1, i + #word
    elseif word == "end" or word == "until" then
      depth, i = depth - 1, i + #word
    elseif word == "local" and depth == 0 then
      local after = i + #word
      local fname = src:match("^%s+function%s+([%a_][%w_]*)", after)
      local names, stop, close = namelist(src, after)
      if fname then
        out[#out + 1] = src:sub(copied, i - 1) .. (";__repl_decl(%q)"):format(fname)
        copied = after
      elseif names and not close then
        local list = src:sub(after, stop - 1):gsub("<%s*%a+%s*>", "")
        local assign = src:match("^%s*=[^=]", stop) and "" or " = nil"
        out[#out + 1] = src:sub(copied, i - 1) .. (";__repl_decl(%s)"):format(quoted_names(names))
          .. list .. assign
        copied = stop
      end
      i = after
    else
      i = i + #word
    end
  end
  out[#out + 1] = src:sub(copied)
  return table.concat(out)
end
M.rewrite = rewrite

--- Compiles an entry: an expression first (its values are printed), else
-- statements.
-- @tparam string src
-- @return fn, arg; or nil, message, incomplete (more lines could finish it)
function M.compile(src)
  local f, rerr = load("return " .. src, "=stdin", "t", env)
  if f then return f end
  local _, err = load(src, "=stdin", "t", env)
  if err then
    return nil, err, err:sub(-5) == "<eof>" or rerr:sub(-5) == "<eof>"
  end
  f = load("local __repl_decl = ...; " .. rewrite(src), "=stdin", "t", env)
  if f then return f, declare end
  return load(src, "=stdin", "t", env)
end

-- }======== 

-- {======== printing values

local MAX_ITEMS, MAX_DEPTH, MAX_TOTAL, WIDTH, MAX_STRING = 50, 6, 500, 76, 200

local function quote(s, limit)
  local extra = ""
  if limit and #s > limit then
    extra, s = (" ...(%d more bytes)"):format(#s - limit), s:sub(1, limit)
  end
  return ("%q"):format(s):gsub("\\\n", "\\n") .. extra
end

local function has_tostring(v)
  local mt = getmetatable(v)
  return type(mt) == "table" and rawget(mt, "__tostring") ~= nil
end

local replaced = {}   -- the REPL's replacement function -> what it replaces

local function plain(v)
  local t = type(v)
  if t == "string" then return quote(v, MAX_STRING) end
  if t == "function" then
    v = replaced[v] or v
    local info = debug.getinfo(v, "S")
    if info.what ~= "C" then
      return ("%s (%s:%d)"):format(tostring(v), info.short_src, info.linedefined)
    end
  end
  local ok, s = pcall(tostring, v)
  return ok and s or ("<%s: __tostring failed>"):format(t)
end

local function key_text(k)
  if type(k) == "string" and k:match("^[%a_][%w_]*$") and not keywords[k] then return k end
  return "[" .. plain(k) .. "]"
end

local type_order = { number = 1, string = 2, boolean = 3 }
local function key_less(a, b)
  local ta, tb = type_order[type(a)] or 4, type_order[type(b)] or 4
  if ta ~= tb then return ta < tb end
  if ta <= 2 then return a < b end
  return tostring(a) < tostring(b)
end

local format_value

local function table_items(t, state, indent)
  local items, n, count = {}, rawlen(t), 0
  local keys = {}
  for k in next, t do
    if not (math.type(k) == "integer" and k >= 1 and k <= n) then keys[#keys + 1] = k end
  end
  table.sort(keys, key_less)
  local total = n + #keys
  for i = 1, total do
    if count >= MAX_ITEMS or state.budget <= 0 then
      items[#items + 1] = ("...(%d more)"):format(total - count)
      break
    end
    count, state.budget = count + 1, state.budget - 1
    if i <= n then
      items[#items + 1] = format_value(rawget(t, i), state, indent + 2)
    else
      local k = keys[i - n]
      items[#items + 1] = key_text(k) .. " = " .. format_value(rawget(t, k), state, indent + 2)
    end
  end
  return items
end

local function format_table(t, state, indent)
  if state.path[t] then return "<cycle>" end
  if state.depth >= MAX_DEPTH then return "{...}" end
  state.path[t], state.depth = true, state.depth + 1
  local items = table_items(t, state, indent)
  state.path[t], state.depth = nil, state.depth - 1
  if #items == 0 then return "{}" end
  local line = "{ " .. table.concat(items, ", ") .. " }"
  if #line + indent <= WIDTH and not line:find("\n", 1, true) then return line end
  -- too long for one line: short items packed into lines, long ones alone
  local pad, lines, cur = (" "):rep(indent + 2), {}, nil
  for k, item in ipairs(items) do
    item = k < #items and item .. "," or item
    if cur and not item:find("\n", 1, true) and #cur + 1 + #item <= WIDTH then
      cur = cur .. " " .. item
    else
      if cur then lines[#lines + 1] = cur end
      cur = pad .. item
    end
    if item:find("\n", 1, true) then lines[#lines + 1], cur = cur, nil end
  end
  lines[#lines + 1] = cur
  return "{\n" .. table.concat(lines, "\n") .. "\n" .. (" "):rep(indent) .. "}"
end

function format_value(v, state, indent)
  if type(v) == "table" and not has_tostring(v) then return format_table(v, state, indent) end
  return plain(v)
end

--- One printable line (or block) for a result value.
-- @param v any value
-- @treturn string
function M.format(v)
  if type(v) == "string" then return v end
  return format_value(v, { path = {}, depth = 0, budget = MAX_TOTAL }, 0)
end

-- {======== errors: the message and the user's frames

-- A frame of weft's own Lua: the stdlib, or the CLI's main chunk ("=weft").
local function weft_frame(line)
  return line:match("^%s*stdlib/weft/") or line:match("^%s*weft:%d")
end

-- The frames of a traceback that are the user's, callee first: weft's own
-- Lua frames go, and with them a C frame or "(...tail calls...)" called
-- from one of them or from nowhere (the bottom of a task).
local function user_frames(tb)
  local frames, keep, out = {}, {}, {}
  for line in (tb or ""):gmatch("[^\n]+") do
    if line ~= "stack traceback:" then frames[#frames + 1] = line end
  end
  for i = #frames, 1, -1 do
    local f = frames[i]
    if weft_frame(f) then
      keep[i] = false
    elseif f:match("^%s*%[C%]") or f:match("%(%.%.%.tail calls%.%.%.%)") then
      keep[i] = keep[i + 1] == true
    else
      keep[i] = true
    end
  end
  for i, f in ipairs(frames) do
    if keep[i] then out[#out + 1] = f end
  end
  return out
end

local function traceback_text(frames)
  if #frames == 0 then return "" end
  return "stack traceback:\n" .. table.concat(frames, "\n") .. "\n"
end

-- What :await() re-raised last (host/task.c): {error, traceback}, or nil.
local function take_reraised()
  local reg = debug.getregistry()
  local r = reg["weft.reraised"]
  reg["weft.reraised"] = nil
  return r
end

local function error_text(err)
  if type(err) == "string" or has_tostring(err) then return tostring(err) end
  return ("(error object is a %s value: %s)"):format(type(err), M.format(err))
end

-- The message of a failed entry and the user's frames; an error that
-- :await() re-raised shows where it was raised first, then the await.
local function failure_text(task, err, reraised)
  local text = error_text(err) .. "\n"
  local tb = traceback_text(user_frames(C.traceback(task)))
  if reraised and rawequal(reraised[1], err) and reraised[2] then
    local first = user_frames(reraised[2])
    if #first > 0 then
      return text .. traceback_text(first) .. "re-raised by:\n" .. tb:gsub("^stack traceback:\n", "")
    end
  end
  return text .. tb
end

-- }========

-- The last result and the last error, `_` and `_err` at the prompt: REPL
-- locals, so that they stay out of _G.
local function remember(name, v)
  declared[name] = true
  locals[name] = v
end

--- Prints the outcome of an entry's finished task (values, or the error and
-- the user's frames) and remembers it in `_` or `_err`.
-- @param task the entry's task, finished
-- @tparam boolean interrupted Ctrl-C cancelled it: says only "cancelled"
function M.report(task, interrupted)
  local reraised = take_reraised()   -- before task:result() re-raises the entry's own
  local r = table.pack(pcall(task.result, task))
  take_reraised()
  if r[1] then
    if r.n > 1 then
      local parts = {}
      for i = 2, r.n do parts[#parts + 1] = M.format(r[i]) end
      io.stdout:write(table.concat(parts, "\t"), "\n")
      remember("_", r[2])
    end
    io.stdout:flush()
    return
  end
  local err = r[2]
  remember("_err", err)
  io.stdout:flush()
  if interrupted and type(err) == "table" and err.kind == "Cancelled" then
    io.stderr:write("cancelled\n")   -- Ctrl-C: what the user asked for
    return
  end
  io.stderr:write(failure_text(task, err, reraised))
end

-- }========

-- {======== completion

local function each_key(t, fn)
  if type(t) == "table" then
    for k in next, t do
      if type(k) == "string" then fn(k) end
    end
  end
end

-- Keys of the tables among f's upvalues: what an __index function serves
-- (weft.pipeline in core.lua; weft.fs and weft.on_signal in host/io.c,
-- whose function core.lua's calls in turn). 'depth' 1 looks one function
-- further.
local function upvalue_keys(f, fn, depth)
  for i = 1, 8 do
    local name, up = debug.getupvalue(f, i)
    if not name then break end
    if type(up) == "table" and up ~= _G then
      each_key(up, fn)
    elseif type(up) == "function" and depth > 0 then
      upvalue_keys(up, fn, depth - 1)
    end
  end
end

-- Keys reachable by indexing v: its own, its metatable's __index chain,
-- and (for C __index functions, as task methods) tables in their upvalues.
local function fields(v, fn)
  for _ = 1, 4 do
    each_key(v, fn)
    local mt = getmetatable(v)
    if type(mt) == "table" and rawget(mt, "__pairs") then   -- weft.fs fills itself on pairs
      for k in pairs(v) do
        if type(k) == "string" then fn(k) end
      end
      return
    end
    local index = type(mt) == "table" and rawget(mt, "__index")
    if type(index) == "function" then
      upvalue_keys(index, fn, 1)
      return
    end
    if type(index) ~= "table" then return end
    v = index
  end
end

-- The ':' commands, as completion offers them.
local command_names = { "cancel", "help", "quit", "tasks", "time", "waits" }

--- Candidates completing 'text' (a name, a dotted path as "weft.sp", or a
-- ':' command at the start of the line). Names starting with '_' (weft's
-- internals as weft._stats) are offered only once '_' is typed.
-- @tparam string text the word before the cursor
-- @tparam integer start where it starts in the line (0: the line's start)
-- @treturn {string,...} sorted
function M.complete(text, start)
  local found, list = {}, {}
  if start == 0 and text:match("^:%a*$") then
    for _, name in ipairs(command_names) do
      if (":" .. name):sub(1, #text) == text then list[#list + 1] = ":" .. name end
    end
    return list
  end
  local prefix, sep, part = text:match("^(.-)([.:])([%w_]*)$")
  local typed = part or text
  local function add(k)
    if k:sub(1, #typed) == typed and k:match("^[%a_][%w_]*$")
        and (k:sub(1, 1) ~= "_" or typed:sub(1, 1) == "_") then
      found[k] = true
    end
  end
  if prefix then
    if not prefix:match("^[%a_][%w_.]*$") then return list end
    local obj = env
    for name in prefix:gmatch("[^.]+") do
      local ok, v = pcall(function() return obj[name] end)
      if not ok or v == nil then return list end
      obj = v
    end
    fields(obj, add)
    for k in pairs(found) do   -- after ':' only methods (indexing loads a lazy field)
      if sep == "." or type(select(2, pcall(function() return obj[k] end))) == "function" then
        list[#list + 1] = prefix .. sep .. k
      end
    end
  else
    each_key(locals, add)
    each_key(_G, add)
    each_key(keywords, add)
    for k in pairs(found) do list[#list + 1] = k end
  end
  table.sort(list)
  return list
end

-- }========

-- {======== commands

local function age_text(s)
  if not s then return "?" end
  if s < 60 then return ("%.1fs"):format(s) end
  if s < 3600 then return ("%dm%02ds"):format(s // 60, math.floor(s % 60)) end
  return ("%dh%02dm"):format(s // 3600, math.floor(s % 3600) // 60)
end

local function cmd_tasks()
  local live = weft.tasks()
  if #live == 0 then print("no live tasks") return end
  local now = weft.now()
  local rows = { { "id", "name", "status", "age", "waits on" } }
  for _, r in ipairs(live) do
    local started = C.started(r.task)
    rows[#rows + 1] = { tostring(r.task.id), r.name, r.status,
      age_text(started and now - started), r.on or "" }
  end
  local width = {}
  for _, row in ipairs(rows) do
    for c = 1, 4 do width[c] = math.max(width[c] or 0, #row[c]) end
  end
  for _, row in ipairs(rows) do
    print(("%" .. width[1] .. "s  %-" .. width[2] .. "s  %-" .. width[3] .. "s  %"
      .. width[4] .. "s  %s"):format(table.unpack(row)))
  end
end

local function task_label(t)
  return ("%d %q"):format(t.id, t.name)
end

-- Groups the waiting tasks by what they wait on: a task, a primitive, a
-- sleep. Each line is "what <- waiter, waiter".
local function cmd_waits()
  local groups, order = {}, {}
  for _, r in ipairs(weft.tasks()) do
    if r.on then
      local obj = C.awaited(r.task)
      local key = obj or r.on:gsub(" %(.*%)$", "")
      if not groups[key] then
        local what = obj and r.on or key
        if getmetatable(obj) == getmetatable(r.task) then
          what = "task " .. task_label(obj) .. " (" .. obj:status() .. ")"
        end
        groups[key] = { what = what, waiters = {} }
        order[#order + 1] = key
      end
      local w = groups[key].waiters
      w[#w + 1] = task_label(r.task)
    end
  end
  if #order == 0 then print("no task is waiting") return end
  for _, key in ipairs(order) do
    local g = groups[key]
    print(("%s <- %s"):format(g.what, table.concat(g.waiters, ", ")))
  end
end

local function cmd_cancel(arg)
  local id = tonumber(arg)
  if not id then print("usage: :cancel ID") return end
  for _, r in ipairs(weft.tasks()) do
    if r.task.id == id then
      r.task:cancel()
      print(("cancelling task %s"):format(task_label(r.task)))
      return
    end
  end
  print(("no live task with id %d"):format(id))
end

local help = [[
Each entry runs as a task: it may await (weft.sleep(1), t:await()).
An expression prints its values; `local x = 1` stays visible later;
`_` is the last value printed, `_err` the last error.
Tasks spawned with weft.spawn keep running between prompts.
  :tasks        live tasks: id, name, status, age, what each waits on
  :waits        who waits on whom
  :cancel ID    cancel the task with that id
  :time EXPR    run EXPR (it may await) and say how long it took
  :help         this text
  :quit         leave (as Ctrl-D): cancels the tasks still running
Ctrl-C cancels the running entry, a task hogging the loop, or clears the line.
Ctrl-R searches the history (again: older; Enter runs it; Esc, arrows: edit it;
Ctrl-G: back). Ctrl-\ lists every task. Ctrl-D leaves.
Tab completes globals, REPL locals, fields after '.' and ':', and commands.]]

--- Runs a ':' command line (:time is run by host/repl.c).
-- @tparam string line
-- @treturn boolean true to quit
function M.command(line)
  local name, arg = line:match("^:(%S*)%s*(.-)%s*$")
  if name == "tasks" then cmd_tasks()
  elseif name == "waits" then cmd_waits()
  elseif name == "cancel" then cmd_cancel(arg)
  elseif name == "help" or name == "h" or name == "?" then print(help)
  elseif name == "quit" or name == "q" then return true
  else print(("unknown command :%s (try :help)"):format(name)) end
  io.stdout:flush()
end

-- }========

-- {======== output of tasks while the prompt shows

-- print, io.write and the write method of io.stdout and io.stderr hand
-- their text to the C side (C.write), which writes it above the prompt.
local orig = { print = print, write = io.write }
local file_index = getmetatable(io.stdout).__index
orig.file_write = file_index.write

-- Text of one value as io.write writes it, or nil.
local function write_text(v)
  if math.type(v) == "integer" then return ("%d"):format(v) end
  if math.type(v) == "float" then return ("%.14g"):format(v) end
  if type(v) == "string" then return v end
end

local function collect(fname, first, ...)
  local parts = {}
  for i = 1, select("#", ...) do
    local v = select(i, ...)
    parts[i] = write_text(v)
    if not parts[i] then
      error(("bad argument #%d to '%s' (string expected, got %s)"):format(i + first - 1,
        fname, type(v)), 3)
    end
  end
  return table.concat(parts)
end

local function repl_print(...)
  local parts = {}
  for i = 1, select("#", ...) do parts[i] = tostring((select(i, ...))) end
  C.write(1, table.concat(parts, "\t") .. "\n")
end

local function repl_write(...)
  C.write(1, collect("write", 1, ...))
  return io.stdout
end

local function repl_file_write(f, ...)
  local fd = rawequal(f, io.stdout) and 1 or rawequal(f, io.stderr) and 2
  if not fd then return orig.file_write(f, ...) end
  C.write(fd, collect("write", 1, ...))
  return f
end

-- The REPL's replacements, shown as the functions they replace.
replaced[repl_print], replaced[repl_write] = orig.print, orig.write
replaced[repl_file_write] = orig.file_write

--- Puts the REPL's print, io.write and file write in place (on), or back.
-- @tparam boolean on
function M.wrap_output(on)
  if on then
    print, io.write, file_index.write = repl_print, repl_write, repl_file_write
  else
    if print == repl_print then print = orig.print end
    if io.write == repl_write then io.write = orig.write end
    if file_index.write == repl_file_write then file_index.write = orig.file_write end
  end
end

-- }========

return M
