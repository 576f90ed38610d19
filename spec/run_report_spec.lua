-- `weft run --report` (issue 15): failures marked, retries as their own
-- bars, output tails in tooltips and expandable rows, labels not clipped;
-- rendered in a real headless Chromium (screenshot taken, the page's own
-- script ran without error, as --dump-dom shows).
local cli = require "support.cli"

local FIX = "spec/fixtures/run/"
local CHROMIUM = "chromium"
local has_chromium = os.execute("command -v " .. CHROMIUM .. " > /dev/null")

local function chromium(args, dir)
  -- timeout: a hung browser ends with the spec, never outlives it
  local cmd = ("timeout -k 5 90 %s --headless --no-sandbox --disable-gpu --disable-quic "
    .. "--no-first-run --disable-background-networking --disable-component-update --disable-sync "
    .. "--user-data-dir=%s %s 2>/dev/null"):format(CHROMIUM, dir, args)
  local p = io.popen(cmd)
  local out = p:read("a")
  p:close()
  return out
end

describe("weft run --report", function()
  local html, report, r
  setup(function()
    report = os.tmpname() .. ".html"
    r = cli.run({ "run", "-f", FIX .. "report.lua", "-k", "-j", "3", "--report", report },
      { env = "env CI=true" })
    html = cli.read_file(report)
  end)
  teardown(function() os.remove(report) end)

  it("is written after a failed run", function()
    assert.equal(1, r.code)
    assert.matches("^<!DOCTYPE html>", html)
  end)

  it("draws each retried attempt as its own bar and marks failures", function()
    local _, retried = html:gsub('class="bar retried" data%-task="flaky"', "")
    assert.equal(1, retried)
    assert.matches('class="bar done" data%-task="flaky"', html)
    assert.matches('class="bar failed" data%-task="broken"[^>]*fill="#c0392b"', html)
    assert.matches('<text class="label failed"[^>]*>✗ broken</text>', html)
    assert.matches('<tr class="failed"><td><details data%-task="broken">', html)
  end)

  it("puts the output tail in the tooltip and the expandable row, escaped and cleaned", function()
    assert.matches("<title>flaky: attempt 1 of 2 failed, [%d.]+s\nProcessError: exit code 1", html)
    assert.matches("&lt;b&gt;not bold&lt;/b&gt;", html, 1, true)
    assert.not_matches("<b>not bold", html, 1, true)
    assert.matches("bad \u{FFFD} byte red", html, 1, true)
    assert.not_matches("\27", html, 1, true)
    assert.matches("rerun: weft run %-f spec/fixtures/run/report%.lua broken", html)
  end)

  it("renders in headless Chromium: its script runs, nothing is clipped, a screenshot is taken", function()
    if not has_chromium then pending("chromium is not installed") return end
    local dir = os.tmpname()
    os.remove(dir)
    assert.is_true(os.execute("mkdir -p " .. dir))
    local dom = chromium("--dump-dom file://" .. report, dir)
    local png = dir .. "/shot.png"
    chromium(("--window-size=1280,900 --screenshot=%s file://%s"):format(png, report), dir)
    local shot = cli.read_file(png)
    os.execute("rm -rf " .. cli.quote(dir))
    assert.matches('data%-js="ok"', dom)
    assert.not_matches("<html[^>]*data%-js%-error", dom)
    assert.matches('data%-clipped="0"', dom)
    assert.is_truthy(shot, "no screenshot")
    assert.equal("\137PNG\r\n\26\n", shot:sub(1, 8))
    assert.is_true(#shot > 5000, "screenshot of " .. #shot .. " bytes")
  end)
end)
