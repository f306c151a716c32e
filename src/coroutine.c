/* cosocket.coroutine: waits inside coroutines that a light thread resumed,
 * at any depth, suspend the whole light thread (SPEC.md 11, option 2:
 * sentinel propagation).  A wait yields a private sentinel; our resume
 * passes it up the chain and hands the results back down.  Plain yields
 * reach the caller as usual.  Also cosocket.pcall / xpcall, yield-safe
 * on PUC 5.1 (coxpcall's technique). */
#include "cosocket.h"
#include "compat.h"

static const char *status_of(lua_State *L, lua_State *co)
{
    lua_Debug ar;

    if (L == co)
        return "running";
    switch (lua_status(co)) {
    case LUA_YIELD:
        return "suspended";
    case LUA_OK:
        if (lua_getstack(co, 0, &ar) > 0)
            return "normal"; /* it resumed another one */
        return lua_gettop(co) == 0 ? "dead" : "suspended";
    default:
        return "dead";
    }
}

/* resume_c(co, ...): coroutine.resume that records co as the innermost
 * coroutine of the running light thread, so that a wait there knows it may
 * yield (the sentinel travels back up through the Lua wrappers). */
static int co_resume_c(lua_State *L)
{
    cs_sched *s = cs_sched_get(L);
    lua_State *co;
    const char *status;
    int nargs = lua_gettop(L) - 1, rc, nres = 0;

    luaL_argcheck(L, lua_type(L, 1) == LUA_TTHREAD, 1, "coroutine expected");
    co = lua_tothread(L, 1);
    switch (cs_chain_role(L, s, 1)) {
    case 1: /* it waits through a coroutine it resumed: not ours to resume */
        status = "normal";
        break;
    case 2:
        status = "running";
        break;
    default:
        status = status_of(L, co);
        break;
    }
    if (status[0] != 's') {
        lua_pushboolean(L, 0);
        lua_pushfstring(L, "cannot resume %s coroutine", status);
        return 2;
    }
    if (s->wrap_depth >= CS_MAX_NESTING) {
        lua_pushboolean(L, 0);
        lua_pushliteral(L, "C stack overflow");
        return 2;
    }
    if (!lua_checkstack(co, nargs + LUA_MINSTACK)) {
        lua_pushboolean(L, 0);
        lua_pushliteral(L, "too many arguments to resume");
        return 2;
    }
    lua_xmove(L, co, nargs);
    s->wrap[s->wrap_depth++] = co;
    rc = cs_resume(co, L, nargs, &nres);
    s->wrap_depth--;
    if (rc != LUA_OK && rc != LUA_YIELD) {
        lua_pushboolean(L, 0);
        lua_pushvalue(co, -1);
        lua_xmove(co, L, 1);
        return 2;
    }
    if (!lua_checkstack(L, nres + 1)) {
        lua_pop(co, nres);
        lua_pushboolean(L, 0);
        lua_pushliteral(L, "too many results to resume");
        return 2;
    }
    lua_pushboolean(L, 1);
    lua_xmove(co, L, nres);
    return nres + 1;
}

/* status(co): ngx's names for light threads (SPEC.md 10.2), standard
 * ones for every other coroutine. */
static int co_status(lua_State *L)
{
    cs_sched *s = cs_sched_get(L);
    cs_thread *th;

    luaL_argcheck(L, lua_type(L, 1) == LUA_TTHREAD, 1, "coroutine expected");
    cs_push_threads(L, s);
    lua_pushvalue(L, 1);
    lua_rawget(L, -2);
    th = lua_touserdata(L, -1);
    if (th != NULL && th->state == CS_TH_ALIVE && th->co != L &&
        (lua_status(th->co) == LUA_OK || th->spawning))
        lua_pushliteral(L, "normal"); /* resuming someone, or a child it
                                         spawns runs first */
    else if (th != NULL && th->state == CS_TH_ALIVE)
        lua_pushliteral(L, "running");
    else if (th != NULL && th->state == CS_TH_ZOMBIE)
        lua_pushliteral(L, "zombie");
    else if (th != NULL)
        lua_pushliteral(L, "dead");
    else if (cs_chain_role(L, s, 1) != 0)
        lua_pushstring(L, cs_chain_role(L, s, 1) == 1 ? "normal" : "running");
    else
        lua_pushstring(L, status_of(L, lua_tothread(L, 1)));
    return 1;
}

/* create(f): ngx's wrapper takes Lua functions only (LuaJIT's would take
 * a C function too) */
static int co_create(lua_State *L)
{
    lua_State *co;

    luaL_argcheck(L, cs_is_lua_function(L, 1), 1, "Lua function expected");
    co = lua_newthread(L);
    lua_pushvalue(L, 1);
    lua_xmove(L, co, 1);
    return 1;
}

/* isyieldable(): can a wait here suspend a light thread (or, outside one,
 * would a plain yield work)? */
static int co_isyieldable(lua_State *L)
{
    cs_sched *s = cs_sched_get(L);
    int ok;

    if (s->current != NULL) {
        lua_State *top = s->wrap_depth > s->wrap_base
                             ? s->wrap[s->wrap_depth - 1]
                             : s->current->co;
        ok = top == L && cs_can_yield(s, L);
    } else {
        ok = !lua_pushthread(L) && cs_can_yield(s, L);
        lua_pop(L, 1);
    }
    lua_pushboolean(L, ok);
    return 1;
}

static const char coroutine_lua[] =
    "local WAIT, resume, status, isyieldable, is_puc, create = ...\n"
    "local co = coroutine\n"
    "local yield, running, raw_status = co.yield, co.running, co.status\n"
    "local pcall, xpcall, error = pcall, xpcall, error\n"
    "local M = {}\n"
    "-- a waiting child yields WAIT: pass it up, hand the results down\n"
    "-- (the results as many as they are: a yield() gives none)\n"
    "local pass\n"
    "local function pass_wait(c, wait, ...)\n"
    "  return pass(c, resume(c, yield(wait, ...)))\n"
    "end\n"
    "function pass(c, ok, ...)\n"
    "  if ok and (...) == WAIT then return pass_wait(c, ...) end\n"
    "  return ok, ...\n"
    "end\n"
    "local resume_c = resume\n"
    "function M.resume(c, ...) return pass(c, resume(c, ...)) end\n"
    "local function wrap_finish(ok, ...)\n"
    "  if ok then return ... end\n"
    "  error((...), 0)\n"
    "end\n"
    "function M.wrap(f)\n"
    "  local c = create(f)\n"
    "  return function(...) return wrap_finish(M.resume(c, ...)) end\n"
    "end\n"
    "M.create, M.yield, M.running = create, yield, running\n"
    "M.status, M.isyieldable = status, isyieldable\n"
    "M._create, M._resume, M._yield = co.create, co.resume, yield\n"
    "M._wrap, M._status = co.wrap, raw_status\n"
    "local cpcall, cxpcall = pcall, xpcall\n"
    "if is_puc then\n"
    "  -- every yield inside passes through: a wait, or the caller's own\n"
    "  local function pcall_step(c, ok, ...)\n"
    "    if not ok then return false, ... end\n"
    "    if raw_status(c) == 'dead' then return true, ... end\n"
    "    return pcall_step(c, resume_c(c, yield(...)))\n"
    "  end\n"
    "  cpcall = function(f, ...)\n"
    "    if running() == nil or type(f) ~= 'function' then\n"
    "      return pcall(f, ...)\n"
    "    end\n"
    "    -- called through a table slot, f has no name in argument errors,\n"
    "    -- as under the built-in pcall\n"
    "    local box = { f }\n"
    "    local c = create(function(...) return box[1](...) end)\n"
    "    return pcall_step(c, resume_c(c, ...))\n"
    "  end\n"
    "  local traceback = debug and debug.traceback\n"
    "  local function xpcall_step(c, h, ok, ...)\n"
    "    if not ok then\n"
    "      -- the handler runs after the unwind; the usual one still sees\n"
    "      -- where the error happened\n"
    "      if h == traceback then return false, traceback(c, (...)) end\n"
    "      return false, h((...))\n"
    "    end\n"
    "    if raw_status(c) == 'dead' then return true, ... end\n"
    "    return xpcall_step(c, h, resume_c(c, yield(...)))\n"
    "  end\n"
    "  cxpcall = function(f, h, ...)\n"
    "    if type(f) ~= 'function' then return xpcall(f, h) end\n"
    "    if running() == nil then\n"
    "      local args, n = {...}, select('#', ...)\n"
    "      return xpcall(function() return f(unpack(args, 1, n)) end, h)\n"
    "    end\n"
    "    local box = { f }\n"
    "    local c = create(function(...) return box[1](...) end)\n"
    "    return xpcall_step(c, h, resume_c(c, ...))\n"
    "  end\n"
    "end\n"
    "function M.install()\n"
    "  _G.coroutine = M\n"
    "  package.loaded.coroutine = M\n"
    "  if is_puc then _G.pcall, _G.xpcall = cpcall, cxpcall end\n"
    "  return M\n"
    "end\n"
    "return M, cpcall, cxpcall\n";

void cs_open_coroutine(lua_State *L, int mod)
{
    cs_sched *s = lua_touserdata(L, mod + 1);

    if (luaL_loadbuffer(L, coroutine_lua, sizeof(coroutine_lua) - 1,
                        "=cosocket.coroutine") != LUA_OK)
        lua_error(L);
    cs_push_wait_sentinel(L);
    lua_pushvalue(L, mod + 1);
    lua_pushcclosure(L, co_resume_c, 1);
    lua_pushvalue(L, mod + 1);
    lua_pushcclosure(L, co_status, 1);
    lua_pushvalue(L, mod + 1);
    lua_pushcclosure(L, co_isyieldable, 1);
    /* PUC 5.1 cannot yield across pcall; LuaJIT and 5.2+ can. */
    lua_pushboolean(L, LUA_VERSION_NUM == 501 && s->isyieldable == NULL);
    lua_pushcfunction(L, co_create);
    lua_call(L, 6, 3);
    lua_setfield(L, mod, "xpcall");
    lua_setfield(L, mod, "pcall");
    lua_setfield(L, mod, "coroutine");
}
