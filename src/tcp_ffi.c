/* LuaJIT's fast paths for receive("*l") and send(string): a line already
 * in the buffer is taken, and a string the kernel takes at once is sent,
 * through FFI calls instead of the Lua C API (some 900 instructions a
 * call), which is where a line-reading loop or a request loop spends its
 * user time.  Anything else (no whole line buffered, a CR inside the line,
 * a full send buffer, a string over 64 KiB, a busy or closed socket, TLS,
 * other arguments) tail-calls the C method, so results and error messages
 * are those of the C method: a tail call leaves the caller's frame for
 * luaL_argerror to name ("receive").  The one non-tail call, the C send of
 * what the kernel left of a string, cannot raise.  PUC Lua keeps the C
 * methods as they are. */
#include <errno.h>
#include <limits.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>

#include "tcp.h"
#include "compat.h"

/* The next buffered line of t: its bytes at *line, its length returned
 * (the "\r" of a "\r\n" left out), *skip the bytes it takes with its end.
 * -1: the C method must do it. */
static int ffi_line(void *state, const char **line, size_t *skip)
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
    if (n >= INT_MAX)
        return -1; /* the FFI's int: beyond it, the C method */
    if (n > 0 && p[n - 1] == '\r')
        n--;
    if (memchr(p, '\r', n) != NULL)
        return -1; /* CRs inside are dropped: the C method's work */
    *line = p;
    *skip = (size_t)(nl - p) + 1;
    return (int)n;
}

/* The line was copied: it is consumed, a read call as any other. */
static void ffi_line_done(void *state, size_t skip)
{
    cs_tcp *t = state;

    t->read_gen++; /* a receiveuntil iterator's held prefix is let go */
    cs_buffer_consume(&t->buf, t->s->buffers, skip);
}

/* Sends what the kernel takes of p at once: the count (0: nothing, the C
 * method then waits or reports the error kept in t->ffi_errno), or -1
 * when the C method must do it all (first send: TCP_NODELAY; TLS...).
 * int, not ssize_t: the FFI gives a Lua number for it, not a cdata. */
static int ffi_send(void *state, const char *p, size_t len)
{
    cs_tcp *t = state;
    ssize_t n;

    if (len == 0 || len > INT_MAX || t->fd < 0 || t->write_closed ||
        (t->wr != NULL && t->wr->pending) || t->tls != NULL ||
        !(t->nodelay || t->is_unix))
        return -1;
    do
        n = send(t->fd, p, len, MSG_NOSIGNAL);
    while (n < 0 && errno == EINTR);
    if (n >= 0)
        return (int)n;
    if (errno != EAGAIN && errno != EWOULDBLOCK)
        t->ffi_errno = errno; /* not lost: the C method reports it */
    return 0;
}

static const char fast_methods[] =
    "local receive, send, state_mt, line_fn, done_fn, send_fn = ...\n"
    "local ok, ffi = pcall(require, 'ffi')\n"
    "if not ok then return receive, send end\n"
    "local cast, ffi_string, sub = ffi.cast, ffi.string, string.sub\n"
    "local getmetatable, rawget, type, select = getmetatable, rawget, "
    "type, select\n"
    "local line = cast('int (*)(void *, const char **, size_t *)', "
    "line_fn)\n"
    "local done = cast('void (*)(void *, size_t)', done_fn)\n"
    "local fsend = cast('int (*)(void *, const char *, size_t)', "
    "send_fn)\n"
    "local at, skip = ffi.new('const char *[1]'), ffi.new('size_t[1]')\n"
    /* fixed parameters where the FFI is called: a vararg frame there
     * makes LuaJIT grow each coroutine's stack (some 800 bytes of memory a
     * thread blocked in receive); the vararg entry only counts and passes
     * on, by tail calls, so the C method still sees the caller's frame */
    "local function line_receive(np, self, pat)\n"
    "  if (np == 1 or pat == '*l') and type(self) == 'table' then\n"
    "    local state = rawget(self, 1)\n"
    "    if getmetatable(state) == state_mt then\n"
    "      local n = line(state, at, skip)\n"
    "      if n >= 0 then\n"
    "        local s = ffi_string(at[0], n)\n"
    "        done(state, skip[0])\n"
    "        return s\n"
    "      end\n"
    "    end\n"
    "  end\n"
    "  if np == 1 then return receive(self) end\n"
    "  return receive(self, pat)\n"
    "end\n"
    "local function fast_receive(...)\n" /* arity kept: C counts them */
    "  local np = select('#', ...)\n"
    "  if np == 1 or np == 2 then return line_receive(np, ...) end\n"
    "  return receive(...)\n"
    "end\n"
    "local function string_send(self, data)\n"
    /* small strings: a big one the kernel cannot take at once would be
     * copied twice on its way to the C method */
    "  if type(data) == 'string' and #data <= 65536 and "
    "type(self) == 'table' then\n"
    "    local state = rawget(self, 1)\n"
    "    if getmetatable(state) == state_mt then\n"
    "      local len = #data\n"
    "      local n = fsend(state, data, len)\n"
    "      if n == len then return len end\n"
    "      if n > 0 then\n" /* the kernel took a part: C sends the rest */
    "        local sent, err = send(self, sub(data, n + 1))\n"
    "        if sent then return n + sent end\n"
    "        return sent, err\n"
    "      end\n"
    "    end\n"
    "  end\n"
    "  return send(self, data)\n"
    "end\n"
    "local function fast_send(...)\n"
    "  if select('#', ...) == 2 then return string_send(...) end\n"
    "  return send(...)\n"
    "end\n"
    "return fast_receive, fast_send\n";

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
    if (luaL_loadbuffer(L, fast_methods, sizeof(fast_methods) - 1,
                        "=cosocket.fast") != LUA_OK)
        lua_error(L);
    lua_getfield(L, -2, "receive");
    lua_getfield(L, -3, "send");
    luaL_getmetatable(L, state_mt);
    lua_pushlightuserdata(L, (void *)(uintptr_t)ffi_line);
    lua_pushlightuserdata(L, (void *)(uintptr_t)ffi_line_done);
    lua_pushlightuserdata(L, (void *)(uintptr_t)ffi_send);
    lua_call(L, 6, 2);
    lua_setfield(L, -3, "send");
    lua_setfield(L, -2, "receive");
    lua_pop(L, 2);
}
