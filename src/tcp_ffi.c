/* LuaJIT's fast paths for receive("*l"), receive(size), receiveany(max)
 * and send(string): a line or bytes already in the buffer are taken, and a
 * string the kernel takes at once is sent, through FFI calls instead of the
 * Lua C API (some 900 instructions a call), which is where a line-reading
 * loop or a request loop spends its user time.  When the bytes are not
 * buffered yet on a socket free to read, wait_read, a C function that
 * skips the argument checks (done here), starts the read and waits.
 * Anything else (a CR inside the line, a full send buffer, a string over
 * 64 KiB, a busy or closed socket, TLS sends, other arguments) tail-calls
 * the C method, so results and error messages are those of the C method: a
 * tail call leaves the caller's frame for luaL_argerror to name
 * ("receive").  The non-tail calls, wait_read and the C send of what the
 * kernel left of a string, cannot raise an argument error.  The same
 * for the pool (pool.h): connect(host, port) taking a parked connection
 * and setkeepalive() parking one, with the socket state itself, and for
 * the table tcp() makes.  PUC Lua keeps the C methods as they are. */
#include <errno.h>
#include <limits.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>

#include "tcp.h"
#include "compat.h"
#include "pool.h"
#include "addr.h"

/* what ffi_line and ffi_bytes return when they do not take the bytes */
#define FFI_C    (-1) /* the C method must do it */
#define FFI_WAIT (-2) /* not buffered yet: wait_read may wait for them */

/* The next buffered line of t: its bytes at *line, its length returned
 * (the "\r" of a "\r\n" left out), *skip the bytes it takes with its end.
 * FFI_WAIT: no whole line yet, wait_read may wait for one; FFI_C: the C
 * method must do it. */
static int ffi_line(void *state, const char **line, size_t *skip)
{
    cs_tcp *t = state;
    const char *p, *nl;
    size_t n;

    if (!cs_tcp_can_read(t))
        return FFI_C;
    if (t->buf.data == NULL)
        return FFI_WAIT;
    p = cs_buffer_peek(&t->buf);
    nl = memchr(p, '\n', cs_buffer_len(&t->buf));
    if (nl == NULL)
        return FFI_WAIT;
    n = (size_t)(nl - p);
    if (n >= INT_MAX)
        return FFI_C; /* the FFI's int: beyond it, the C method */
    if (n > 0 && p[n - 1] == '\r')
        n--;
    if (memchr(p, '\r', n) != NULL)
        return FFI_C; /* CRs inside are dropped: the C method's work */
    *line = p;
    *skip = (size_t)(nl - p) + 1;
    return (int)n;
}

/* receive(size) with size bytes buffered: at *at, size returned; else
 * FFI_WAIT or FFI_C as ffi_line.  size: 1 to INT_MAX (the Lua side). */
static int ffi_bytes(void *state, size_t size, const char **at)
{
    cs_tcp *t = state;

    if (!cs_tcp_can_read(t))
        return FFI_C;
    if (t->buf.data == NULL || cs_buffer_len(&t->buf) < size)
        return FFI_WAIT;
    *at = cs_buffer_peek(&t->buf);
    return (int)size;
}

/* receiveany(max) with bytes buffered: up to max of them at *at, their
 * count returned; else FFI_WAIT or FFI_C as ffi_line.  max: 1 to INT_MAX
 * (the Lua side). */
static int ffi_any(void *state, size_t max, const char **at)
{
    cs_tcp *t = state;
    size_t len;

    if (!cs_tcp_can_read(t))
        return FFI_C;
    if (t->buf.data == NULL || (len = cs_buffer_len(&t->buf)) == 0)
        return FFI_WAIT;
    *at = cs_buffer_peek(&t->buf);
    return (int)(len < max ? len : max);
}

/* The bytes were copied: they are consumed, a read call as any other. */
static void ffi_done(void *state, size_t skip)
{
    cs_tcp *t = state;

    t->read_gen++; /* a receiveuntil iterator's held prefix is let go */
    cs_buffer_consume(&t->buf, t->s->buffers, skip);
}

/* wait_read(state, n): receive() (n nil), receive(n) or receiveany(-n)
 * (n negative) on the socket of state, which ffi_line, ffi_bytes or ffi_any
 * found free to read.  The state is what the wait anchors (the op lives in
 * it), not the socket table.  Two arguments and one number for the kind:
 * every slot more here deepens a waiting thread's stack towards the end of
 * LuaJIT's first coroutine stack (see fast_methods). */
static int ffi_wait_read(lua_State *L)
{
    cs_tcp *t = lua_touserdata(L, 1);
    lua_Number n = lua_isnil(L, 2) ? 0 : lua_tonumber(L, 2);

    if (n < 0)
        return cs_tcp_receive_wait(L, t, CS_PAT_ANY, (size_t)-n);
    return cs_tcp_receive_wait(L, t, n == 0 ? CS_PAT_LINE : CS_PAT_SIZE,
                               (size_t)n);
}

/* Sends what the kernel takes of p at once: the count (0: nothing, the C
 * method then waits or reports the error kept in t->ffi_errno), or -1
 * when the C method must do it all (TLS, a failed TCP_NODELAY...).
 * int, not ssize_t: the FFI gives a Lua number for it, not a cdata. */
static int ffi_send(void *state, const char *p, size_t len)
{
    cs_tcp *t = state;
    ssize_t n;

    if (len == 0 || len > INT_MAX || t->fd < 0 || t->write_closed ||
        (t->wr != NULL && t->wr->pending) || t->tls != NULL ||
        cs_tcp_nodelay_before_send(t, len) != 0)
        return -1; /* the C method tries TCP_NODELAY again, and reports */
    do
        n = send(t->fd, p, len, MSG_NOSIGNAL);
    while (n < 0 && errno == EINTR);
    if (n >= 0)
        return (int)n;
    if (errno != EAGAIN && errno != EWOULDBLOCK)
        t->ffi_errno = errno; /* not lost: the C method reports it */
    return 0;
}

/* connect(host, port) on an object without a state (never connected, or
 * parked) whose default pool (host:port) has an idle connection: takes it,
 * with the state that parked it (default timeouts: ffi_timeouts sets the
 * object's).  Returns the anchors slot where that state is, for the Lua
 * side to take it from at once; 0: the C method must do it. */
static int ffi_take(void *sched, const char *host, size_t hlen, double port)
{
    cs_pool *pool;
    cs_tcp *t;
    int slot;

    if (!(port >= 1 && port <= 65535) || port != (double)(int)port ||
        cs_is_unix_host(host, hlen))
        return 0;
    pool = cs_pool_of_hostport(sched, host, hlen, (int)port);
    t = pool != NULL ? cs_pool_take_slot(pool, &slot) : NULL;
    if (t == NULL)
        return 0;
    t->connect_ms = t->send_ms = t->read_ms = 0;
    cs_tcp_adopt(t);
    return slot;
}

/* the object's settimeout(s) values, for the state ffi_take gave it */
static void ffi_timeouts(void *state, int c, int w, int r)
{
    cs_tcp *t = state;

    t->connect_ms = c;
    t->send_ms = w;
    t->read_ms = r;
}

/* setkeepalive(timeout?, size?) of a plain connection with nothing to
 * report and a pool to take it as it is (the pool keeps its size: size is
 * not looked at, as by the C method): parks it with the state, whose
 * anchors slot is returned for the Lua side to store the state's userdata
 * at, at once.  timeout: given (has_timeout), a number; the configured one
 * if not.  0: the C method must do it (it reports, closes, makes the
 * pool, converts the timeout...). */
static int ffi_park(void *state, int has_timeout, double timeout)
{
    cs_tcp *t = state;

    if (!has_timeout)
        timeout = t->s->cfg.keepalive_timeout;
    else if (!(timeout > -2147483648.0 && timeout < 2147483648.0) ||
             timeout != (double)(int)timeout)
        return 0; /* whole milliseconds only: lua_tointeger's work */
    if (t->fd < 0 || t->read_closed || t->write_closed || t->eof ||
        t->tls != NULL || (t->wr != NULL && t->wr->pending) || t->rd.pending ||
        cs_buffer_len(&t->buf) > 0 || t->s->exiting || t->bind_addr != NULL ||
        t->client_cert != NULL || t->client_key != NULL ||
        cs_tcp_peek_dubious(t) != 0)
        return 0;
    return cs_pool_park_slot(t, timeout < 0 ? 0 : timeout);
}

static const char fast_methods[] =
    "local receive, receiveany, send, state_mt, line_fn, bytes_fn, any_fn, "
    "done_fn, send_fn, wait_read, WAIT, connect, setkeepalive, tcp, mt, "
    "sched, anchors, take_fn, park_fn, timeouts_fn = ...\n"
    "local ok, ffi = pcall(require, 'ffi')\n"
    "if not ok then return receive, receiveany, send, connect, "
    "setkeepalive, tcp end\n"
    "local new_tab = require('table.new')\n"
    "local setmetatable = setmetatable\n"
    "local cast, ffi_string, sub = ffi.cast, ffi.string, string.sub\n"
    "local getmetatable, rawget, type, select = getmetatable, rawget, "
    "type, select\n"
    "local line = cast('int (*)(void *, const char **, size_t *)', "
    "line_fn)\n"
    "local bytes = cast('int (*)(void *, size_t, const char **)', "
    "bytes_fn)\n"
    "local any = cast('int (*)(void *, size_t, const char **)', any_fn)\n"
    "local done = cast('void (*)(void *, size_t)', done_fn)\n"
    "local fsend = cast('int (*)(void *, const char *, size_t)', "
    "send_fn)\n"
    "local take = cast('int (*)(void *, const char *, size_t, double)', "
    "take_fn)\n"
    "local timeouts = cast('void (*)(void *, int, int, int)', "
    "timeouts_fn)\n"
    "local park = cast('int (*)(void *, int, double)', park_fn)\n"
    /* a cdata: a light userdata argument is not compiled */
    "sched = cast('void *', sched)\n"
    "local at, skip = ffi.new('const char *[1]'), ffi.new('size_t[1]')\n"
    /* wait_read's results go on through a tail call with all of them
     * (CALLMT): LuaJIT then ends a trace at the call and goes on in the
     * interpreter when the thread is resumed.  pass, a Lua function, costs
     * the interpreter some 35 instructions a wait less than select(1, ...)
     * did.  Followed by anything else the call would be "stitched":
     * the code after it becomes a trace of its own, and in a request loop
     * each such trace runs into the next wait and stitches another, a
     * chain that grows until the trace limit flushes it all, compiling all
     * the while.  A function of its own, tail-called: a thread blocked in
     * it has a small frame more on its stack, not line_receive's (which
     * made LuaJIT grow each waiting coroutine's stack, some 800 bytes; so
     * did a fourth argument here, in a thread that waits in its own
     * function; without self, such a thread may take two arguments).
     * After the resume, LuaJIT runs the caller's code in the interpreter
     * until it enters a trace, and a root trace that starts in a function
     * stops where that function returns: only a side trace goes on into
     * the caller.  So pass gets its root trace before the first read
     * waits, from calls no read makes (false, false, false), in a state
     * that reads at all (wait makes it, then gives way to wait_fast, the
     * local all the readers call it by); every resumed read fails its
     * first guard, and the side trace LuaJIT grows from that exit carries
     * on, compiled, into the code that called receive (one side trace per
     * place that calls it).  callgrind, steady state, the bench's W1 and W2
     * at C=10: 1,830 user instructions a PING roundtrip (1,960-2,270
     * before, depending on the traces a run happened to form), 2,370 a GET
     * of 100 bytes (2,510-3,730), 2,970 a pooled request (3,050-3,100);
     * written with no shared check() helper, the client measured 2,160,
     * 3,410 and 5,370 before and 1,830, 2,360 and 2,910 now.  With the JIT
     * off then, or its traces flushed later, pass is traced as any
     * function is: the code after a wait is interpreted again.  One value
     * (the data) when b is nil, else the three of a failure: the count
     * receive returns. */
    "local function pass(a, b, c)\n"
    "  if b == nil then return a end\n"
    "  return a, b, c\n"
    "end\n"
    "local function wait_fast(state, n)\n"
    "  return pass(wait_read(state, n))\n"
    "end\n"
    "local wait\n"
    "function wait(state, n)\n"
    "  local function warm()\n"
    "    for _ = 1, 300 do pass(false, false, false) end\n"
    "  end\n"
    "  require('jit').off(warm)\n" /* its calls count, its loop is not traced */
    "  warm()\n"
    "  wait = wait_fast\n"
    "  return wait_fast(state, n)\n"
    "end\n"
    /* fixed parameters where the FFI is called: a vararg frame there
     * would grow the stack as well; the vararg entry only counts and
     * passes on, by tail calls, so the C method still sees the caller's
     * frame */
    "local function line_receive(np, self, pat)\n"
    "  if type(self) == 'table' then\n"
    "    local state = rawget(self, 1)\n"
    "    if getmetatable(state) == state_mt then\n"
    "      if np == 1 or pat == '*l' then\n"
    "        local n = line(state, at, skip)\n"
    "        if n >= 0 then\n"
    "          local s = ffi_string(at[0], n)\n"
    "          done(state, skip[0])\n"
    "          return s\n"
    "        end\n"
    "        if n == WAIT then return wait(state, nil) end\n"
    "      elseif type(pat) == 'number' and pat >= 1 and "
    "pat <= 2147483647 then\n"
    "        local n = bytes(state, pat, at)\n"
    "        if n > 0 then\n"
    "          local s = ffi_string(at[0], n)\n"
    "          done(state, n)\n"
    "          return s\n"
    "        end\n"
    "        if n == WAIT then return wait(state, pat) end\n"
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
    "local function any_receive(self, max)\n"
    "  if type(self) == 'table' and type(max) == 'number' and max >= 1 and "
    "max <= 2147483647 then\n"
    "    local state = rawget(self, 1)\n"
    "    if getmetatable(state) == state_mt then\n"
    "      local n = any(state, max, at)\n"
    "      if n > 0 then\n"
    "        local s = ffi_string(at[0], n)\n"
    "        done(state, n)\n"
    "        return s\n"
    "      end\n"
    "      if n == WAIT then return wait(state, -max) end\n"
    "    end\n"
    "  end\n"
    "  return receiveany(self, max)\n"
    "end\n"
    "local function fast_receiveany(...)\n"
    "  if select('#', ...) == 2 then return any_receive(...) end\n"
    "  return receiveany(...)\n"
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
    /* A pooled connect and setkeepalive hand the state itself over
     * (pool.h): slot 1 of the object, anchors[i] while parked.
     * Uncompiled, select, rawset and each FFI call are C calls, which
     * want LUA_MINSTACK free slots: made from the vararg entry of connect
     * they grew the stack of every thread that then waits (see wait).  So
     * that entry looks at its arguments with VARG and fast functions
     * only, and makes such calls only when a parked connection exists
     * (anchors[0] counts them). */
    "local function fast_connect(...)\n"
    "  local self, host, port, opts, extra = ...\n"
    "  if anchors[0] > 0 and type(port) == 'number' and opts == nil and "
    "extra == nil and type(host) == 'string' and type(self) == 'table' "
    "and not rawget(self, 1) and select('#', ...) <= 4 then\n"
    /* 4 arguments, the last nil, are 3 to the C method too */
    "    local i = take(sched, host, #host, port)\n"
    "    if i > 0 then\n"
    "      local state = anchors[i]\n"
    "      anchors[i] = nil\n"
    "      anchors[0] = anchors[0] - 1\n"
    "      self[1] = state\n" /* the socket metatable has no __newindex */
    "      local c = rawget(self, 2)\n" /* settimeout(s) sets all three */
    "      if c then timeouts(state, c, rawget(self, 4), "
    "rawget(self, 5)) end\n"
    "      return 1\n"
    "    end\n"
    "  end\n"
    "  return connect(...)\n"
    "end\n"
    "local function fast_setkeepalive(...)\n"
    "  local self, timeout = ...\n"
    "  if select('#', ...) <= 3 and type(self) == 'table' and "
    "(timeout == nil or type(timeout) == 'number') then\n"
    "    local state = rawget(self, 1)\n"
    "    if getmetatable(state) == state_mt then\n"
    "      local i = park(state, timeout and 1 or 0, timeout or 0)\n"
    "      if i > 0 then\n"
    "        anchors[i] = state\n"
    "        anchors[0] = anchors[0] + 1\n"
    "        self[1] = false\n"
    "        return 1\n"
    "      end\n"
    "    end\n"
    "  end\n"
    "  return setkeepalive(...)\n"
    "end\n"
    /* the table tcp() makes (tcp_new), made where a trace can */
    "local function fast_tcp(...)\n"
    "  if select('#', ...) ~= 0 then return tcp(...) end\n"
    "  return setmetatable(new_tab(5, 0), mt)\n"
    "end\n"
    "return fast_receive, fast_receiveany, fast_send, fast_connect, "
    "fast_setkeepalive, fast_tcp\n";

void cs_open_tcp_ffi(lua_State *L, int mod, const char *mt,
                     const char *state_mt)
{
    cs_sched *s = lua_touserdata(L, mod + 1);

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
    lua_getfield(L, -3, "receiveany");
    lua_getfield(L, -4, "send");
    luaL_getmetatable(L, state_mt);
    lua_pushlightuserdata(L, (void *)(uintptr_t)ffi_line);
    lua_pushlightuserdata(L, (void *)(uintptr_t)ffi_bytes);
    lua_pushlightuserdata(L, (void *)(uintptr_t)ffi_any);
    lua_pushlightuserdata(L, (void *)(uintptr_t)ffi_done);
    lua_pushlightuserdata(L, (void *)(uintptr_t)ffi_send);
    lua_pushcfunction(L, ffi_wait_read);
    lua_pushinteger(L, FFI_WAIT);
    lua_getfield(L, -13, "connect");
    lua_getfield(L, -14, "setkeepalive");
    lua_getfield(L, mod, "tcp");
    luaL_getmetatable(L, mt);
    lua_pushlightuserdata(L, s);
    cs_pool_push_anchors(L, s);
    lua_pushlightuserdata(L, (void *)(uintptr_t)ffi_take);
    lua_pushlightuserdata(L, (void *)(uintptr_t)ffi_park);
    lua_pushlightuserdata(L, (void *)(uintptr_t)ffi_timeouts);
    lua_call(L, 20, 6);
    lua_pushvalue(L, -1);
    lua_setfield(L, mod, "tcp");
    lua_setfield(L, mod, "stream");
    lua_setfield(L, -6, "setkeepalive");
    lua_setfield(L, -5, "connect");
    lua_setfield(L, -4, "send");
    lua_setfield(L, -3, "receiveany");
    lua_setfield(L, -2, "receive");
    lua_pop(L, 2);
}
