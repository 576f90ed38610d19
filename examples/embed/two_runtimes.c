/*
** two_runtimes.c: two independent weft runtimes in one process, each on
** its own Lua state and its own loop, run in turns. Each counts its own
** tasks and neither sees the other's globals.
*/
#include <stdio.h>
#include <string.h>

#include <weft.h>

static const char script[] =
  "local name = ...\n"
  "local total = 0\n"
  "local tasks = {}\n"
  "for i = 1, 3 do tasks[i] = weft.spawn(function() weft.sleep(0.01 * i) total = total + i end) end\n"
  "weft.gather(tasks)\n"
  "who = name\n"
  "return name .. ' ' .. total\n";

static int run(weft_runtime *rt, const char *name) {
  lua_State *L = weft_state(rt);
  if (weft_load(rt, script, strlen(script), "=script") != LUA_OK)
    return 1;
  lua_pushstring(L, name);
  if (weft_run(rt, 1) != LUA_OK) {
    printf("%s failed: %s\n", name, lua_tostring(L, -1));
    return 1;
  }
  printf("%s\n", lua_tostring(L, -1));
  lua_pop(L, 1);
  return 0;
}

int main(void) {
  weft_runtime *a = weft_new(NULL), *b = weft_new(NULL);
  int status = 0;
  if (a == NULL || b == NULL)
    return 1;
  status |= run(a, "first");
  status |= run(b, "second");
  status |= run(a, "first-again");
  lua_getglobal(weft_state(b), "who");
  printf("b sees who = %s\n", lua_tostring(weft_state(b), -1));
  lua_pop(weft_state(b), 1);
  printf("pending %d %d\n", weft_pending(a), weft_pending(b));
  weft_close(a);
  weft_close(b);
  return status;
}
