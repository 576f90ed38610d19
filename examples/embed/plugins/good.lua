-- A well-behaved plugin: awaits, so it never holds the application up.
for i = 1, 5 do
  weft.sleep(0.02)
end
app.log("five naps taken")
