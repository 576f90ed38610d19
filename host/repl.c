/*
** repl.c: the weft REPL (API.md "CLI"; docs/repl.md). Linked into the CLI
** only. It runs on the runtime's loop: the terminal is read through libedit's
** readline-compatible callback interface fed by a uv_poll on stdin, so tasks
** keep running while the user types; a pipe or file on stdin is read through
** the loop too (uv_pipe_t or uv_fs_read), without line editing or prompts.
**
** Each complete entry is compiled into the REPL environment (top-level
** `local`s become REPL locals, see the Lua half below) and runs as a task
** named "main"; the prompt comes back when that task has finished. While
** the prompt shows, output of `print` and `io.write` (wrapped) and error
** reports are written above it: the line is erased, the text written, and
** libedit redraws prompt and line.
**
** Signals: while the REPL runs, SIGINT and SIGTERM have handlers of their own
** (main.c's are saved and put back at the end). Ctrl-C cancels the running
** entry's task (a hook interrupts one that never awaits), clears the line at
** the prompt, and twice in a row cancels a task that hogs the loop. During
** the exit it leaves at once (130). SIGTERM cancels everything and ends the
** REPL with 143.
**
** Ownership: one REPL per process, so its state is static (a signal handler
** reads it). Its handles are closed, and their close callbacks run, before
** weft__repl returns. The Lua half lives in the registry (helper_ref).
*/
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <editline/readline.h>

#include "internal.h"

enum { IN_TTY = 1, IN_PIPE, IN_FILE };
enum { ST_IDLE = 0, ST_PROMPTING, ST_RUNNING, ST_EXITING };
enum { GOT_LINE = 0, GOT_EOF, GOT_INTERRUPT, GOT_QUIT };

static struct repl {
  lua_State *L;
  weft_runtime *rt;
  int input;                  /* IN_* */
  int state;                  /* ST_* */
  int quit;                   /* exit status asked for by SIGTERM or :quit, or -1 */
  int helper_ref;             /* the Lua half */
  int seen_ref;               /* weak table task -> clock when first seen */
  uint64_t seen_id;           /* highest task id recorded there */
  weft_task *entry;           /* the task running the current entry */
  uv_poll_t poll;             /* IN_TTY */
  uv_pipe_t pipe;             /* IN_PIPE */
  uv_fs_t fsreq;              /* IN_FILE */
  int fs_pending;
  char fsbuf[4096];
  char *in;                   /* bytes read and not yet taken as lines */
  size_t inlen, incap;
  int eof;
  char *line;                 /* the line libedit handed over */
  int got_line;
  int hidden;                 /* prompt erased for output */
  int interrupted;            /* Ctrl-C at the prompt */
  uv_async_t async;           /* signals -> loop */
  uv_check_t check;
  int nopen;                  /* handles not yet closed */
  volatile sig_atomic_t sigint, sigterm, unserved;
  struct sigaction old_int, old_term;
  void (*old_report)(weft_runtime *rt, const char *msg, void *ud);
  void *old_report_ud;
  char history[1024];         /* history file, "" for none */
} R;

static const char helper_src[] =
  "-- The REPL's Lua half: compiling entries into the persistent environment,\n"
  "-- printing values, completion candidates and the ':' commands.\n"
  "local C = ...\n"
  "local weft = require \"weft\"\n"
  "local M = {}\n"
  "\n"
  "local keywords = {}\n"
  "for w in (\"and break do else elseif end false for function goto if in local nil not or \"\n"
  "  .. \"repeat return then true until while\"):gmatch(\"%a+\") do\n"
  "  keywords[w] = true\n"
  "end\n"
  "\n"
  "-- {======== the environment: REPL locals live in 'locals', globals in _G\n"
  "\n"
  "local locals, declared = {}, {}\n"
  "local env = setmetatable({}, {\n"
  "  __index = function(_, k)\n"
  "    if declared[k] then return locals[k] end\n"
  "    return _G[k]\n"
  "  end,\n"
  "  __newindex = function(_, k, v)\n"
  "    if declared[k] then locals[k] = v else _G[k] = v end\n"
  "  end,\n"
  "})\n"
  "\n"
  "-- Declares REPL locals; a new one starts as the value the name had, so\n"
  "-- that `local print = print` reads the old binding.\n"
  "local function declare(...)\n"
  "  for i = 1, select(\"#\", ...) do\n"
  "    local k = select(i, ...)\n"
  "    if not declared[k] then\n"
  "      locals[k] = _G[k]\n"
  "      declared[k] = true\n"
  "    end\n"
  "  end\n"
  "end\n"
  "\n"
  "-- Skips a long bracket at i (\"[==[\"); returns the index after it closes.\n"
  "local function skip_long(src, i)\n"
  "  local level = src:match(\"^%[(=*)%[\", i)\n"
  "  local _, e = src:find(\"]\" .. level .. \"]\", i, true)\n"
  "  return e and e + 1 or #src + 1\n"
  "end\n"
  "\n"
  "-- Skips a string, a comment or a number at i, or returns nil.\n"
  "local function skip_other(src, i)\n"
  "  local c = src:sub(i, i)\n"
  "  if c == \"-\" and src:sub(i + 1, i + 1) == \"-\" then\n"
  "    if src:match(\"^%[=*%[\", i + 2) then return skip_long(src, i + 2) end\n"
  "    local e = src:find(\"\\n\", i, true)\n"
  "    return e and e + 1 or #src + 1\n"
  "  elseif c == '\"' or c == \"'\" then\n"
  "    local j = i + 1\n"
  "    while j <= #src do\n"
  "      local d = src:sub(j, j)\n"
  "      if d == \"\\\\\" then j = j + 2\n"
  "      elseif d == c or d == \"\\n\" then break\n"
  "      else j = j + 1 end\n"
  "    end\n"
  "    return j + 1\n"
  "  elseif c == \"[\" and src:match(\"^%[=*%[\", i) then\n"
  "    return skip_long(src, i)\n"
  "  elseif c:match(\"%d\") then\n"
  "    return i + #src:match(\"^[%w_.]+\", i)\n"
  "  end\n"
  "end\n"
  "\n"
  "-- Parses the name list after 'local' at i: returns the names, the index\n"
  "-- after the list, and whether some name is <close>.\n"
  "local function namelist(src, i)\n"
  "  local names, close = {}, false\n"
  "  while true do\n"
  "    local s, name, e = src:match(\"^%s*()([%a_][%w_]*)()\", i)\n"
  "    if not s or keywords[name] then return nil end\n"
  "    names[#names + 1] = name\n"
  "    i = e\n"
  "    local attrib, e2 = src:match(\"^%s*<%s*(%a+)%s*>()\", i)\n"
  "    if attrib then\n"
  "      close = close or attrib == \"close\"\n"
  "      i = e2\n"
  "    end\n"
  "    local comma = src:match(\"^%s*,()\", i)\n"
  "    if not comma then return names, i, close end\n"
  "    i = comma\n"
  "  end\n"
  "end\n"
  "\n"
  "local function quoted_names(names)\n"
  "  local q = {}\n"
  "  for k, n in ipairs(names) do q[k] = (\"%q\"):format(n) end\n"
  "  return table.concat(q, \",\")\n"
  "end\n"
  "\n"
  "-- Rewrites the top-level local declarations of a chunk into assignments to\n"
  "-- REPL locals, keeping line numbers:\n"
  "--   local a <const>, b = e   ->  ;__repl_decl(\"a\",\"b\") a, b = e\n"
  "--   local x                  ->  ;__repl_decl(\"x\") x = nil\n"
  "--   local function f         ->  ;__repl_decl(\"f\") function f\n"
  "-- <close> variables stay real locals, closed when the entry ends.\n"
  "local function rewrite(src)\n"
  "  local out, copied, i, depth = {}, 1, 1, 0\n"
  "  while i <= #src do\n"
  "    local skip = skip_other(src, i)\n"
  "    local word = not skip and src:match(\"^[%a_][%w_]*\", i)\n"
  "    if skip then\n"
  "      i = skip\n"
  "    elseif not word then\n"
  "      i = i + 1\n"
  "    elseif word == \"function\" or word == \"do\" or word == \"if\" or word == \"repeat\" then\n"
  "      depth, i = depth + 1, i + #word\n"
  "    elseif word == \"end\" or word == \"until\" then\n"
  "      depth, i = depth - 1, i + #word\n"
  "    elseif word == \"local\" and depth == 0 then\n"
  "      local after = i + #word\n"
  "      local fname = src:match(\"^%s+function%s+([%a_][%w_]*)\", after)\n"
  "      local names, stop, close = namelist(src, after)\n"
  "      if fname then\n"
  "        out[#out + 1] = src:sub(copied, i - 1) .. (\";__repl_decl(%q)\"):format(fname)\n"
  "        copied = after\n"
  "      elseif names and not close then\n"
  "        local list = src:sub(after, stop - 1):gsub(\"<%s*%a+%s*>\", \"\")\n"
  "        local assign = src:match(\"^%s*=[^=]\", stop) and \"\" or \" = nil\"\n"
  "        out[#out + 1] = src:sub(copied, i - 1) .. (\";__repl_decl(%s)\"):format(quoted_names(names))\n"
  "          .. list .. assign\n"
  "        copied = stop\n"
  "      end\n"
  "      i = after\n"
  "    else\n"
  "      i = i + #word\n"
  "    end\n"
  "  end\n"
  "  out[#out + 1] = src:sub(copied)\n"
  "  return table.concat(out)\n"
  "end\n"
  "M.rewrite = rewrite\n"
  "\n"
  "-- Compiles an entry: an expression first (its values are printed), else\n"
  "-- statements. Returns fn, arg; or nil, message, incomplete.\n"
  "function M.compile(src)\n"
  "  local f, rerr = load(\"return \" .. src, \"=stdin\", \"t\", env)\n"
  "  if f then return f end\n"
  "  local _, err = load(src, \"=stdin\", \"t\", env)\n"
  "  if err then\n"
  "    return nil, err, err:sub(-5) == \"<eof>\" or rerr:sub(-5) == \"<eof>\"\n"
  "  end\n"
  "  f = load(\"local __repl_decl = ...; \" .. rewrite(src), \"=stdin\", \"t\", env)\n"
  "  if f then return f, declare end\n"
  "  return load(src, \"=stdin\", \"t\", env)\n"
  "end\n"
  "\n"
  "-- }======== \n"
  "\n"
  "-- {======== printing values\n"
  "\n"
  "local MAX_ITEMS, MAX_DEPTH, MAX_TOTAL, WIDTH, MAX_STRING = 50, 6, 500, 76, 200\n"
  "\n"
  "local function quote(s, limit)\n"
  "  local extra = \"\"\n"
  "  if limit and #s > limit then\n"
  "    extra, s = (\" ...(%d more bytes)\"):format(#s - limit), s:sub(1, limit)\n"
  "  end\n"
  "  return (\"%q\"):format(s):gsub(\"\\\\\\n\", \"\\\\n\") .. extra\n"
  "end\n"
  "\n"
  "local function has_tostring(v)\n"
  "  local mt = getmetatable(v)\n"
  "  return type(mt) == \"table\" and rawget(mt, \"__tostring\") ~= nil\n"
  "end\n"
  "\n"
  "local function plain(v)\n"
  "  local t = type(v)\n"
  "  if t == \"string\" then return quote(v, MAX_STRING) end\n"
  "  if t == \"function\" then\n"
  "    local info = debug.getinfo(v, \"S\")\n"
  "    if info.what ~= \"C\" then\n"
  "      return (\"%s (%s:%d)\"):format(tostring(v), info.short_src, info.linedefined)\n"
  "    end\n"
  "  end\n"
  "  local ok, s = pcall(tostring, v)\n"
  "  return ok and s or (\"<%s: __tostring failed>\"):format(t)\n"
  "end\n"
  "\n"
  "local function key_text(k)\n"
  "  if type(k) == \"string\" and k:match(\"^[%a_][%w_]*$\") and not keywords[k] then return k end\n"
  "  return \"[\" .. plain(k) .. \"]\"\n"
  "end\n"
  "\n"
  "local type_order = { number = 1, string = 2, boolean = 3 }\n"
  "local function key_less(a, b)\n"
  "  local ta, tb = type_order[type(a)] or 4, type_order[type(b)] or 4\n"
  "  if ta ~= tb then return ta < tb end\n"
  "  if ta <= 2 then return a < b end\n"
  "  return tostring(a) < tostring(b)\n"
  "end\n"
  "\n"
  "local format_value\n"
  "\n"
  "local function table_items(t, state, indent)\n"
  "  local items, n, count = {}, rawlen(t), 0\n"
  "  local keys = {}\n"
  "  for k in next, t do\n"
  "    if not (math.type(k) == \"integer\" and k >= 1 and k <= n) then keys[#keys + 1] = k end\n"
  "  end\n"
  "  table.sort(keys, key_less)\n"
  "  local total = n + #keys\n"
  "  for i = 1, total do\n"
  "    if count >= MAX_ITEMS or state.budget <= 0 then\n"
  "      items[#items + 1] = (\"...(%d more)\"):format(total - count)\n"
  "      break\n"
  "    end\n"
  "    count, state.budget = count + 1, state.budget - 1\n"
  "    if i <= n then\n"
  "      items[#items + 1] = format_value(rawget(t, i), state, indent + 2)\n"
  "    else\n"
  "      local k = keys[i - n]\n"
  "      items[#items + 1] = key_text(k) .. \" = \" .. format_value(rawget(t, k), state, indent + 2)\n"
  "    end\n"
  "  end\n"
  "  return items\n"
  "end\n"
  "\n"
  "local function format_table(t, state, indent)\n"
  "  if state.path[t] then return \"<cycle>\" end\n"
  "  if state.depth >= MAX_DEPTH then return \"{...}\" end\n"
  "  state.path[t], state.depth = true, state.depth + 1\n"
  "  local items = table_items(t, state, indent)\n"
  "  state.path[t], state.depth = nil, state.depth - 1\n"
  "  if #items == 0 then return \"{}\" end\n"
  "  local line = \"{ \" .. table.concat(items, \", \") .. \" }\"\n"
  "  if #line + indent <= WIDTH and not line:find(\"\\n\", 1, true) then return line end\n"
  "  -- too long for one line: short items packed into lines, long ones alone\n"
  "  local pad, lines, cur = (\" \"):rep(indent + 2), {}, nil\n"
  "  for k, item in ipairs(items) do\n"
  "    item = k < #items and item .. \",\" or item\n"
  "    if cur and not item:find(\"\\n\", 1, true) and #cur + 1 + #item <= WIDTH then\n"
  "      cur = cur .. \" \" .. item\n"
  "    else\n"
  "      if cur then lines[#lines + 1] = cur end\n"
  "      cur = pad .. item\n"
  "    end\n"
  "    if item:find(\"\\n\", 1, true) then lines[#lines + 1], cur = cur, nil end\n"
  "  end\n"
  "  lines[#lines + 1] = cur\n"
  "  return \"{\\n\" .. table.concat(lines, \"\\n\") .. \"\\n\" .. (\" \"):rep(indent) .. \"}\"\n"
  "end\n"
  "\n"
  "function format_value(v, state, indent)\n"
  "  if type(v) == \"table\" and not has_tostring(v) then return format_table(v, state, indent) end\n"
  "  return plain(v)\n"
  "end\n"
  "\n"
  "-- One printable line (or block) for a result value.\n"
  "function M.format(v)\n"
  "  if type(v) == \"string\" then return v end\n"
  "  return format_value(v, { path = {}, depth = 0, budget = MAX_TOTAL }, 0)\n"
  "end\n"
  "\n"
  "-- Prints the outcome of an entry's finished task. Returns nothing.\n"
  "function M.report(task)\n"
  "  local r = table.pack(pcall(task.result, task))\n"
  "  if r[1] then\n"
  "    if r.n > 1 then\n"
  "      local parts = {}\n"
  "      for i = 2, r.n do parts[#parts + 1] = M.format(r[i]) end\n"
  "      io.stdout:write(table.concat(parts, \"\\t\"), \"\\n\")\n"
  "    end\n"
  "    io.stdout:flush()\n"
  "    return\n"
  "  end\n"
  "  local err = r[2]\n"
  "  io.stdout:flush()\n"
  "  if type(err) == \"table\" and err.kind == \"Cancelled\" then\n"
  "    io.stderr:write(\"cancelled\\n\")\n"
  "    return\n"
  "  end\n"
  "  local msg = (type(err) == \"string\" or has_tostring(err)) and tostring(err)\n"
  "    or (\"(error object is a %s value: %s)\"):format(type(err), M.format(err))\n"
  "  local tb = C.traceback(task)\n"
  "  io.stderr:write(msg, \"\\n\", tb and tb .. \"\\n\" or \"\")\n"
  "end\n"
  "\n"
  "-- }========\n"
  "\n"
  "-- {======== completion\n"
  "\n"
  "local function each_key(t, fn)\n"
  "  if type(t) == \"table\" then\n"
  "    for k in next, t do\n"
  "      if type(k) == \"string\" then fn(k) end\n"
  "    end\n"
  "  end\n"
  "end\n"
  "\n"
  "-- Keys reachable by indexing v: its own, its metatable's __index chain,\n"
  "-- and (for C __index functions, as task methods) tables in their upvalues.\n"
  "local function fields(v, fn)\n"
  "  for _ = 1, 4 do\n"
  "    each_key(v, fn)\n"
  "    local mt = getmetatable(v)\n"
  "    local index = type(mt) == \"table\" and rawget(mt, \"__index\")\n"
  "    if type(index) == \"function\" then\n"
  "      for i = 1, 8 do\n"
  "        local name, up = debug.getupvalue(index, i)\n"
  "        if not name then break end\n"
  "        if type(up) == \"table\" and up ~= _G then each_key(up, fn) end\n"
  "      end\n"
  "      return\n"
  "    end\n"
  "    if type(index) ~= \"table\" then return end\n"
  "    v = index\n"
  "  end\n"
  "end\n"
  "\n"
  "-- Candidates completing 'text' (a name or a dotted path, \"weft.sp\").\n"
  "function M.complete(text)\n"
  "  local found, list = {}, {}\n"
  "  local prefix, sep, part = text:match(\"^(.-)([.:])([%w_]*)$\")\n"
  "  local function add(k)\n"
  "    if k:sub(1, #(part or text)) == (part or text) and k:match(\"^[%a_][%w_]*$\") then\n"
  "      found[k] = true\n"
  "    end\n"
  "  end\n"
  "  if prefix then\n"
  "    if not prefix:match(\"^[%a_][%w_.]*$\") then return list end\n"
  "    local obj = env\n"
  "    for name in prefix:gmatch(\"[^.]+\") do\n"
  "      local ok, v = pcall(function() return obj[name] end)\n"
  "      if not ok or v == nil then return list end\n"
  "      obj = v\n"
  "    end\n"
  "    fields(obj, add)\n"
  "    for k in pairs(found) do\n"
  "      local ok, v = pcall(function() return obj[k] end)\n"
  "      if sep == \".\" or (ok and type(v) == \"function\") then list[#list + 1] = prefix .. sep .. k end\n"
  "    end\n"
  "  else\n"
  "    each_key(locals, add)\n"
  "    each_key(_G, add)\n"
  "    each_key(keywords, add)\n"
  "    for k in pairs(found) do list[#list + 1] = k end\n"
  "  end\n"
  "  table.sort(list)\n"
  "  return list\n"
  "end\n"
  "\n"
  "-- }========\n"
  "\n"
  "-- {======== commands\n"
  "\n"
  "local function age_text(s)\n"
  "  if not s then return \"?\" end\n"
  "  if s < 60 then return (\"%.1fs\"):format(s) end\n"
  "  if s < 3600 then return (\"%dm%02ds\"):format(s // 60, math.floor(s % 60)) end\n"
  "  return (\"%dh%02dm\"):format(s // 3600, math.floor(s % 3600) // 60)\n"
  "end\n"
  "\n"
  "local function cmd_tasks()\n"
  "  local live = weft.tasks()\n"
  "  if #live == 0 then print(\"no live tasks\") return end\n"
  "  local now = weft.now()\n"
  "  local rows = { { \"id\", \"name\", \"status\", \"age\", \"waits on\" } }\n"
  "  for _, r in ipairs(live) do\n"
  "    local started = C.started(r.task)\n"
  "    rows[#rows + 1] = { tostring(r.task.id), r.name, r.status,\n"
  "      age_text(started and now - started), r.on or \"\" }\n"
  "  end\n"
  "  local width = {}\n"
  "  for _, row in ipairs(rows) do\n"
  "    for c = 1, 4 do width[c] = math.max(width[c] or 0, #row[c]) end\n"
  "  end\n"
  "  for _, row in ipairs(rows) do\n"
  "    print((\"%\" .. width[1] .. \"s  %-\" .. width[2] .. \"s  %-\" .. width[3] .. \"s  %\"\n"
  "      .. width[4] .. \"s  %s\"):format(table.unpack(row)))\n"
  "  end\n"
  "end\n"
  "\n"
  "local function task_label(t)\n"
  "  return (\"%d %q\"):format(t.id, t.name)\n"
  "end\n"
  "\n"
  "-- Groups the waiting tasks by what they wait on: a task, a primitive, a\n"
  "-- sleep. Each line is \"what <- waiter, waiter\".\n"
  "local function cmd_waits()\n"
  "  local groups, order = {}, {}\n"
  "  for _, r in ipairs(weft.tasks()) do\n"
  "    if r.on then\n"
  "      local obj = C.awaited(r.task)\n"
  "      local key = obj or r.on:gsub(\" %(.*%)$\", \"\")\n"
  "      if not groups[key] then\n"
  "        local what = obj and r.on or key\n"
  "        if getmetatable(obj) == getmetatable(r.task) then\n"
  "          what = \"task \" .. task_label(obj) .. \" (\" .. obj:status() .. \")\"\n"
  "        end\n"
  "        groups[key] = { what = what, waiters = {} }\n"
  "        order[#order + 1] = key\n"
  "      end\n"
  "      local w = groups[key].waiters\n"
  "      w[#w + 1] = task_label(r.task)\n"
  "    end\n"
  "  end\n"
  "  if #order == 0 then print(\"no task is waiting\") return end\n"
  "  for _, key in ipairs(order) do\n"
  "    local g = groups[key]\n"
  "    print((\"%s <- %s\"):format(g.what, table.concat(g.waiters, \", \")))\n"
  "  end\n"
  "end\n"
  "\n"
  "local function cmd_cancel(arg)\n"
  "  local id = tonumber(arg)\n"
  "  if not id then print(\"usage: :cancel ID\") return end\n"
  "  for _, r in ipairs(weft.tasks()) do\n"
  "    if r.task.id == id then\n"
  "      r.task:cancel()\n"
  "      print((\"cancelling task %s\"):format(task_label(r.task)))\n"
  "      return\n"
  "    end\n"
  "  end\n"
  "  print((\"no live task with id %d\"):format(id))\n"
  "end\n"
  "\n"
  "local help = [[\n"
  "Each entry runs as a task: it may await (weft.sleep(1), t:await()).\n"
  "An expression prints its values; `local x = 1` stays visible later.\n"
  "Tasks spawned with weft.spawn keep running between prompts.\n"
  "  :tasks        live tasks: id, name, status, age, what each waits on\n"
  "  :waits        who waits on whom\n"
  "  :cancel ID    cancel the task with that id\n"
  "  :help         this text\n"
  "  :quit         leave (as Ctrl-D): cancels the tasks still running\n"
  "Ctrl-C cancels the running entry (or clears the line); Ctrl-D leaves.\n"
  "Tab completes globals, REPL locals and fields after '.' and ':'.]]\n"
  "\n"
  "-- Runs a ':' command line. Returns true to quit.\n"
  "function M.command(line)\n"
  "  local name, arg = line:match(\"^:(%S*)%s*(.-)%s*$\")\n"
  "  if name == \"tasks\" then cmd_tasks()\n"
  "  elseif name == \"waits\" then cmd_waits()\n"
  "  elseif name == \"cancel\" then cmd_cancel(arg)\n"
  "  elseif name == \"help\" or name == \"h\" or name == \"?\" then print(help)\n"
  "  elseif name == \"quit\" or name == \"q\" then return true\n"
  "  else print((\"unknown command :%s (try :help)\"):format(name)) end\n"
  "  io.stdout:flush()\n"
  "end\n"
  "\n"
  "-- }========\n"
  "\n"
  "-- {======== output of tasks while the prompt shows\n"
  "\n"
  "local orig_print, orig_write = print, io.write\n"
  "\n"
  "local function repl_print(...)\n"
  "  C.out_begin()\n"
  "  orig_print(...)\n"
  "  C.out_end(false)\n"
  "end\n"
  "\n"
  "local function repl_write(...)\n"
  "  C.out_begin()\n"
  "  local ok, r = pcall(orig_write, ...)\n"
  "  local last = select(select(\"#\", ...), ...)\n"
  "  C.out_end(type(last) ~= \"string\" or last:sub(-1) ~= \"\\n\")\n"
  "  if not ok then error(r, 2) end\n"
  "  return r\n"
  "end\n"
  "\n"
  "function M.wrap_output(on)\n"
  "  if on then\n"
  "    print, io.write = repl_print, repl_write\n"
  "  else\n"
  "    if print == repl_print then print = orig_print end\n"
  "    if io.write == repl_write then io.write = orig_write end\n"
  "  end\n"
  "end\n"
  "\n"
  "-- }========\n"
  "\n"
  "return M\n";

/* {======== calling the Lua half */

static int msghandler(lua_State *L) {
  luaL_traceback(L, L, luaL_tolstring(L, 1, NULL), 1);
  return 1;
}

/* Calls helper[name] with the nargs values on top; leaves nres results
   (nil on error, after printing it). Returns 0 on success. */
static int call_helper(const char *name, int nargs, int nres) {
  lua_State *L = R.L;
  int base = lua_gettop(L) - nargs, status, i;
  lua_pushcfunction(L, msghandler);
  lua_rawgeti(L, LUA_REGISTRYINDEX, R.helper_ref);
  lua_getfield(L, -1, name);
  lua_remove(L, -2);
  lua_rotate(L, base + 1, 2);                   /* msgh, fn, args */
  status = lua_pcall(L, nargs, nres, base + 1);
  lua_remove(L, base + 1);
  if (status != LUA_OK) {
    fflush(stdout);
    fprintf(stderr, "weft: repl: %s\n", lua_tostring(L, -1));
    lua_pop(L, 1);
    for (i = 0; i < nres; i++)
      lua_pushnil(L);
  }
  return status;
}

/* }======== */

/* {======== output while the prompt shows */

static void out_begin(void) {
  if (R.input == IN_TTY && R.state == ST_PROMPTING && !R.hidden) {
    fputs("\r\033[K", stdout);
    fflush(stdout);
    R.hidden = 1;
  }
}

static void out_end(int newline) {
  fflush(stdout);
  if (R.hidden) {
    if (newline)
      fputs("\n", stdout);
    fflush(stdout);
    rl_forced_update_display();
    R.hidden = 0;
  }
}

static int lua_out_begin(lua_State *L) {
  (void)L;
  out_begin();
  return 0;
}

static int lua_out_end(lua_State *L) {
  out_end(lua_toboolean(L, 1));
  return 0;
}

/* rt->report while the REPL runs: error reports go above the prompt. */
static void report_above(weft_runtime *rt, const char *msg, void *ud) {
  (void)rt;
  (void)ud;
  out_begin();
  fflush(stdout);
  fputs(msg, stderr);
  fflush(stderr);
  out_end(0);
}

/* }======== */

/* {======== task introspection for the Lua half */

/* traceback(task): where a failed task raised its error, or nil. */
static int lua_traceback(lua_State *L) {
  weft_task *t = weft__checktask(L, 1);
  if (t->state != WEFT_T_FINISHED || t->done.state != WEFT_FAILED ||
      lua_getiuservalue(L, 1, WEFT_TASK_UV_TRACEBACK) != LUA_TSTRING)
    lua_pushnil(L);
  return 1;
}

/* started(task): the clock when it was spawned (or first seen), or nil. */
static int lua_started(lua_State *L) {
  weft_task *t = weft__checktask(L, 1);
  if (t->started > 0) {
    lua_pushnumber(L, t->started);
    return 1;
  }
  lua_rawgeti(L, LUA_REGISTRYINDEX, R.seen_ref);
  lua_pushvalue(L, 1);
  lua_rawget(L, -2);
  return 1;
}

/* awaited(task): the object a suspended task waits on, or nil. */
static int lua_awaited(lua_State *L) {
  weft__push_awaited(L, weft__checktask(L, 1));
  return 1;
}

/* Records the clock for tasks spawned since the last call: newest tasks
   are at the tail of rt->live, so this costs O(new tasks). */
static void record_new_tasks(void) {
  weft_runtime *rt = R.rt;
  weft_queue *q;
  uint64_t newest;
  double now;
  if (weft_queue_empty(&rt->live))
    return;
  newest = weft_queue_data(rt->live.prev, weft_task, live_node)->id;
  if (newest <= R.seen_id)
    return;
  now = weft__now(rt);
  lua_rawgeti(R.L, LUA_REGISTRYINDEX, R.seen_ref);
  for (q = rt->live.prev; q != &rt->live; q = q->prev) {
    weft_task *t = weft_queue_data(q, weft_task, live_node);
    if (t->id <= R.seen_id)
      break;
    weft__push_task(R.L, t);
    lua_pushnumber(R.L, now);
    lua_rawset(R.L, -3);
  }
  lua_pop(R.L, 1);
  R.seen_id = newest;
}

/* After each loop turn: note new tasks; at the prompt, report failures of
   background tasks nobody awaited. */
static void on_check(uv_check_t *h) {
  (void)h;
  record_new_tasks();
  if (R.state == ST_PROMPTING || R.state == ST_IDLE)
    weft__report_unobserved(R.L, R.rt);
}

/* }======== */

/* {======== signals */

/* Runs inside a task that has not awaited since Ctrl-C: cancel it there. */
static void interrupt_hook(lua_State *L, lua_Debug *ar) {
  (void)ar;
  weft__cancel_from_hook(L, R.rt);
}

static void on_signal(int sig) {
  weft_task *t = R.rt->current;
  if (R.state == ST_EXITING || (sig == SIGTERM && R.sigterm)) {
    weft__process_kill_all_now();
    _exit(sig == SIGTERM ? 143 : 130);
  }
  if (sig == SIGTERM) {
    R.sigterm = 1;
  } else {
    R.sigint = 1;
    R.unserved++;
    /* the entry never awaits, or another task hogs the loop (second ^C) */
    if (t != NULL && t->co != NULL && (t == R.entry || R.unserved >= 2))
      lua_sethook(t->co, interrupt_hook, LUA_MASKCALL | LUA_MASKRET | LUA_MASKCOUNT, 1);
  }
  uv_async_send(&R.async);
}

static void cancel_all(void) {
  weft_queue *q;
  for (q = R.rt->live.next; q != &R.rt->live; q = q->next)
    weft__task_cancel(R.L, weft_queue_data(q, weft_task, live_node), 0);
}

/* On the loop, after a signal. */
static void on_async(uv_async_t *h) {
  (void)h;
  R.unserved = 0;
  if (R.sigterm) {
    R.quit = 143;
    cancel_all();
  }
  if (!R.sigint)
    return;
  R.sigint = 0;
  if (R.entry != NULL) {
    if (R.entry->co != NULL)
      lua_sethook(R.entry->co, NULL, 0, 0);
    weft__task_cancel(R.L, R.entry, 0);
    if (R.input == IN_TTY)
      fputs("\n", stdout);   /* after the terminal's echo of ^C */
  } else if (R.input == IN_TTY) {
    R.interrupted = 1;
  } else if (R.state != ST_EXITING) {
    R.quit = 130;   /* driven by a pipe: Ctrl-C ends the session */
  }
}

static void install_signals(void) {
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_signal;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGINT, &sa, &R.old_int);
  sigaction(SIGTERM, &sa, &R.old_term);
}

static void restore_signals(void) {
  sigaction(SIGINT, &R.old_int, NULL);
  sigaction(SIGTERM, &R.old_term, NULL);
}

/* }======== */

/* {======== reading lines from a pipe or a file */

static void in_append(const char *buf, size_t n) {
  if (R.inlen + n > R.incap) {
    size_t cap = R.incap ? R.incap : 4096;
    char *p;
    while (cap < R.inlen + n)
      cap *= 2;
    if ((p = (char *)realloc(R.in, cap)) == NULL) {
      R.eof = 1;
      return;
    }
    R.in = p;
    R.incap = cap;
  }
  memcpy(R.in + R.inlen, buf, n);
  R.inlen += n;
}

/* Takes the next whole line (the rest at end of input), or NULL. */
static char *take_line(void) {
  char *nl = R.inlen ? (char *)memchr(R.in, '\n', R.inlen) : NULL;
  size_t n, len;
  char *line;
  if (nl == NULL && (!R.eof || R.inlen == 0))
    return NULL;
  n = nl ? (size_t)(nl - R.in) + 1 : R.inlen;
  len = nl ? n - 1 : n;
  if (len > 0 && R.in[len - 1] == '\r')
    len--;
  if ((line = (char *)malloc(len + 1)) == NULL)
    return NULL;
  memcpy(line, R.in, len);
  line[len] = '\0';
  memmove(R.in, R.in + n, R.inlen - n);
  R.inlen -= n;
  return line;
}

static void on_alloc(uv_handle_t *h, size_t size, uv_buf_t *buf) {
  (void)h;
  (void)size;
  buf->base = R.fsbuf;
  buf->len = sizeof R.fsbuf;
}

static void on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf) {
  if (n > 0) {
    in_append(buf->base, (size_t)n);
  } else if (n < 0) {
    R.eof = 1;
    uv_read_stop(s);
  }
}

static void on_fs_read(uv_fs_t *req) {
  ssize_t n = req->result;
  uv_fs_req_cleanup(req);
  R.fs_pending = 0;
  if (n > 0)
    in_append(R.fsbuf, (size_t)n);
  else
    R.eof = 1;
}

static void input_start(void) {
  uv_buf_t b;
  if (R.input == IN_PIPE) {
    if (!uv_is_active((uv_handle_t *)&R.pipe) &&
        uv_read_start((uv_stream_t *)&R.pipe, on_alloc, on_read) != 0)
      R.eof = 1;
  } else if (!R.fs_pending) {
    b = uv_buf_init(R.fsbuf, sizeof R.fsbuf);
    R.fs_pending = 1;
    if (uv_fs_read(R.rt->loop, &R.fsreq, 0, &b, 1, -1, on_fs_read) != 0) {
      R.fs_pending = 0;
      R.eof = 1;
    }
  }
}

/* One loop turn, with the runtime marked as driven (weft.run from a luv
   callback must not nest another loop). */
static void run_once(void) {
  R.rt->driving++;
  uv_run(R.rt->loop, UV_RUN_ONCE);
  R.rt->driving--;
}

static int stream_next_line(char **line) {
  while ((*line = take_line()) == NULL && !R.eof && R.quit < 0) {
    input_start();
    run_once();
  }
  if (R.input == IN_PIPE)
    uv_read_stop((uv_stream_t *)&R.pipe);
  if (R.quit >= 0) {
    free(*line);
    *line = NULL;
    return GOT_QUIT;
  }
  return *line ? GOT_LINE : GOT_EOF;
}

/* }======== */

/* {======== reading lines from the terminal */

static void on_rl_line(char *line) {
  R.line = line;
  R.got_line = 1;
}

static void on_poll(uv_poll_t *h, int status, int events) {
  (void)h;
  (void)events;
  if (status < 0) {
    R.line = NULL;
    R.got_line = 1;
    return;
  }
  rl_callback_read_char();
}

static int tty_next_line(const char *prompt, char **line) {
  int got = GOT_LINE;
  R.line = NULL;
  R.got_line = 0;
  R.interrupted = 0;
  fflush(stdout);
  rl_callback_handler_install(prompt, on_rl_line);
  R.state = ST_PROMPTING;
  uv_poll_start(&R.poll, UV_READABLE, on_poll);
  while (!R.got_line && R.quit < 0 && got == GOT_LINE) {
    run_once();
    if (R.interrupted)
      got = GOT_INTERRUPT;
  }
  uv_poll_stop(&R.poll);
  R.state = ST_IDLE;
  rl_callback_handler_remove();
  if (got == GOT_INTERRUPT || R.quit >= 0) {
    fputs(got == GOT_INTERRUPT ? "^C\n" : "\n", stdout);
    free(R.line);
    *line = NULL;
    return got == GOT_INTERRUPT ? got : GOT_QUIT;
  }
  *line = R.line;
  if (R.line == NULL)
    fputs("\n", stdout);
  return R.line ? GOT_LINE : GOT_EOF;
}

/* Completion: the Lua half lists candidates for the word before the
   cursor ('.' and ':' do not break words, so "weft.sp" is one). */
static int comp_ref = LUA_NOREF, comp_next;

static char *complete_entry(const char *text, int state) {
  lua_State *L = R.L;
  char *s = NULL;
  if (state == 0) {
    luaL_unref(L, LUA_REGISTRYINDEX, comp_ref);
    lua_pushstring(L, text);
    call_helper("complete", 1, 1);
    comp_ref = luaL_ref(L, LUA_REGISTRYINDEX);
    comp_next = 0;
  }
  lua_rawgeti(L, LUA_REGISTRYINDEX, comp_ref);
  if (lua_istable(L, -1) && lua_rawgeti(L, -1, ++comp_next) == LUA_TSTRING)
    s = strdup(lua_tostring(L, -1));
  lua_settop(L, lua_gettop(L) - (lua_istable(L, -1) ? 1 : 2));
  return s;
}

static char **complete(const char *text, int start, int end) {
  (void)start;
  (void)end;
  rl_attempted_completion_over = 1;
  return rl_completion_matches(text, complete_entry);
}

static char word_breaks[] = " \t\n\"\\'`@$><=;|&{(+-*/%^#,[]~";

/* History file: $XDG_STATE_HOME/weft/history or ~/.local/state/weft/history;
   directories are made as needed. */
static void history_path(void) {
  const char *state = getenv("XDG_STATE_HOME"), *home = getenv("HOME");
  char dir[sizeof R.history - 16];
  size_t i;
  R.history[0] = '\0';
  if (state != NULL && state[0] == '/')
    snprintf(dir, sizeof dir, "%s/weft", state);
  else if (home != NULL && home[0] != '\0')
    snprintf(dir, sizeof dir, "%s/.local/state/weft", home);
  else
    return;
  for (i = 1; dir[i] != '\0'; i++) {
    if (dir[i] == '/') {
      dir[i] = '\0';
      mkdir(dir, 0700);
      dir[i] = '/';
    }
  }
  if (mkdir(dir, 0700) != 0 && errno != EEXIST)
    return;
  snprintf(R.history, sizeof R.history, "%s/history", dir);
}

static void tty_init(void) {
  rl_readline_name = "weft";
  rl_catch_signals = 0;
  rl_completer_word_break_characters = word_breaks;
  rl_attempted_completion_function = complete;
  rl_completion_append_character = '\0';
  rl_initialize();
  using_history();
  stifle_history(1000);
  history_path();
  if (R.history[0] != '\0')
    read_history(R.history);
}

static void history_add(const char *entry) {
  if (R.input != IN_TTY || entry[0] == '\0')
    return;
  add_history(entry);
  if (R.history[0] != '\0')
    write_history(R.history);
}

/* }======== */

/* {======== entries */

static int next_line(const char *prompt, char **line) {
  if (R.input == IN_TTY)
    return tty_next_line(prompt, line);
  return stream_next_line(line);
}

/* Runs the compiled entry (function and argument on top) as a task named
   "main" and prints its outcome once it has finished. */
static void run_entry(void) {
  lua_State *L = R.L;
  weft_task *t = weft__spawn(L, R.rt, 1);
  lua_pushliteral(L, "main");
  lua_setiuservalue(L, -2, WEFT_TASK_UV_NAME);
  R.entry = t;
  R.state = ST_RUNNING;
  weft__drive(L, R.rt, t);
  R.state = ST_IDLE;
  R.entry = NULL;
  call_helper("report", 1, 0);
}

/* Compiles the entry in 'buf'. Returns 1 when it needs more lines. */
static int handle_entry(const char *buf, int at_eof) {
  lua_State *L = R.L;
  lua_pushstring(L, buf);
  call_helper("compile", 1, 3);
  if (lua_isfunction(L, -3)) {
    lua_pop(L, 1);
    history_add(buf);
    run_entry();
    return 0;
  }
  if (lua_toboolean(L, -1) && !at_eof) {
    lua_pop(L, 3);
    return 1;
  }
  history_add(buf);
  if (lua_isstring(L, -2)) {
    fflush(stdout);
    fprintf(stderr, "%s\n", lua_tostring(L, -2));
  }
  lua_pop(L, 3);
  return 0;
}

static int blank(const char *s) {
  return s[strspn(s, " \t\r\n")] == '\0';
}

/* Runs a ':' command line (taking it). Returns 1 to leave. */
static int run_command(char *line) {
  int leave;
  history_add(line);
  lua_pushstring(R.L, line);
  free(line);
  call_helper("command", 1, 1);
  leave = lua_toboolean(R.L, -1);
  lua_pop(R.L, 1);
  return leave;
}

/* Appends a line (taking it) to the entry in *buf. Returns 0, or -1. */
static int append_line(char **buf, size_t *len, char *line) {
  size_t n = strlen(line);
  char *p = (char *)realloc(*buf, *len + n + 2);
  if (p == NULL) {
    free(line);
    return -1;
  }
  if (*len > 0)
    p[(*len)++] = '\n';
  memcpy(p + *len, line, n + 1);
  *len += n;
  *buf = p;
  free(line);
  return 0;
}

static void repl_loop(void) {
  char *buf = NULL, *line;
  size_t len = 0;
  while (R.quit < 0) {
    int got = next_line(len ? ">> " : "> ", &line);
    if (got == GOT_QUIT)
      break;
    if (got == GOT_EOF) {
      if (len > 0)
        handle_entry(buf, 1);
      break;
    }
    if (got == GOT_INTERRUPT) {
      len = 0;
    } else if (len == 0 && line[0] == ':') {
      if (run_command(line))
        R.quit = 0;
    } else if (len == 0 && blank(line)) {
      free(line);
    } else if (append_line(&buf, &len, line) != 0) {
      break;
    } else if (!handle_entry(buf, 0)) {
      len = 0;
    }
  }
  free(buf);
}

/* }======== */

/* {======== setup and exit */

static void on_closed(uv_handle_t *h) {
  (void)h;
  R.nopen--;
}

static void open_input(void) {
  uv_loop_t *loop = R.rt->loop;
  uv_handle_type kind = uv_guess_handle(0);
  if (kind == UV_TTY && isatty(1) && uv_poll_init(loop, &R.poll, 0) == 0) {
    R.input = IN_TTY;
    R.nopen++;
    tty_init();
  } else if ((kind == UV_NAMED_PIPE || kind == UV_TCP) && uv_pipe_init(loop, &R.pipe, 0) == 0) {
    R.nopen++;
    R.input = IN_PIPE;
    if (uv_pipe_open(&R.pipe, 0) != 0)
      R.eof = 1;
  } else {
    R.input = IN_FILE;
  }
}

static const luaL_Reg helper_funcs[] = {
  {"traceback", lua_traceback},
  {"started", lua_started},
  {"awaited", lua_awaited},
  {"out_begin", lua_out_begin},
  {"out_end", lua_out_end},
  {NULL, NULL}
};

/* Loads the Lua half. Returns 0, or -1 after printing why not. */
static int load_helper(lua_State *L) {
  if (luaL_loadbuffer(L, helper_src, sizeof helper_src - 1, "=weft.repl") != LUA_OK) {
    fprintf(stderr, "weft: repl: %s\n", lua_tostring(L, -1));
    lua_pop(L, 1);
    return -1;
  }
  luaL_newlib(L, helper_funcs);
  if (lua_pcall(L, 1, 1, 0) != LUA_OK) {
    fprintf(stderr, "weft: repl: %s\n", lua_tostring(L, -1));
    lua_pop(L, 1);
    return -1;
  }
  R.helper_ref = luaL_ref(L, LUA_REGISTRYINDEX);
  lua_newtable(L);
  lua_createtable(L, 0, 1);
  lua_pushliteral(L, "k");
  lua_setfield(L, -2, "__mode");
  lua_setmetatable(L, -2);
  R.seen_ref = luaL_ref(L, LUA_REGISTRYINDEX);
  return 0;
}

static void setup(void) {
  uv_loop_t *loop = R.rt->loop;
  open_input();
  uv_async_init(loop, &R.async, on_async);
  uv_unref((uv_handle_t *)&R.async);
  uv_check_init(loop, &R.check);
  uv_check_start(&R.check, on_check);
  uv_unref((uv_handle_t *)&R.check);
  R.nopen += 2;
  install_signals();
  R.old_report = R.rt->report;
  R.old_report_ud = R.rt->report_ud;
  R.rt->report = report_above;
  lua_pushboolean(R.L, 1);
  call_helper("wrap_output", 1, 0);
}

/* Cancels the tasks still running and waits for their cleanup. */
static void stop_tasks(void) {
  weft_runtime *rt = R.rt;
  if (rt->nlive == 0) {
    weft__report_unobserved(R.L, rt);
    return;
  }
  fflush(stdout);
  fprintf(stderr, "weft: %d task%s still running; cancelling %s\n", rt->nlive,
          rt->nlive == 1 ? "" : "s", rt->nlive == 1 ? "it" : "them");
  R.state = ST_EXITING;
  cancel_all();
  while (rt->nlive > 0) {
    if (!uv_loop_alive(rt->loop) && weft_queue_empty(&rt->ready)) {
      fprintf(stderr, "weft: %d task%s cannot finish\n", rt->nlive, rt->nlive == 1 ? "" : "s");
      break;
    }
    run_once();
  }
  weft__report_unobserved(R.L, rt);
}

static void teardown(void) {
  lua_State *L = R.L;
  R.state = ST_EXITING;
  if (R.fs_pending)
    uv_cancel((uv_req_t *)&R.fsreq);
  while (R.fs_pending)
    uv_run(R.rt->loop, UV_RUN_ONCE);
  lua_pushboolean(L, 0);
  call_helper("wrap_output", 1, 0);
  R.rt->report = R.old_report;
  R.rt->report_ud = R.old_report_ud;
  if (R.input == IN_TTY)
    uv_close((uv_handle_t *)&R.poll, on_closed);
  else if (R.input == IN_PIPE)
    uv_close((uv_handle_t *)&R.pipe, on_closed);
  uv_close((uv_handle_t *)&R.async, on_closed);
  uv_close((uv_handle_t *)&R.check, on_closed);
  while (R.nopen > 0)
    uv_run(R.rt->loop, UV_RUN_NOWAIT);
  restore_signals();
  luaL_unref(L, LUA_REGISTRYINDEX, comp_ref);
  luaL_unref(L, LUA_REGISTRYINDEX, R.helper_ref);
  luaL_unref(L, LUA_REGISTRYINDEX, R.seen_ref);
  free(R.in);
  fflush(stdout);
}

int weft__repl(lua_State *L, weft_runtime *rt) {
  int status;
  memset(&R, 0, sizeof R);
  R.L = L;
  R.rt = rt;
  R.quit = -1;
  if (load_helper(L) != 0)
    return 1;
  setup();
  repl_loop();
  stop_tasks();
  status = R.quit > 0 ? R.quit : 0;
  teardown();
  return status;
}

/* }======== */
