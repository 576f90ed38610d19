--- A self-contained HTML report of a pipeline run (`weft run --report`):
-- a Gantt chart in inline SVG, one row per task that ran, one bar per
-- attempt (a failed attempt that was retried is its own, hatched bar), the
-- critical path outlined, failures in red with a cross; each bar's tooltip
-- holds the task's status, time and last output lines. Then the table of
-- every task, whose rows expand to the output tail, the error and the
-- rerun command. Nothing is loaded from outside.
--
-- The page's small script makes a click on a bar open that task's row, and
-- checks its own layout: if a label is wider than the room left for it (a
-- font wider than the estimate), it widens the chart. It records that it
-- ran in `data-js="ok"` on <html> (`data-js-error` on an error) and the
-- number of labels still clipped in `data-clipped`, which the spec reads
-- from Chromium's `--dump-dom`.
-- @module weft.report
local summary = require "weft.summary"

local M = {}

local function esc(s)
  return (tostring(s):gsub("[&<>\"']", { ["&"] = "&amp;", ["<"] = "&lt;", [">"] = "&gt;",
    ['"'] = "&quot;", ["'"] = "&#39;" }))
end

-- Text as it may appear in HTML: control characters (escape sequences from
-- a tool's output) dropped, bytes that are not UTF-8 shown as U+FFFD.
local function clean_text(s)
  s = tostring(s):gsub("\27%[[\48-\63]*[\32-\47]*[\64-\126]", ""):gsub("[%z\1-\8\11-\31\127]", "")
  local out, i = {}, 1
  while i <= #s do
    local n, bad = utf8.len(s, i)
    if n then
      out[#out + 1] = s:sub(i)
      break
    end
    out[#out + 1] = s:sub(i, bad - 1) .. "\u{FFFD}"
    i = bad + 1
  end
  return table.concat(out)
end

local FILL = { done = "#4c9f70", failed = "#c0392b", interrupted = "#e67e22",
  skipped = "#aaaaaa", ["up to date"] = "#9ecae1" }
local CHAR_W, ROW_H, TOP = 6.6, 22, 8   -- CHAR_W: an estimate; the script corrects it

local function tail_text(rec, n)
  return clean_text(table.concat(require("weft.pipeline").tail(rec, n), "\n"))
end

-- The attempts of a task as bars: its spans, or one bar for its whole run.
local function bars_of(rec)
  if rec.spans and #rec.spans > 0 then return rec.spans end
  return { { start = rec.start, finish = rec.finish, ok = rec.status == "done" } }
end

local function tooltip(rec, i, nbars, span)
  local d = (span.finish or span.start) - span.start
  local head = ("%s: %s, %s"):format(rec.name,
    nbars > 1 and ("attempt %d of %d %s"):format(i, nbars, span.ok and "ok" or "failed")
    or rec.status, summary.fmt_time(d))
  local tail = tail_text(rec, 5)
  if not span.ok and span.error then head = head .. "\n" .. clean_text(summary.reason(span.error)) end
  return esc(tail ~= "" and head .. "\n" .. tail or head)
end

local function axis(out, left, width, h, wall)
  for i = 0, 4 do
    local x = left + width * i / 4
    local anchor = i == 0 and "start" or (i == 4 and "end" or "middle")
    out[#out + 1] = ('<line x1="%.1f" y1="0" x2="%.1f" y2="%d" stroke="#ddd"/>'
      .. '<text class="tick" x="%.1f" y="%d" fill="#666" text-anchor="%s">%s</text>'):format(
      x, x, h - 22, x, h - 6, anchor, summary.fmt_time(wall * i / 4))
  end
end

-- slurm (#19): the time a task's batch jobs waited in the queue, drawn pale.
local function queue_bars(out, run, rec, y, left, width, wall)
  for _, p in ipairs(rec.procs or {}) do
    if p.queued and p.run_start then
      out[#out + 1] = ('<rect x="%.1f" y="%d" width="%.1f" height="%d" fill="#cfd8dc">'
        .. '<title>%s: queue wait %s (slurm job %s)</title></rect>'):format(
        left + width * (p.queued - run.started) / wall, y, math.max(1,
        width * (p.run_start - p.queued) / wall), ROW_H - 6, esc(rec.name),
        summary.fmt_time(p.run_start - p.queued), esc(p.job))
    end
  end
end

local function row(out, run, rec, y, left, width, wall, critical)
  local failed = rec.status ~= "done" and rec.status ~= "up to date"
  out[#out + 1] = ('<text class="label%s" x="4" y="%d">%s%s</text>'):format(
    failed and " failed" or "", y + 14, failed and "\u{2717} " or "", esc(clean_text(rec.name)))
  local bars = bars_of(rec)
  for i, span in ipairs(bars) do
    local x = left + width * (span.start - run.started) / wall
    local w = math.max(1.5, width * ((span.finish or span.start) - span.start) / wall)
    local last = i == #bars
    local fill = last and (FILL[rec.status] or "#888") or "url(#retry)"
    out[#out + 1] = ('<rect class="bar%s" data-task="%s" x="%.1f" y="%d" width="%.1f" height="%d" '
      .. 'fill="%s"%s><title>%s</title></rect>'):format(
      last and (" " .. rec.status:gsub(" ", "-")) or " retried", esc(rec.name), x, y, w, ROW_H - 6,
      fill, last and critical[rec] and ' stroke="#d00" stroke-width="3"' or "",
      tooltip(rec, i, #bars, span))
  end
end

local function gantt(run, critical)
  local rows = {}
  for _, rec in ipairs(run.list) do
    if rec.start then rows[#rows + 1] = rec end
  end
  table.sort(rows, function(a, b)
    if a.start ~= b.start then return a.start < b.start end
    return a.index < b.index
  end)
  local wall = math.max((run.finished or run.started) - run.started, 1e-3)
  local longest = 0
  for _, rec in ipairs(rows) do longest = math.max(longest, utf8.len(clean_text(rec.name)) or #rec.name) end
  local left = math.floor(math.max(80, (longest + 2) * CHAR_W + 12))
  local right = 40                                  -- room for the last axis label
  local width = math.max(400, 1180 - left - right)  -- fits a 1280-pixel window
  local h = #rows * ROW_H + TOP + 32
  local out = { ('<svg id="gantt" xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" '
    .. 'viewBox="0 0 %d %d" font-family="sans-serif" font-size="12" data-left="%d">'):format(
    left + width + right, h, left + width + right, h, left),
    '<defs><pattern id="retry" width="6" height="6" patternUnits="userSpaceOnUse" '
    .. 'patternTransform="rotate(45)"><rect width="6" height="6" fill="#e8a598"/>'
    .. '<line x1="0" y1="0" x2="0" y2="6" stroke="#c0392b" stroke-width="2"/></pattern></defs>' }
  axis(out, left, width, h, wall)
  for i, rec in ipairs(rows) do
    row(out, run, rec, TOP + (i - 1) * ROW_H, left, width, wall, critical)
    queue_bars(out, run, rec, TOP + (i - 1) * ROW_H, left, width, wall)
  end
  out[#out + 1] = "</svg>"
  return table.concat(out, "\n")
end

local SCRIPT = [[
<script>
(function () {
  var html = document.documentElement;
  window.addEventListener("error", function (e) { html.setAttribute("data-js-error", String(e.message)); });
  var svg = document.getElementById("gantt");
  // widen the chart if a label or the last tick is wider than its room
  function overflow() {
    var over = 0, left = Number(svg.getAttribute("data-left")), w = svg.viewBox.baseVal.width;
    svg.querySelectorAll("text.label").forEach(function (t) {
      over = Math.max(over, t.getBBox().x + t.getBBox().width + 4 - left);
    });
    svg.querySelectorAll("text.tick").forEach(function (t) {
      over = Math.max(over, t.getBBox().x + t.getBBox().width - w);
    });
    return over;
  }
  var extra = overflow();
  if (extra > 0) {
    var vb = svg.viewBox.baseVal, w = vb.width + extra;
    svg.querySelectorAll("rect.bar, line, text.tick").forEach(function (el) {
      el.setAttribute("transform", "translate(" + extra + ",0)");
    });
    svg.setAttribute("viewBox", "0 0 " + w + " " + vb.height);
    svg.setAttribute("width", w);
    svg.setAttribute("data-left", Number(svg.getAttribute("data-left")) + extra);
  }
  var clipped = 0, box = svg.viewBox.baseVal;
  svg.querySelectorAll("text").forEach(function (t) {
    var b = t.getBBox(), dx = t.transform.baseVal.numberOfItems ? extra : 0;
    if (b.x + dx < -0.5 || b.x + dx + b.width > box.width + 0.5) clipped++;
  });
  html.setAttribute("data-clipped", String(clipped));
  // a click on a bar opens that task's row
  svg.addEventListener("click", function (e) {
    var name = e.target.getAttribute && e.target.getAttribute("data-task");
    if (!name) return;
    var row = document.querySelector('details[data-task="' + CSS.escape(name) + '"]');
    if (row) { row.open = true; row.scrollIntoView({ block: "center" }); }
  });
  html.setAttribute("data-js", "ok");
})();
</script>]]

local function details(run, rec)
  local body = {}
  if rec.error then body[#body + 1] = clean_text(summary.reason(rec.error)) end
  if rec.traceback and rec.traceback ~= "" then body[#body + 1] = clean_text(rec.traceback) end
  local tail = tail_text(rec, 20)
  if tail ~= "" then body[#body + 1] = tail end
  if rec.status == "failed" then body[#body + 1] = "rerun: " .. summary.rerun_command(run, rec) end
  if #body == 0 then return esc(rec.name) end
  return ('<details data-task="%s"><summary>%s</summary><pre>%s</pre></details>'):format(
    esc(rec.name), esc(clean_text(rec.name)), esc(table.concat(body, "\n\n")))
end

--- The HTML text for a finished run.
function M.html(run)
  local path, len = summary.critical_path(run)
  local critical, names = {}, {}
  for i, rec in ipairs(path) do critical[rec], names[i] = true, clean_text(rec.name) end
  local rows = {}
  for _, rec in ipairs(run.list) do
    local cls = {}
    if critical[rec] then cls[#cls + 1] = "crit" end
    if rec.status == "failed" or rec.status == "interrupted" then cls[#cls + 1] = "failed" end
    local queued = summary.queue_wait(rec)   -- slurm (#19)
    rows[#rows + 1] = ("<tr%s><td>%s</td><td>%s</td><td>%s</td><td>%s</td><td>%d</td></tr>"):format(
      #cls > 0 and (' class="%s"'):format(table.concat(cls, " ")) or "", details(run, rec),
      esc(rec.status), rec.start and summary.fmt_time(summary.duration(rec)) or "-",
      queued and summary.fmt_time(queued) or "-", rec.attempts or 0)
  end
  local wall = (run.finished or run.started) - run.started
  return table.concat({
    "<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8"><title>weft run report</title>',
    "<style>body{font-family:sans-serif;margin:2em}table{border-collapse:collapse}",
    "td,th{padding:2px 10px;border-bottom:1px solid #ddd;text-align:left;vertical-align:top}",
    ".crit td{font-weight:bold}.failed td{color:#b00}text.failed{fill:#b00;font-weight:bold}",
    "rect.bar{cursor:pointer}pre{margin:4px 0;max-width:60em;overflow-x:auto;color:#333}",
    "svg{max-width:none}</style></head><body>",
    ("<h1>weft run: %s</h1>"):format(esc(clean_text(run.pipeline.file or ""))),
    ("<p>%s: %s; wall %s; critical path (%s): %s</p>"):format(run.ok and "succeeded" or "failed",
      esc(summary.counts(run)),
      summary.fmt_time(wall), summary.fmt_time(len), esc(table.concat(names, " → "))),
    '<div style="overflow-x:auto">', gantt(run, critical), "</div>",
    "<h2>Tasks</h2><table><tr><th>task</th><th>status</th><th>time</th><th>queue wait</th>"
      .. "<th>attempts</th></tr>",
    table.concat(rows, "\n"), "</table>", SCRIPT, "</body></html>", "" }, "\n")
end

--- Writes the report of `run` to `path`.
function M.write(run, path)
  local f = assert(io.open(path, "wb"))
  f:write(M.html(run))
  f:close()
end

return M
