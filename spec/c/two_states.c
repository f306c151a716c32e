/* Two Lua states in one process, each with its own cosocket scheduler:
 * neither sees the other's threads or timers, and closing one with work
 * pending leaves the other working.  Prints "ok" on success.
 * Usage: two_states <directory holding cosocket.so> */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>

static lua_State *state_new(const char *dir)
{
    lua_State *L = luaL_newstate();
    char code[512];

    luaL_openlibs(L);
    snprintf(code, sizeof(code),
             "package.cpath = '%s/?.so;' .. package.cpath\n"
             "cs = require 'cosocket'\n",
             dir);
    if (luaL_dostring(L, code) != 0) {
        fprintf(stderr, "load: %s\n", lua_tostring(L, -1));
        exit(1);
    }
    return L;
}

/* Runs code in L; its result (a string) must equal want. */
static void expect(lua_State *L, const char *code, const char *want)
{
    const char *got;

    if (luaL_loadstring(L, code) != 0 || lua_pcall(L, 0, 1, 0) != 0) {
        fprintf(stderr, "error: %s\nin: %s\n", lua_tostring(L, -1), code);
        exit(1);
    }
    got = lua_tostring(L, -1);
    if (got == NULL || strcmp(got, want) != 0) {
        fprintf(stderr, "got %s, want %s\nin: %s\n", got ? got : "nil", want,
                code);
        exit(1);
    }
    lua_pop(L, 1);
}

int main(int argc, char **argv)
{
    lua_State *a, *b;

    if (argc != 2) {
        fprintf(stderr, "usage: two_states DIR\n");
        return 2;
    }
    a = state_new(argv[1]);
    b = state_new(argv[1]);
    /* A has a sleeping thread and a pending timer; B sees neither */
    expect(a,
           "done = false\n"
           "t = cs.spawn(function() cs.sleep(0.02); done = true end)\n"
           "cs.timer(0.01, function() fired = true end)\n"
           "local running, pending = cs.timer_counts()\n"
           "return tostring(pending)",
           "1");
    expect(b,
           "local running, pending = cs.timer_counts()\n"
           "cs.run() -- nothing of B's own: returns at once\n"
           "return tostring(pending)",
           "0");
    expect(a, "return tostring(done)", "false");
    /* B works on its own while A's work waits */
    expect(b,
           "return cs.run(function()\n"
           "  local t = cs.spawn(function() cs.sleep(0.005); return 'b' end)\n"
           "  local ok, v = cs.wait(t)\n"
           "  return v\n"
           "end)",
           "b");
    expect(a, "cs.run(); return tostring(done and fired)", "true");
    /* close A with work pending: B is not affected */
    expect(a,
           "cs.spawn(function() cs.sleep(10) end)\n"
           "cs.timer(10, function() end)\n"
           "local s = cs.semaphore(0)\n"
           "cs.spawn(function() s:wait(10) end)\n"
           "return 'pending'",
           "pending");
    lua_close(a);
    expect(b,
           "cs.sleep(0.001)\n"
           "local running, pending = cs.timer_counts()\n"
           "return tostring(pending)",
           "0");
    lua_close(b);
    printf("ok\n");
    return 0;
}
