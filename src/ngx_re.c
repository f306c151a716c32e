/* ngx.re on PCRE2 (DECISIONS.md 8): match, find, gmatch and sub/gsub with
 * a template, as ngx_lua 0.10.23 + lua-resty-core 0.1.25 behave, plus the
 * compile/exec pair cosocket/ngx.lua builds sub/gsub with a function and
 * ngx.re.split on.  The oracle runs PCRE 8: its compile error texts and
 * exec error codes are what we report (PCRE2's are mapped back).
 *
 * Compiled regexes are cached per Lua state, in a registry table keyed by
 * pattern and options: "o" is implied, "j" ignored, "d" (DFA) refused. */
#include <string.h>
#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include "cosocket.h"
#include "compat.h"

#define RE_MT         "cosocket.ngx_re"
#define RE_GMATCH_MT  "cosocket.ngx_re_gmatch"
#define RE_CACHE_MAX  1024 /* ngx_lua's lua_regex_cache_max_entries */
#define RE_ERR_MAX    127  /* ngx_lua's error buffer: 128 bytes with NUL */
#define RE_MAX_GROUPS 65536

/* The address is the registry key of the cache table. */
static const char re_cache_key = 0;

typedef struct re_compiled {
    pcre2_code *code;
    pcre2_match_data *md;
    uint32_t ncaps; /* capture groups */
    uint32_t namecount, nameentrysize;
    PCRE2_SPTR nametable;
    uint32_t match_opts; /* PCRE2_NO_UTF_CHECK for "U" */
    int dupnames;        /* "D": a name collects all its groups */
} re_compiled;

static int re_gc(lua_State *L)
{
    re_compiled *re = lua_touserdata(L, 1);

    pcre2_match_data_free(re->md); /* both accept NULL */
    pcre2_code_free(re->code);
    re->md = NULL;
    re->code = NULL;
    return 0;
}

/* ---- options ---- */

static void re_type_error(lua_State *L, int idx, const char *expected)
{
    luaL_argerror(L, idx,
                  lua_pushfstring(L, "%s expected, got %s", expected,
                                  luaL_typename(L, idx)));
}

/* The options string at idx (nil and false: none); raises on a flag that
 * is not known, as lua-resty-core does. */
static const char *re_opts(lua_State *L, int idx, size_t *len)
{
    if (lua_isnoneornil(L, idx) ||
        (lua_type(L, idx) == LUA_TBOOLEAN && !lua_toboolean(L, idx))) {
        *len = 0;
        return "";
    }
    if (lua_type(L, idx) != LUA_TSTRING)
        re_type_error(L, idx, "string");
    return lua_tolstring(L, idx, len);
}

static void re_parse_opts(lua_State *L, const char *opts, size_t len,
                          uint32_t *copts, uint32_t *mopts, int *dupnames)
{
    size_t i;

    *copts = *mopts = 0;
    *dupnames = 0;
    for (i = 0; i < len; i++) {
        switch (opts[i]) {
        case 'i':
            *copts |= PCRE2_CASELESS;
            break;
        case 'm':
            *copts |= PCRE2_MULTILINE;
            break;
        case 's':
            *copts |= PCRE2_DOTALL;
            break;
        case 'x':
            *copts |= PCRE2_EXTENDED;
            break;
        case 'u':
            *copts |= PCRE2_UTF;
            break;
        case 'U':
            *copts |= PCRE2_UTF;
            *mopts |= PCRE2_NO_UTF_CHECK;
            break;
        case 'a':
            *copts |= PCRE2_ANCHORED;
            break;
        case 'D':
            *copts |= PCRE2_DUPNAMES;
            *dupnames = 1;
            break;
        case 'J': /* PCRE 8's JavaScript compatibility, in PCRE2 terms */
            *copts |= PCRE2_ALT_BSUX | PCRE2_ALLOW_EMPTY_CLASS |
                      PCRE2_MATCH_UNSET_BACKREF;
            break;
        case 'j': /* JIT: not used, results are the same */
        case 'o': /* compile once: every regex is cached */
            break;
        case 'd':
            luaL_error(L, "unsupported flag \"d\" (flags \"%s\"): no DFA mode",
                       opts);
            break;
        default:
            luaL_error(L, "unknown flag \"%c\" (flags \"%s\")", opts[i], opts);
        }
    }
}

/* ---- compile errors: PCRE 8's words ---- */

static const struct {
    int code;
    const char *text;
} re_pcre1_texts[] = {
    {107, "invalid escape sequence in character class"},
    {109, "nothing to repeat"},
    {114, "missing )"},
    {117, "unknown option bit(s) set"},
    {118, "missing ) after comment"},
    {121, "failed to get memory"},
    {122, "unmatched parentheses"},
    {127, "conditional group contains more than two branches"},
    {129, "digit expected after (?+"},
    {132, "this version of PCRE is compiled without UTF support"},
    {134, "character value in \\x{} or \\o{} is too large"},
    {136, "\\C not allowed in lookbehind assertion"},
    {137, "PCRE does not support \\L, \\l, \\N{name}, \\U, or \\u"},
    {138, "number after (?C is > 255"},
    {139, "closing ) for (?C expected"},
    {142, "syntax error in subpattern name (missing terminator)"},
    {143, "two named subpatterns have the same name"},
    {144, "group name must start with a non-digit"},
    {145, "support for \\P, \\p, and \\X has not been compiled"},
    {147, "unknown property name after \\P or \\p"},
    {148, "subpattern name is too long (maximum 32 characters)"},
    {154, "DEFINE group contains more than one branch"},
    {158, "(?R or (?[+-]digits must be followed by )"},
    {161, "number is too big"},
    {168, "\\c must be followed by an ASCII character"},
    {174, "setting UTF is disabled by the application"},
    {177, "character value in \\u.... sequence is too large"},
    {178, "digits missing in \\x{} or \\o{}"},
    {0, NULL}};

typedef struct re_msg {
    char buf[RE_ERR_MAX + 1];
    size_t len;
} re_msg;

static void msg_add(re_msg *m, const char *s, size_t n)
{
    if (n > RE_ERR_MAX - m->len)
        n = RE_ERR_MAX - m->len; /* cut as ngx_lua's buffer cuts it */
    memcpy(m->buf + m->len, s, n);
    m->len += n;
}

static void msg_adds(re_msg *m, const char *s)
{
    msg_add(m, s, strlen(s));
}

/* Pushes ngx_lua's message: pcre_compile() failed: <text> in "<pattern>"
 * and, unless the error is at the very end, at "<rest of the pattern>". */
static void re_push_compile_error(lua_State *L, int code, size_t offset,
                                  const char *pat, size_t len)
{
    PCRE2_UCHAR text[256];
    const char *t = (const char *)text;
    re_msg m;
    int i;

    if (code < 0 && code >= PCRE2_ERROR_UTF8_ERR21 &&
        code <= PCRE2_ERROR_UTF8_ERR1) {
        t = "invalid UTF-8 string";
    } else if (pcre2_get_error_message(code, text, sizeof(text)) < 0) {
        t = "unknown error";
    }
    for (i = 0; re_pcre1_texts[i].text != NULL; i++)
        if (re_pcre1_texts[i].code == code)
            t = re_pcre1_texts[i].text;
    m.len = 0;
    msg_adds(&m, "pcre_compile() failed: ");
    msg_adds(&m, t);
    msg_adds(&m, " in \"");
    msg_add(&m, pat, len);
    msg_adds(&m, "\"");
    if (offset < len) {
        msg_adds(&m, " at \"");
        msg_add(&m, pat + offset, strnlen(pat + offset, len - offset));
        msg_adds(&m, "\"");
    }
    lua_pushlstring(L, m.buf, m.len);
}

/* ---- the cache ---- */

/* Pushes the state's cache table; [1] counts its entries. */
static void re_push_cache(lua_State *L, int fresh)
{
    lua_pushlightuserdata(L, (void *)&re_cache_key);
    lua_rawget(L, LUA_REGISTRYINDEX);
    if (lua_istable(L, -1) && !fresh)
        return;
    lua_pop(L, 1);
    lua_newtable(L);
    lua_pushinteger(L, 0);
    lua_rawseti(L, -2, 1);
    lua_pushlightuserdata(L, (void *)&re_cache_key);
    lua_pushvalue(L, -2);
    lua_rawset(L, LUA_REGISTRYINDEX);
}

/* Compiles the pattern at ridx with the options at oidx, or takes it from
 * the cache.  Pushes the compiled regex and returns it, or pushes the
 * error message and returns NULL.  May raise: argument errors. */
static re_compiled *re_compile(lua_State *L, int ridx, int oidx)
{
    size_t plen, olen;
    const char *pat, *opts;
    uint32_t copts, mopts;
    int dupnames, code, top;
    PCRE2_SIZE offset;
    re_compiled *re;

    luaL_checktype(L, ridx, LUA_TSTRING);
    pat = lua_tolstring(L, ridx, &plen);
    opts = re_opts(L, oidx, &olen);
    top = lua_gettop(L);
    re_push_cache(L, 0);
    lua_pushlstring(L, pat, plen); /* key: pattern NUL options */
    lua_pushlstring(L, "", 1);
    lua_pushlstring(L, opts, olen);
    lua_concat(L, 3);
    lua_pushvalue(L, -1);
    lua_rawget(L, -3);
    if (lua_type(L, -1) == LUA_TUSERDATA) {
        re = lua_touserdata(L, -1);
        lua_replace(L, top + 1);
        lua_settop(L, top + 1);
        return re;
    }
    lua_pop(L, 1);
    re_parse_opts(L, opts, olen, &copts, &mopts, &dupnames);
    re = lua_newuserdata(L, sizeof(*re)); /* top + 3 */
    memset(re, 0, sizeof(*re));
    luaL_getmetatable(L, RE_MT);
    lua_setmetatable(L, -2);
    re->code =
        pcre2_compile((PCRE2_SPTR)pat, plen, copts, &code, &offset, NULL);
    if (re->code == NULL) {
        re_push_compile_error(L, code, offset, pat, plen);
        lua_replace(L, top + 1);
        lua_settop(L, top + 1);
        return NULL;
    }
    re->md = pcre2_match_data_create_from_pattern(re->code, NULL);
    if (re->md == NULL) {
        lua_pushliteral(L, "no memory");
        lua_replace(L, top + 1);
        lua_settop(L, top + 1);
        return NULL;
    }
    pcre2_pattern_info(re->code, PCRE2_INFO_CAPTURECOUNT, &re->ncaps);
    pcre2_pattern_info(re->code, PCRE2_INFO_NAMECOUNT, &re->namecount);
    pcre2_pattern_info(re->code, PCRE2_INFO_NAMEENTRYSIZE, &re->nameentrysize);
    pcre2_pattern_info(re->code, PCRE2_INFO_NAMETABLE, &re->nametable);
    re->match_opts = mopts;
    re->dupnames = dupnames;
    lua_rawgeti(L, top + 1, 1);
    if (lua_tointeger(L, -1) >= RE_CACHE_MAX) { /* full: start over */
        re_push_cache(L, 1);
        lua_replace(L, top + 1);
    }
    lua_pop(L, 1);
    lua_pushvalue(L, top + 2);
    lua_pushvalue(L, top + 3);
    lua_rawset(L, top + 1);
    lua_rawgeti(L, top + 1, 1);
    lua_pushinteger(L, lua_tointeger(L, -1) + 1);
    lua_rawseti(L, top + 1, 1);
    lua_pop(L, 1);
    lua_replace(L, top + 1);
    lua_settop(L, top + 1);
    return re;
}

/* ---- matching ---- */

/* pcre2_match, its error codes turned into PCRE 8's (ngx_lua reports
 * "pcre_exec() failed: <code>"). */
static int re_exec(re_compiled *re, const char *s, size_t len, size_t pos)
{
    int rc = pcre2_match(re->code, (PCRE2_SPTR)s, len, pos, re->match_opts,
                         re->md, NULL);

    if (rc >= 0 || rc == PCRE2_ERROR_NOMATCH)
        return rc == PCRE2_ERROR_NOMATCH ? -1 : rc;
    if (rc >= PCRE2_ERROR_UTF8_ERR21 && rc <= PCRE2_ERROR_UTF8_ERR1)
        return -10; /* PCRE_ERROR_BADUTF8 */
    switch (rc) {
    case PCRE2_ERROR_BADUTFOFFSET:
        return -11;
    case PCRE2_ERROR_BADOFFSET:
        return -24;
    case PCRE2_ERROR_MATCHLIMIT:
        return -8;
    case PCRE2_ERROR_DEPTHLIMIT:
        return -21; /* PCRE_ERROR_RECURSIONLIMIT */
    case PCRE2_ERROR_NOMEMORY:
    case PCRE2_ERROR_HEAPLIMIT:
        return -6;
    default:
        return rc;
    }
}

static int re_fail_exec(lua_State *L, int rc, int nils)
{
    int i;

    for (i = 0; i < nils; i++)
        lua_pushnil(L);
    lua_pushfstring(L, "pcre_exec() failed: %d", rc);
    return nils + 1;
}

/* nil, nil, the message at the top (find, sub and gsub report errors
 * with an extra nil) */
static int re_fail2(lua_State *L)
{
    lua_pushnil(L);
    lua_pushnil(L);
    lua_pushvalue(L, -3);
    return 3;
}

/* The subject at idx as ngx.re sees it: tostring of any value. */
static const char *re_subject(lua_State *L, int idx, size_t *len)
{
    if (lua_type(L, idx) != LUA_TSTRING) {
        lua_getglobal(L, "tostring");
        lua_pushvalue(L, idx);
        lua_call(L, 1, 1);
        if (lua_type(L, -1) != LUA_TSTRING)
            luaL_error(L, "'tostring' must return a string");
        lua_replace(L, idx);
    }
    return lua_tolstring(L, idx, len);
}

/* The start offset ctx.pos asks for (1-based; nil, 0 or less: 0). */
static size_t re_ctx_pos(lua_State *L, int ctx)
{
    lua_Number pos;

    if (lua_isnoneornil(L, ctx))
        return 0;
    luaL_checktype(L, ctx, LUA_TTABLE);
    lua_getfield(L, ctx, "pos");
    pos = lua_tonumber(L, -1);
    lua_pop(L, 1);
    if (!(pos > 0))
        return 0;
    if (pos > 2147483647.0)
        return 2147483647; /* beyond any subject: PCRE's bad offset */
    return (size_t)pos - 1;
}

static void re_set_ctx_pos(lua_State *L, int ctx, PCRE2_SIZE end)
{
    if (lua_isnoneornil(L, ctx))
        return;
    lua_pushinteger(L, (lua_Integer)end + 1);
    lua_setfield(L, ctx, "pos");
}

/* Pushes group i of the last match, or false when it did not take part. */
static void re_push_group(lua_State *L, re_compiled *re, int rc, const char *s,
                          uint32_t i)
{
    PCRE2_SIZE *ov = pcre2_get_ovector_pointer(re->md);

    if ((int)i >= rc || ov[2 * i] == PCRE2_UNSET)
        lua_pushboolean(L, 0);
    else if (ov[2 * i] > ov[2 * i + 1]) /* \K in a lookahead */
        lua_pushliteral(L, "");
    else
        lua_pushlstring(L, s + ov[2 * i], ov[2 * i + 1] - ov[2 * i]);
}

/* Pushes the captures table: [0] the match, [n] the groups (false when a
 * group did not take part), names for named groups (with "D": a table of
 * the groups of that name that matched).  Into the table at res if not 0. */
static void re_push_captures(lua_State *L, re_compiled *re, int rc,
                             const char *s, int res)
{
    uint32_t i;
    PCRE2_SPTR e = re->nametable;

    if (res != 0)
        lua_pushvalue(L, res);
    else
        lua_createtable(L, (int)re->ncaps, (int)re->namecount);
    for (i = 0; i <= re->ncaps; i++) {
        re_push_group(L, re, rc, s, i);
        lua_rawseti(L, -2, (int)i);
    }
    for (i = 0; i < re->namecount; i++, e += re->nameentrysize) {
        int n = (e[0] << 8) | e[1];

        lua_pushstring(L, (const char *)e + 2);
        lua_rawgeti(L, -2, n);
        if (!re->dupnames) {
            lua_rawset(L, -3);
            continue;
        }
        if (!lua_toboolean(L, -1)) { /* unmatched groups are left out */
            lua_pop(L, 2);
            continue;
        }
        lua_pushvalue(L, -2);
        lua_rawget(L, -4); /* res name group old */
        if (!lua_istable(L, -1)) {
            lua_pop(L, 1);
            lua_createtable(L, 1, 0);
            lua_pushvalue(L, -2);
            lua_rawseti(L, -2, 1);
            lua_replace(L, -2);
            lua_rawset(L, -3); /* name = { group } */
        } else {
            lua_insert(L, -2);
            lua_rawseti(L, -2, (int)cs_rawlen(L, -2) + 1);
            lua_pop(L, 2);
        }
    }
}

/* ngx.re.match(subject, regex, opts?, ctx?, res?) */
static int re_match(lua_State *L)
{
    size_t len, pos;
    const char *s;
    re_compiled *re;
    int rc;

    lua_settop(L, 5);
    s = re_subject(L, 1, &len);
    if (!lua_isnil(L, 5))
        luaL_checktype(L, 5, LUA_TTABLE);
    pos = re_ctx_pos(L, 4);
    re = re_compile(L, 2, 3);
    if (re == NULL)
        return cs_fail(L, lua_tostring(L, -1));
    rc = re_exec(re, s, len, pos);
    if (rc == -1) {
        lua_pushnil(L);
        return 1;
    }
    if (rc < 0)
        return re_fail_exec(L, rc, 1);
    re_set_ctx_pos(L, 4, pcre2_get_ovector_pointer(re->md)[1]);
    re_push_captures(L, re, rc, s, lua_isnil(L, 5) ? 0 : 5);
    return 1;
}

/* ngx.re.find(subject, regex, opts?, ctx?, nth?): from, to of the match
 * or of group nth; nil, nil, err on errors. */
static int re_find(lua_State *L)
{
    size_t len, pos;
    const char *s;
    re_compiled *re;
    lua_Integer nth;
    PCRE2_SIZE *ov;
    int rc;

    lua_settop(L, 5);
    s = re_subject(L, 1, &len);
    if (!lua_isnil(L, 5) && lua_type(L, 5) != LUA_TNUMBER)
        re_type_error(L, 5, "number");
    if (lua_isnil(L, 5)) {
        nth = 0;
    } else { /* beyond any group count: clamped before the cast; NaN: 0 */
        lua_Number v = lua_tonumber(L, 5);
        nth = v >= 2147483647.0    ? 2147483647
              : v <= -2147483648.0 ? -2147483647 - 1
              : v == v             ? (lua_Integer)v
                                   : 0;
    }
    pos = re_ctx_pos(L, 4);
    re = re_compile(L, 2, 3);
    if (re == NULL)
        return re_fail2(L);
    rc = re_exec(re, s, len, pos);
    if (rc == -1) {
        lua_pushnil(L);
        return 1;
    }
    if (rc < 0)
        return re_fail_exec(L, rc, 2);
    ov = pcre2_get_ovector_pointer(re->md);
    re_set_ctx_pos(L, 4, ov[1]);
    if (nth < 0)
        nth = 0;
    if (nth > (lua_Integer)re->ncaps) {
        lua_pushnil(L);
        return cs_fail(L, "nth out of bound") + 1;
    }
    if (nth >= rc || ov[2 * nth] == PCRE2_UNSET) {
        lua_pushnil(L);
        lua_pushnil(L);
        return 2;
    }
    lua_pushinteger(L, (lua_Integer)ov[2 * nth] + 1);
    lua_pushinteger(L, (lua_Integer)ov[2 * nth + 1]);
    return 2;
}

/* The gmatch iterator: a callable table as lua-resty-core's, holding
 * [1] the compiled regex, [2] the subject, [3] the next offset (nil once
 * it is exhausted). */
static int re_gmatch_next(lua_State *L)
{
    size_t len, pos;
    const char *s;
    re_compiled *re;
    PCRE2_SIZE *ov;
    int rc;

    luaL_checktype(L, 1, LUA_TTABLE);
    lua_settop(L, 1);
    lua_rawgeti(L, 1, 1); /* 2 */
    lua_rawgeti(L, 1, 2); /* 3 */
    lua_rawgeti(L, 1, 3); /* 4 */
    re = luaL_checkudata(L, 2, RE_MT);
    if (lua_isnil(L, 4) || re->code == NULL) { /* exhausted */
        lua_pushnil(L);
        return 1;
    }
    s = lua_tolstring(L, 3, &len);
    pos = (size_t)lua_tointeger(L, 4);
    rc = re_exec(re, s, len, pos);
    if (rc < 0) {
        lua_pushnil(L);
        lua_rawseti(L, 1, 3);
        if (rc == -1) {
            lua_pushnil(L);
            return 1;
        }
        return re_fail_exec(L, rc, 1);
    }
    ov = pcre2_get_ovector_pointer(re->md);
    pos = ov[1];
    if (pos == ov[0]) /* an empty match: the next try starts one on */
        pos++;
    if (pos > len)
        lua_pushnil(L);
    else
        lua_pushinteger(L, (lua_Integer)pos);
    lua_rawseti(L, 1, 3);
    re_push_captures(L, re, rc, s, 0);
    return 1;
}

/* ngx.re.gmatch(subject, regex, opts?) */
static int re_gmatch(lua_State *L)
{
    lua_settop(L, 3);
    re_subject(L, 1, NULL);
    if (re_compile(L, 2, 3) == NULL)
        return cs_fail(L, lua_tostring(L, -1));
    lua_createtable(L, 3, 0);
    lua_insert(L, -2);
    lua_rawseti(L, -2, 1);
    lua_pushvalue(L, 1);
    lua_rawseti(L, -2, 2);
    lua_pushinteger(L, 0);
    lua_rawseti(L, -2, 3);
    luaL_getmetatable(L, RE_GMATCH_MT);
    lua_setmetatable(L, -2);
    return 1;
}

/* ---- sub and gsub with a template ---- */

/* The template $0 $1 ${12} $$: checks it (b NULL: returns -1 when it is
 * malformed, as ngx_lua refuses it) or expands it for the last match.
 * A group that did not take part, or that the regex does not have, gives
 * nothing; "$name" is refused (ngx_lua does not support named groups). */
static int re_template(luaL_Buffer *b, const char *t, size_t len,
                       re_compiled *re, int rc, const char *s)
{
    size_t i = 0;

    while (i < len) {
        size_t n = 0, name_len = 0, start = i;
        int num, bracket = 0;

        if (t[i] != '$') {
            while (i < len && t[i] != '$')
                i++;
            if (b != NULL)
                luaL_addlstring(b, t + start, i - start);
            continue;
        }
        if (++i == len)
            return -1;
        if (t[i] == '$') {
            if (b != NULL)
                luaL_addchar(b, '$');
            i++;
            continue;
        }
        num = t[i] >= '0' && t[i] <= '9';
        if (t[i] == '{') {
            bracket = 1;
            if (++i == len)
                return -1;
            num = t[i] >= '0' && t[i] <= '9';
        }
        for (; i < len; i++, name_len++) {
            char c = t[i];

            if (c == '}' && bracket) {
                i++;
                bracket = 0;
                break;
            }
            if (num) {
                if (c < '0' || c > '9')
                    break;
                if (n < RE_MAX_GROUPS)
                    n = n * 10 + (size_t)(c - '0');
                continue;
            }
            if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
                (c >= '0' && c <= '9') || c == '_')
                continue;
            break;
        }
        if (bracket || name_len == 0 || !num)
            return -1;
        if (b != NULL && n < (size_t)rc) {
            PCRE2_SIZE *ov = pcre2_get_ovector_pointer(re->md);

            if (ov[2 * n] != PCRE2_UNSET && ov[2 * n] < ov[2 * n + 1])
                luaL_addlstring(b, s + ov[2 * n], ov[2 * n + 1] - ov[2 * n]);
        }
    }
    return 0;
}

/* sub/gsub(subject, regex, template, opts?): the new string and the
 * count of matches; nil, nil, err on errors. */
static int re_substitute(lua_State *L, int global)
{
    size_t len, tlen, pos = 0, copied = 0;
    const char *s, *t;
    re_compiled *re;
    lua_Integer count = 0;
    luaL_Buffer b;

    lua_settop(L, 4);
    s = re_subject(L, 1, &len);
    t = luaL_checklstring(L, 3, &tlen);
    re = re_compile(L, 2, 4); /* at 5 */
    if (re == NULL)
        return re_fail2(L);
    if (re_template(NULL, t, tlen, re, 0, s) < 0) {
        lua_pushnil(L);
        return cs_fail(L, "failed to compile the replacement template") + 1;
    }
    luaL_buffinit(L, &b);
    for (;;) {
        PCRE2_SIZE *ov;
        int rc = re_exec(re, s, len, pos);

        if (rc == -1)
            break;
        if (rc < 0)
            return re_fail_exec(L, rc, 2);
        count++;
        ov = pcre2_get_ovector_pointer(re->md);
        if (ov[0] > copied)
            luaL_addlstring(&b, s + copied, ov[0] - copied);
        re_template(&b, t, tlen, re, rc, s);
        copied = pos = ov[1];
        if (pos == ov[0] && ++pos > len)
            break;
        if (!global)
            break;
    }
    if (count == 0) {
        lua_pushvalue(L, 1);
        lua_pushinteger(L, 0);
        return 2;
    }
    if (copied < len)
        luaL_addlstring(&b, s + copied, len - copied);
    luaL_pushresult(&b);
    lua_pushinteger(L, count);
    return 2;
}

static int re_sub(lua_State *L)
{
    return re_substitute(L, 0);
}

static int re_gsub(lua_State *L)
{
    return re_substitute(L, 1);
}

/* ---- for cosocket/ngx.lua ---- */

/* _re_compile(regex, opts?): the compiled regex, or nil, err */
static int re_compile_lua(lua_State *L)
{
    lua_settop(L, 2);
    if (re_compile(L, 1, 2) == NULL)
        return cs_fail(L, lua_tostring(L, -1));
    return 1;
}

/* _re_exec(compiled, subject, offset): captures, from, to (0-based, end
 * exclusive), rc; nil when nothing matches; nil, err on errors. */
static int re_exec_lua(lua_State *L)
{
    re_compiled *re = luaL_checkudata(L, 1, RE_MT);
    size_t len;
    const char *s = luaL_checklstring(L, 2, &len);
    lua_Integer pos = luaL_checkinteger(L, 3);
    PCRE2_SIZE *ov;
    int rc;

    if (re->code == NULL)
        return luaL_error(L, "regex already freed");
    rc = re_exec(re, s, len, pos < 0 ? 0 : (size_t)pos);
    if (rc == -1) {
        lua_pushnil(L);
        return 1;
    }
    if (rc < 0)
        return re_fail_exec(L, rc, 1);
    ov = pcre2_get_ovector_pointer(re->md);
    re_push_captures(L, re, rc, s, 0);
    lua_pushinteger(L, (lua_Integer)ov[0]);
    lua_pushinteger(L, (lua_Integer)ov[1]);
    lua_pushinteger(L, rc);
    return 4;
}

void cs_open_ngx_re(lua_State *L, int mod)
{
    static const luaL_Reg funcs[] = {
        {"_re_match", re_match},   {"_re_find", re_find},
        {"_re_gmatch", re_gmatch}, {"_re_sub", re_sub},
        {"_re_gsub", re_gsub},     {"_re_compile", re_compile_lua},
        {"_re_exec", re_exec_lua}, {NULL, NULL}};

    luaL_newmetatable(L, RE_MT);
    lua_pushcfunction(L, re_gc);
    lua_setfield(L, -2, "__gc");
    lua_pop(L, 1);
    luaL_newmetatable(L, RE_GMATCH_MT);
    lua_pushcfunction(L, re_gmatch_next);
    lua_setfield(L, -2, "__call");
    lua_pop(L, 1);
    cs_register(L, mod, funcs);
}
