-- Hostile: never awaits, and swallows every error it can.
while true do
  pcall(function() while true do end end)
end
