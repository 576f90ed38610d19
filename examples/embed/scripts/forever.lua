-- still waiting when the application quits
print("forever: waiting")
app.delay(60000):await()
