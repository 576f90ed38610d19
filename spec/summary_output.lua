-- busted output handler: busted's plain terminal output, then the plain
-- line "N passed, N failed" that CI reads (errors count as failed).
return function(options)
  local busted = require "busted"
  local handler = require "busted.outputHandlers.utfTerminal"(options)
  local function summary()
    local failed = #handler.failures + #handler.errors
    io.write(("%d passed, %d failed\n"):format(#handler.successes, failed))
    io.flush()
    return nil, true
  end
  busted.subscribe({ "suite", "end" }, summary)
  return handler
end
