--- A self-contained HTML report of a pipeline run (`weft run --report`):
-- a Gantt chart in inline SVG (one row per task, the critical path in red),
-- then the summary table. No scripts, styles or fonts from outside.
-- @module weft.report
local summary = require "weft.summary"

local M = {}

local function esc(s)
  return (tostring(s):gsub("[&<>\"]", { ["&"] = "&amp;", ["<"] = "&lt;", [">"] = "&gt;",
    ['"'] = "&quot;" }))
end

local FILL = { done = "#4c9f70", failed = "#c0392b", interrupted = "#e67e22",
  skipped = "#aaaaaa" }

local function gantt(run, critical)
  local rows = {}
  for _, rec in ipairs(run.list) do
    if rec.start then rows[#rows + 1] = rec end
  end
  table.sort(rows, function(a, b) return a.start < b.start end)
  local wall = math.max((run.finished or run.started) - run.started, 1e-3)
  local left, width, rowh = 160, 760, 22
  local h = #rows * rowh + 40
  local out = { ('<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" '
    .. 'font-family="sans-serif" font-size="12">'):format(left + width + 20, h) }
  for i = 0, 4 do
    local x = left + width * i / 4
    out[#out + 1] = ('<line x1="%.1f" y1="0" x2="%.1f" y2="%d" stroke="#ddd"/>'
      .. '<text x="%.1f" y="%d" fill="#666">%s</text>'):format(x, x, h - 20, x + 2, h - 6,
      summary.fmt_time(wall * i / 4))
  end
  for i, rec in ipairs(rows) do
    local y = (i - 1) * rowh + 4
    local x = left + width * (rec.start - run.started) / wall
    local w = math.max(1, width * summary.duration(rec) / wall)
    local crit = critical[rec]
    out[#out + 1] = ('<text x="4" y="%d">%s</text>'):format(y + 14, esc(rec.name))
    out[#out + 1] = ('<rect x="%.1f" y="%d" width="%.1f" height="%d" fill="%s"%s>'
      .. '<title>%s: %s, %s</title></rect>'):format(x, y, w, rowh - 6,
      FILL[rec.status] or "#888", crit and ' stroke="#d00" stroke-width="3"' or "",
      esc(rec.name), rec.status, summary.fmt_time(summary.duration(rec)))
    for _, p in ipairs(rec.procs or {}) do   -- slurm (#19): queue waits drawn pale
      if p.queued and p.run_start then
        out[#out + 1] = ('<rect x="%.1f" y="%d" width="%.1f" height="%d" fill="#cfd8dc">'
          .. '<title>%s: queue wait %s (slurm job %s)</title></rect>'):format(
          left + width * (p.queued - run.started) / wall, y, math.max(1,
          width * (p.run_start - p.queued) / wall), rowh - 6, esc(rec.name),
          summary.fmt_time(p.run_start - p.queued), esc(p.job))
      end
    end
  end
  out[#out + 1] = "</svg>"
  return table.concat(out, "\n")
end

--- The HTML text for a finished run.
function M.html(run)
  local path, len = summary.critical_path(run)
  local critical, names = {}, {}
  for i, rec in ipairs(path) do critical[rec], names[i] = true, rec.name end
  local rows = {}
  for _, rec in ipairs(run.list) do
    local queued = summary.queue_wait(rec)   -- slurm (#19)
    rows[#rows + 1] = ("<tr%s><td>%s</td><td>%s</td><td>%s</td><td>%s</td><td>%d</td></tr>"):format(
      critical[rec] and ' class="crit"' or "", esc(rec.name), esc(rec.status),
      rec.start and summary.fmt_time(summary.duration(rec)) or "-",
      queued and summary.fmt_time(queued) or "-", rec.attempts or 0)
  end
  local wall = (run.finished or run.started) - run.started
  return table.concat({
    "<!DOCTYPE html>", '<html><head><meta charset="utf-8"><title>weft run report</title>',
    "<style>body{font-family:sans-serif;margin:2em}table{border-collapse:collapse}",
    "td,th{padding:2px 10px;border-bottom:1px solid #ddd;text-align:left}",
    ".crit td{color:#b00;font-weight:bold}</style></head><body>",
    ("<h1>weft run: %s</h1>"):format(esc(run.pipeline.file or "")),
    ("<p>%s: wall %s; critical path (%s): %s</p>"):format(run.ok and "succeeded" or "failed",
      summary.fmt_time(wall), summary.fmt_time(len), esc(table.concat(names, " → "))),
    gantt(run, critical),
    "<h2>Tasks</h2><table><tr><th>task</th><th>status</th><th>time</th><th>queue wait</th><th>attempts</th></tr>",
    table.concat(rows, "\n"), "</table></body></html>", "" }, "\n")
end

--- Writes the report of `run` to `path`.
function M.write(run, path)
  local f = assert(io.open(path, "wb"))
  f:write(M.html(run))
  f:close()
end

return M
