--- Command-line options from one table: the parser and the help text both
-- read it, so an option cannot be parsed without being documented or the
-- other way round. Used by `weft run` (weft.cli).
--
-- Each entry: `short` ("-j") and/or `long` ("--jobs"); `key`, the field of
-- the result it sets; `arg`, the value's name in the help (an option with
-- `arg` takes a value: `-j 8`, `-j8`, `--jobs 8` or `--jobs=8`; without,
-- it is a flag set to true); `convert(value, opt)` to check and convert the
-- value (raise a usage error on a bad one); `help`, its text; `hidden`
-- for an option that is not the user's (left out of the help).
-- @module weft.options
local M = {}

local function index(spec)
  local by = {}
  for _, o in ipairs(spec) do
    if o.short then by[o.short] = o end
    if o.long then by[o.long] = o end
  end
  return by
end

--- Parses `args` by `spec`. Words that are not options go to
-- `positional(result, word)` (default: appended to result[1]).
-- @tparam {string,...} args
-- @tab spec the option table
-- @func usage_error `usage_error(fmt, ...)` raises a usage error
-- @func[opt] positional
-- @treturn table the options by key, positional words in [1]
function M.parse(args, spec, usage_error, positional)
  local by, o = index(spec), { {} }
  positional = positional or function(res, w) table.insert(res[1], w) end
  local i = 1
  local function take(opt, attached)
    if attached then return attached end
    i = i + 1
    if args[i] == nil then usage_error("option %s needs a value", opt) end
    return args[i]
  end
  while i <= #args do
    local a = args[i]
    local name, attached = a:match("^(%-%-[^=]+)=(.*)$")
    if not name then
      name = a
      local short, rest = a:match("^(%-%w)(.+)$")   -- -j8
      if short and by[short] and by[short].arg then name, attached = short, rest end
    end
    local opt = by[name]
    if a == "--" then
      for j = i + 1, #args do positional(o, args[j]) end
      break
    elseif opt then
      if opt.arg then
        local v = take(name, attached)
        o[opt.key] = opt.convert and opt.convert(v, name) or v
      elseif attached then
        usage_error("option %s takes no value", name)
      else
        o[opt.key] = true
      end
    elseif a:sub(1, 1) == "-" and a ~= "-" then
      usage_error("unknown option %s", a)
    else
      positional(o, a)
    end
    i = i + 1
  end
  return o
end

-- Wraps `text` to `width` columns.
local function wrap(text, width)
  local lines, line = {}, ""
  for word in text:gmatch("%S+") do
    if line ~= "" and #line + 1 + #word > width then
      lines[#lines + 1] = line
      line = word
    else
      line = line == "" and word or line .. " " .. word
    end
  end
  lines[#lines + 1] = line
  return lines
end

--- The options part of the help text: one entry per option, its help
-- wrapped beside it.
-- @tab spec
-- @int[opt] column where the help text starts (default 23)
function M.help(spec, column)
  column = column or 23
  local out = {}
  for _, o in ipairs(spec) do
    if o.hidden then goto next end
    local names = (o.short and o.long) and (o.short .. ", " .. o.long) or (o.short or o.long)
    local head = "  " .. names .. (o.arg and (" " .. o.arg) or "")
    local text = wrap(o.help or "", 78 - column)
    local own_line = #head + 2 > column   -- at least two spaces before the help
    if own_line then
      out[#out + 1] = head
    else
      text[1] = head .. (" "):rep(column - #head) .. text[1]
    end
    for i, l in ipairs(text) do
      if i > 1 or own_line then l = (" "):rep(column) .. l end
      out[#out + 1] = l
    end
    ::next::
  end
  return table.concat(out, "\n") .. "\n"
end

return M
