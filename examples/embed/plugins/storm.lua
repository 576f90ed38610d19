-- Hostile: a storm of failing tasks nobody awaits.
for i = 1, 20 do
  weft.spawn(function() error("storm " .. i) end)
end
weft.sleep(0.05)
app.log("storm over")
