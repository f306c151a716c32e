/* LuaJIT's fast path for receive("*l"): a line already in the buffer is
 * taken through two FFI calls instead of the Lua C API (about 900
 * instructions a line), which is where a line-reading loop spends its
 * time.  Anything else (no whole line buffered, a CR inside the line, a
 * busy or closed socket, other patterns, PUC Lua) tail-calls the C method,
 * so results and error messages are those of the C method: a tail call
 * leaves the caller's frame for luaL_argerror to name ("receive"). */
#include <stdint.h>
#include <string.h>

#include "tcp.h"
#include "compat.h"

/* The next buffered line of t: its bytes at *line, its length returned
 * (the "\r" of a "\r\n" left out), *skip the bytes it takes with its end.
 * -1: the C method must do it. */
static long ffi_line(void *state, const char **line, size_t *skip)
{
    cs_tcp *t = state;
    const char *p, *nl;
    size_t n;

    if (t->fd < 0 || t->read_closed || t->rd.pending || cs_tcp_connecting(t) ||
        t->buf.data == NULL)
        return -1;
    p = cs_buffer_peek(&t->buf);
    nl = memchr(p, '\n', cs_buffer_len(&t->buf));
    if (nl == NULL)
        return -1;
    n = (size_t)(nl - p);
    if (n > 0 && p[n - 1] == '\r')
        n--;
    if (memchr(p, '\r', n) != NULL)
        return -1; /* CRs inside are dropped: the C method's work */
    *line = p;
    *skip = (size_t)(nl - p) + 1;
    return (long)n;
}

/* The line was copied: it is consumed, a read call as any other. */
static void ffi_line_done(void *state, size_t skip)
{
    cs_tcp *t = state;

    t->read_gen++; /* a receiveuntil iterator's held prefix is let go */
    cs_buffer_consume(&t->buf, t->s->buffers, skip);
}

static const char fast_receive[] =
    "local receive, state_mt, line_fn, done_fn = ...\n"
    "local ok, ffi = pcall(require, 'ffi')\n"
    "if not ok then return receive end\n"
    "local cast, ffi_string = ffi.cast, ffi.string\n"
    "local getmetatable, rawget, type, select = getmetatable, rawget, "
    "type, select\n"
    "local line = cast('long (*)(void *, const char **, size_t *)', "
    "line_fn)\n"
    "local done = cast('void (*)(void *, size_t)', done_fn)\n"
    "local at, skip = ffi.new('const char *[1]'), ffi.new('size_t[1]')\n"
    "return function(...)\n" /* arity kept: receive() counts them */
    "  local np, self, pat = select('#', ...), ...\n"
    "  if (np == 1 or (np == 2 and pat == '*l')) and type(self) == 'table' "
    "then\n"
    "    local state = rawget(self, 1)\n"
    "    if getmetatable(state) == state_mt then\n"
    "      local t = cast('void *', state)\n"
    "      local n = line(t, at, skip)\n"
    "      if n >= 0 then\n"
    "        local s = ffi_string(at[0], n)\n"
    "        done(t, skip[0])\n"
    "        return s\n"
    "      end\n"
    "    end\n"
    "  end\n"
    "  return receive(...)\n"
    "end\n";

void cs_open_tcp_ffi(lua_State *L, const char *mt, const char *state_mt)
{
    lua_getglobal(L, "jit");
    if (lua_isnil(L, -1)) { /* PUC Lua: no FFI */
        lua_pop(L, 1);
        return;
    }
    lua_pop(L, 1);
    luaL_getmetatable(L, mt);
    lua_getfield(L, -1, "__index");
    if (luaL_loadbuffer(L, fast_receive, sizeof(fast_receive) - 1,
                        "=cosocket.receive") != LUA_OK)
        lua_error(L);
    lua_getfield(L, -2, "receive");
    luaL_getmetatable(L, state_mt);
    lua_pushlightuserdata(L, (void *)(uintptr_t)ffi_line);
    lua_pushlightuserdata(L, (void *)(uintptr_t)ffi_line_done);
    lua_call(L, 4, 1);
    lua_setfield(L, -2, "receive");
    lua_pop(L, 2);
}
