--- Randomised differential test of the core (issue 14): a seeded generator
-- of programs mixing tasks, every primitive, cancellation at random points,
-- timeouts, groups, gather/wait/wait_for and deadlocks, run under
-- weft.run_virtual and checked against invariants that hold whatever the
-- order of events (see `check` below).
--
-- As a script: lua5.4 spec/support/random_core.lua FIRST_SEED COUNT
-- prints one line per failing program ("seed N: what") and then
-- "ran N programs, F failed". The caller runs it under a hard time limit:
-- a loop that spins in C cannot be caught from inside.
local M = {}

-- A small LCG, so a seed means the same program on every Lua build.
local function rng(seed)
  local state = seed * 2654435761 % 4294967296
  return function(n)
    state = (state * 1103515245 + 12345) % 2147483648
    return state % n + 1
  end
end

local KNOWN = { Cancelled = true, Timeout = true, ErrorGroup = true, Deadlock = true,
                GraphError = true }

--- Runs the program of one seed. Returns nil, or a string saying which
-- invariant broke.
function M.run(weft, seed)
  local r = rng(seed)
  local problems = {}
  local function fail(msg) problems[#problems + 1] = msg end

  local ntasks = r(6) + 1
  local sem_value = r(3)
  local maxsize = r(3) - 1            -- 0: unbounded
  local lk, sem = weft.lock(), weft.semaphore(sem_value)
  local q = weft.queue(maxsize > 0 and maxsize or nil)
  local ev, fut = weft.event(), weft.future()
  local cv = weft.condition()
  local flag = false
  local holders, sem_holders = 0, 0
  local put, got = 0, 0
  local tasks = {}
  local cancelled_by_other = {}       -- task -> true once another task cancelled it
  local steps = 0
  local run_epoch = 1

  -- every error a core call raises is one of weft's kinds, a user error
  -- ("boom") or the queue's closed error; anything else is a weft bug
  local function check_error(where, err)
    if type(err) == "table" and KNOWN[err.kind] then return err.kind end
    if type(err) == "string" and (err:find("boom") or err:find("the queue is closed")) then
      return "user"
    end
    fail(where .. ": unexpected error " .. tostring(err))
    return "?"
  end

  local ops   -- forward: the op table, indexed by number

  local function run_ops(depth, n)
    for _ = 1, n do
      steps = steps + 1
      if steps > 5000 then fail("runaway: more than 5000 operations") error("boom: runaway") end
      ops[r(#ops)](depth)
    end
  end

  -- a child of a combinator may be cancelled by it (gather, group,
  -- wait_for's deadline, wait's caller): the timeout check skips those
  local function sub(depth)
    local n = r(3)
    return function()
      cancelled_by_other[weft.current()] = true
      run_ops(depth + 1, n)
      return "ok"
    end
  end
  local scopes = {}   -- task -> stack of deadlines of the timeouts it is in

  -- Calls f; an error is checked, then mostly re-raised so the task
  -- unwinds, sometimes caught (a task may catch a cancellation and go on).
  -- A Cancelled that a combinator raised for a task it awaited marks the
  -- caller as "cancelled by another" for the timeout check.
  local function guarded(name, f, ...)
    local ok, err = pcall(f, ...)
    if not ok then
      local kind = check_error(name, err)
      if kind == "Cancelled" and (name == "gather" or name == "wait_for" or name == "group"
                                  or name == "run_graph" or name == "run") then
        cancelled_by_other[weft.current()] = true
      end
      if (kind == "Deadlock" or kind == "Cancelled") and r(3) > 1 then error(err, 0) end
    end
    return ok, err
  end

  -- acquire(); true if taken. A Deadlock or Cancelled unwinds the task.
  local function take(name, obj)
    local ok, err = pcall(obj.acquire, obj)
    if not ok then
      local kind = check_error(name, err)
      if kind == "Deadlock" or kind == "Cancelled" then error(err, 0) end
    end
    return ok
  end

  local durations = { 0, 0.5, 1, 2, 3 }
  ops = {
    function() guarded("sleep", weft.sleep, durations[r(#durations)]) end,
    function() guarded("yield", weft.yield) end,
    function(depth)
      guarded("lock:with", lk.with, lk, function()
        holders = holders + 1
        if holders > 1 then fail("lock held by " .. holders .. " tasks") end
        local ok, err = pcall(run_ops, depth + 1, r(2) - 1)
        holders = holders - 1
        if not ok then error(err, 0) end
      end)
    end,
    function(depth)
      guarded("semaphore:with", sem.with, sem, function()
        sem_holders = sem_holders + 1
        if sem_holders > sem_value then fail("semaphore held " .. sem_holders .. " times") end
        local ok, err = pcall(run_ops, depth + 1, r(2) - 1)
        sem_holders = sem_holders - 1
        if not ok then error(err, 0) end
      end)
    end,
    function()
      local v = r(100)
      local ok = guarded("queue:put", q.put, q, v)
      if ok then put = put + 1 end
    end,
    function()
      local ok, v = guarded("queue:get", q.get, q)
      if ok and v ~= nil then got = got + 1 end
    end,
    function()
      local ok, res = pcall(q.put_nowait, q, 1)
      if ok and res then put = put + 1 end
    end,
    function() if q:get_nowait() ~= nil then got = got + 1 end end,
    function() guarded("event:wait", ev.wait, ev) end,
    function() if r(2) == 1 then ev:set() else ev:clear() end end,
    function()
      guarded("condition:wait_for", cv.with, cv, function()
        return cv:wait_for(function() return flag end)
      end)
    end,
    function()
      guarded("condition:notify", cv.with, cv, function()
        flag = r(2) == 1
        cv:notify_all()
      end)
    end,
    function() guarded("future:await", fut.await, fut) end,
    function() if not fut:done() then fut:set(1) end end,
    function()
      local victim = tasks[r(#tasks)]
      local me = weft.current()
      if victim and victim ~= me and not victim:done() then
        cancelled_by_other[victim] = true
        victim:cancel()
      end
    end,
    function(depth)   -- timeout: a failure after the deadline is Timeout unless someone else cancelled
      if depth > 3 then return end
      local s = durations[r(#durations)]
      local me, t0, epoch = weft.current(), weft.now(), run_epoch
      local stack = scopes[me] or {}
      scopes[me] = stack
      local outer_expired = false
      for _, d in ipairs(stack) do outer_expired = outer_expired or d <= t0 + s end
      stack[#stack + 1] = t0 + s
      local n = r(3)
      local ok, err = pcall(weft.timeout, s, function() run_ops(depth + 1, n) end)
      stack[#stack] = nil
      if not ok then
        local kind = check_error("timeout", err)
        -- (a cleanup run_virtual starts its clock at 0 again: only within one run)
        if kind == "Timeout" and epoch == run_epoch and weft.now() - t0 < s - 1e-9 then
          fail(("Timeout after %g s of a %g s timeout (%s)"):format(weft.now() - t0, s, tostring(err.message)))
        elseif kind == "Cancelled" and not cancelled_by_other[me] and not outer_expired then
          fail(("weft.timeout(%g) raised Cancelled at %g with no other canceller"):format(s, weft.now() - t0))
        end
        if kind == "Deadlock" or kind == "Cancelled" then error(err, 0) end
      end
    end,
    function(depth)
      if depth > 3 then return end
      local s = durations[r(#durations)]
      guarded("wait_for", weft.wait_for, sub(depth), s)
    end,
    function(depth)
      if depth > 3 then return end
      guarded("group", weft.group, function(g)
        cancelled_by_other[weft.current()] = true   -- a failing child cancels the body
        for _ = 1, r(3) do g:spawn(sub(depth)) end
        run_ops(depth + 1, r(2) - 1)
      end)
    end,
    function(depth)
      if depth > 3 then return end
      local list = {}
      for i = 1, r(3) do list[i] = sub(depth) end
      guarded("gather", weft.gather, list, { settle = r(2) == 1 })
    end,
    function(depth)
      if depth > 3 then return end
      local list = {}
      for i = 1, r(3) do list[i] = weft.spawn(sub(depth)) end
      local modes = { "first_completed", "first_error", "all_completed" }
      local ok, done, pending = pcall(weft.wait, list, { return_when = modes[r(3)], timeout = durations[r(5)] })
      if not ok then check_error("wait", done) error(done, 0) end
      if #done + #pending ~= #list then fail("weft.wait lost a task") end
      for _, t in ipairs(pending) do t:cancel() end
      for _, t in ipairs(list) do pcall(t.await, t) end
    end,
    function() if r(4) == 1 then error("boom") end end,
    function(depth)
      if depth > 3 then return end
      local work = {}
      for _, n in ipairs({ "a", "b", "c", "d" }) do work[n] = sub(depth) end
      guarded("run_graph", weft.run_graph, { a = {}, b = { "a" }, c = { "a" }, d = { "b", "c" } },
        function(node) return work[node]() end, { keep_going = r(2) == 1, limit = r(3) })
    end,
    function(depth)   -- acquire and release by hand around some work
      if not take("lock:acquire", lk) then return end
      holders = holders + 1
      if holders > 1 then fail("lock held by " .. holders .. " tasks") end
      local ok2, err2 = pcall(run_ops, depth + 1, r(2) - 1)
      holders = holders - 1
      lk:release()
      if not ok2 then error(err2, 0) end
    end,
    function()
      if not take("semaphore:acquire", sem) then return end
      sem_holders = sem_holders + 1
      if sem_holders > sem_value then fail("semaphore held " .. sem_holders .. " times") end
      local ok2, err2 = pcall(weft.sleep, durations[r(#durations)])
      sem_holders = sem_holders - 1
      sem:release()
      if not ok2 then error(err2, 0) end
    end,
    function()   -- a bare condition wait: whatever ends it, the lock is held again
      guarded("condition:wait", cv.with, cv, function()
        local ok, err = pcall(cv.wait, cv)
        if not cv:locked() then fail("condition:wait returned without the lock") end
        if not ok then error(err, 0) end
      end)
    end,
    function()   -- a cancel of itself, delivered at once and caught: spent
      weft.current():cancel()
      local ok, err = pcall(weft.yield)
      if ok then fail("a cancel of the running task was not delivered at its next await") end
      if not ok and check_error("yield", err) ~= "Cancelled" then error(err, 0) end
    end,
    function(depth)   -- a group body that cancels its own task and returns: Cancelled
      if depth > 3 then return end
      local ok, err = pcall(weft.group, function(g)
        for _ = 1, r(2) do g:spawn(sub(depth)) end
        weft.current():cancel()
        return 1
      end)
      local kind = ok and "none" or check_error("group", err)
      if kind ~= "Cancelled" and kind ~= "Deadlock" then
        fail("a group body's cancel of its own task gave " .. kind .. ", not Cancelled")
      end
      if kind == "Deadlock" then error(err, 0) end
    end,
    function(depth)
      if depth > 3 then return end
      local n = r(3)
      guarded("run", weft.run, function()
        cancelled_by_other[weft.current()] = true   -- cancelled with its caller
        run_ops(depth + 1, n)
      end)
    end,
  }

  -- the watchdog: a loop that turns without progress shows as task steps
  -- far beyond what the operations can take
  local nsteps, spun = 0, false
  local watchdog = weft.instrument({ step = function()
    nsteps = nsteps + 1
    if nsteps > 50000 and not spun then
      spun = true
      fail("watchdog: more than 50000 task steps (the loop turns with no progress)")
      for _, rec in ipairs(weft.tasks()) do rec.task:cancel() end
    end
  end })
  local ok, err = pcall(weft.run_virtual, function()
    for i = 1, ntasks do
      local n = r(10)
      tasks[i] = weft.spawn(function() run_ops(0, n) end)
    end
    -- await all; a Deadlock here is a legitimate outcome of a random program
    for _, t in ipairs(tasks) do
      local ok2, e2 = pcall(t.await, t)
      if not ok2 then check_error("await", e2) end
    end
  end)
  if not ok then check_error("run_virtual", err) end
  -- clean up what a Deadlock left waiting: cancel until every task has ended
  for _ = 1, 30 do
    local live = weft.tasks()
    if #live == 0 then break end
    run_epoch = run_epoch + 1
    pcall(weft.run_virtual, function()
      for _, rec in ipairs(live) do
        cancelled_by_other[rec.task] = true
        rec.task:cancel()
      end
      for _, rec in ipairs(live) do pcall(rec.task.await, rec.task) end
    end)
  end
  watchdog:close()
  if #weft.tasks() > 0 then fail(#weft.tasks() .. " tasks never ended") end
  if holders ~= 0 then fail("lock holders left: " .. holders) end
  if lk:locked() then fail("lock left locked") end
  if sem:value() ~= sem_value then fail(("semaphore value %d, was %d"):format(sem:value(), sem_value)) end
  if put ~= got + q:size() then
    fail(("queue: put %d, got %d, left %d"):format(put, got, q:size()))
  end
  if weft._stats().deadlines ~= 0 then fail("deadlines left armed") end
  M.last = { steps = steps, ntasks = ntasks, put = put, got = got }
  if #problems > 0 then return table.concat(problems, "; ") end
  return nil
end

if arg and arg[0] and arg[0]:find("random_core%.lua$") then
  package.cpath = "./" .. (os.getenv("WEFT_BUILD") or "build") .. "/?.so;" .. package.cpath
  local weft = require "weft"
  local first, count = tonumber(arg[1]) or 1, tonumber(arg[2]) or 100
  local failed = 0
  for seed = first, first + count - 1 do
    local ok, problem = pcall(M.run, weft, seed)
    if not ok then problem = "harness error: " .. tostring(problem) end
    if problem then
      failed = failed + 1
      print(("seed %d: %s"):format(seed, problem))
      io.stdout:flush()
    end
  end
  print(("ran %d programs, %d failed"):format(count, failed))
end

return M
