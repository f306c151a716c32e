/* cosocket.configure{...}: the nginx directives of SPEC.md 7.3 under the
 * names of DECISIONS.md 5.  Every key is checked and stored from the start,
 * even before the feature that reads it exists; unknown keys raise. */
#include <arpa/inet.h>
#include <stdlib.h>
#include <string.h>

#include "cosocket.h"
#include "compat.h"

enum { KEY_MS, KEY_INT, KEY_BOOL, KEY_STR };

typedef struct config_key {
    const char *name;
    int type;
    size_t offset;
    lua_Number min, max;
    int (*valid)(const char *s); /* strings: 0 when malformed */
} config_key;

static int valid_protocols(const char *s);
static int valid_resolver(const char *s);

#define MS(f)          KEY_MS, offsetof(cs_config, f), 0, 2147483647.0
#define INT(f, lo, hi) KEY_INT, offsetof(cs_config, f), lo, hi
#define BOOL(f)        KEY_BOOL, offsetof(cs_config, f), 0, 1
#define STR(f)         KEY_STR, offsetof(cs_config, f), 0, 0

static const config_key config_keys[] = {
    {"connect_timeout", MS(connect_timeout), NULL},
    {"send_timeout", MS(send_timeout), NULL},
    {"read_timeout", MS(read_timeout), NULL},
    {"keepalive_timeout", MS(keepalive_timeout), NULL},
    {"resolver_timeout", MS(resolver_timeout), NULL},
    {"buffer_size", INT(buffer_size, 1, 1 << 30), NULL},
    {"pool_size", INT(pool_size, 1, 1 << 30), NULL},
    {"ssl_verify_depth", INT(ssl_verify_depth, 0, 100), NULL},
    {"max_pending_timers", INT(max_pending_timers, 0, 1 << 30), NULL},
    {"max_running_timers", INT(max_running_timers, 0, 1 << 30), NULL},
    {"send_lowat", INT(send_lowat, 0, 1 << 30), NULL},
    {"log_level", INT(log_level, 0, 8), NULL},
    {"log_errors", BOOL(log_errors), NULL},
    {"prefer_ipv6", BOOL(prefer_ipv6), NULL},
    {"ssl_trusted_certificate", STR(trusted_ref), NULL},
    {"ssl_protocols", STR(protocols_ref), valid_protocols},
    {"ssl_ciphers", STR(ciphers_ref), NULL},
    {"resolver", STR(resolver_ref), valid_resolver},
    {NULL, 0, 0, 0, 0, NULL}};

void cs_config_defaults(cs_config *cfg)
{
    cfg->connect_timeout = 60000;
    cfg->send_timeout = 60000;
    cfg->read_timeout = 60000;
    cfg->keepalive_timeout = 60000;
    cfg->resolver_timeout = 30000;
    cfg->buffer_size = 4096;
    cfg->pool_size = 30;
    cfg->ssl_verify_depth = 9; /* (D): 1 rejects common chains */
    cfg->max_pending_timers = 1024;
    cfg->max_running_timers = 256;
    cfg->send_lowat = 0;
    cfg->log_level = 4;  /* ngx.ERR */
    cfg->log_errors = 0; /* (D): a library stays quiet */
    cfg->prefer_ipv6 = 0;
    cfg->trusted_ref = cfg->protocols_ref = LUA_NOREF;
    cfg->ciphers_ref = cfg->resolver_ref = LUA_NOREF;
}

/* Space-separated words, each accepted by ok(word, len). */
static int valid_words(const char *s, int (*ok)(const char *, size_t))
{
    int words = 0;

    for (;;) {
        size_t len;

        s += strspn(s, " \t");
        if (*s == '\0')
            return words > 0;
        len = strcspn(s, " \t");
        if (!ok(s, len))
            return 0;
        words++;
        s += len;
    }
}

static int protocol_ok(const char *w, size_t len)
{
    static const char *const names[] = {"SSLv2",   "SSLv3",   "TLSv1",
                                        "TLSv1.1", "TLSv1.2", "TLSv1.3"};
    size_t i;

    for (i = 0; i < sizeof(names) / sizeof(names[0]); i++)
        if (strlen(names[i]) == len && memcmp(names[i], w, len) == 0)
            return 1;
    return 0;
}

static int valid_protocols(const char *s)
{
    return valid_words(s, protocol_ok);
}

/* "ip", "ip:port", "[ipv6]" or "[ipv6]:port" (nginx's resolver syntax);
 * a bare IPv6 address is accepted too. */
static int nameserver_ok(const char *w, size_t len)
{
    char buf[64];
    unsigned char addr[16];
    const char *host = buf, *port = NULL, *colon;

    if (len == 0 || len >= sizeof(buf))
        return 0;
    memcpy(buf, w, len);
    buf[len] = '\0';
    if (buf[0] == '[') {
        char *end = strchr(buf, ']');
        if (end == NULL)
            return 0;
        *end = '\0';
        host = buf + 1;
        if (end[1] == ':')
            port = end + 2;
        else if (end[1] != '\0')
            return 0;
        if (inet_pton(AF_INET6, host, addr) != 1)
            return 0;
    } else if (inet_pton(AF_INET6, buf, addr) == 1) {
        return 1;
    } else {
        colon = strchr(buf, ':');
        if (colon != NULL) {
            buf[colon - buf] = '\0';
            port = colon + 1;
        }
        if (inet_pton(AF_INET, host, addr) != 1)
            return 0;
    }
    if (port != NULL) {
        char *end;
        long p = strtol(port, &end, 10);
        if (*port == '\0' || *end != '\0' || p < 1 || p > 65535)
            return 0;
    }
    return 1;
}

static int valid_resolver(const char *s)
{
    return valid_words(s, nameserver_ok);
}

static const config_key *config_find(const char *name)
{
    const config_key *k;

    for (k = config_keys; k->name != NULL; k++)
        if (strcmp(k->name, name) == 0)
            return k;
    return NULL;
}

/* Raises unless the value at -1 suits k. */
static void config_check(lua_State *L, const config_key *k)
{
    static const char *const expected[] = {"number", "number", "boolean",
                                           "string"};
    static const int types[] = {LUA_TNUMBER, LUA_TNUMBER, LUA_TBOOLEAN,
                                LUA_TSTRING};
    lua_Number n;

    if (k->type == KEY_STR && lua_type(L, -1) == LUA_TBOOLEAN &&
        !lua_toboolean(L, -1))
        return; /* false: back to the default */
    if (lua_type(L, -1) != types[k->type])
        luaL_error(L, "bad value for \"%s\": %s expected, got %s", k->name,
                   expected[k->type], luaL_typename(L, -1));
    if (k->type == KEY_STR) {
        if (k->valid != NULL && !k->valid(lua_tostring(L, -1)))
            luaL_error(L, "bad value for \"%s\": %s", k->name,
                       lua_tostring(L, -1));
        return;
    }
    if (k->type == KEY_BOOL)
        return;
    n = lua_tonumber(L, -1);
    if (!(n >= k->min && n <= k->max) || /* NaN too */
        (k->type == KEY_INT && n != (int)n))
        luaL_error(L, "bad value for \"%s\": %f", k->name, n);
}

static void config_store(lua_State *L, cs_config *cfg, const config_key *k)
{
    char *field = (char *)cfg + k->offset;

    switch (k->type) {
    case KEY_MS:
        *(double *)(void *)field = lua_tonumber(L, -1);
        break;
    case KEY_INT:
        *(int *)(void *)field = (int)lua_tonumber(L, -1);
        break;
    case KEY_BOOL:
        *(int *)(void *)field = lua_toboolean(L, -1);
        break;
    default:
        luaL_unref(L, LUA_REGISTRYINDEX, *(int *)(void *)field);
        *(int *)(void *)field = LUA_NOREF;
        if (lua_isstring(L, -1)) {
            lua_pushvalue(L, -1);
            *(int *)(void *)field = luaL_ref(L, LUA_REGISTRYINDEX);
        }
        break;
    }
}

static void config_push(lua_State *L, cs_config *cfg, const config_key *k)
{
    char *field = (char *)cfg + k->offset;

    switch (k->type) {
    case KEY_MS:
        lua_pushnumber(L, *(double *)(void *)field);
        break;
    case KEY_INT:
        lua_pushinteger(L, *(int *)(void *)field);
        break;
    case KEY_BOOL:
        lua_pushboolean(L, *(int *)(void *)field);
        break;
    default:
        lua_rawgeti(L, LUA_REGISTRYINDEX, *(int *)(void *)field);
        break;
    }
}

/* configure{...}: checks every pair first, then stores them all (a bad
 * value changes nothing).  Returns the whole configuration as a table. */
static int config_configure(lua_State *L)
{
    cs_sched *s = cs_sched_get(L);
    const config_key *k;
    int pass;

    if (!lua_isnoneornil(L, 1))
        luaL_checktype(L, 1, LUA_TTABLE);
    for (pass = 0; pass < 2 && lua_istable(L, 1); pass++) {
        lua_pushnil(L);
        while (lua_next(L, 1) != 0) {
            if (lua_type(L, -2) != LUA_TSTRING)
                luaL_error(L, "configuration keys are strings");
            k = config_find(lua_tostring(L, -2));
            if (k == NULL)
                luaL_error(L, "unknown configuration key \"%s\"",
                           lua_tostring(L, -2));
            if (pass == 0)
                config_check(L, k);
            else
                config_store(L, &s->cfg, k);
            lua_pop(L, 1);
        }
    }
    if (lua_istable(L, 1))
        s->cfg_gen++; /* the resolver remakes its channel */
    lua_newtable(L);
    for (k = config_keys; k->name != NULL; k++) {
        config_push(L, &s->cfg, k);
        lua_setfield(L, -2, k->name);
    }
    return 1;
}

/* log_level(): the ngx.log threshold, read on every ngx.log call */
static int config_log_level(lua_State *L)
{
    lua_pushinteger(L, cs_sched_get(L)->cfg.log_level);
    return 1;
}

void cs_open_config(lua_State *L, int mod)
{
    static const luaL_Reg funcs[] = {{"configure", config_configure},
                                     {"log_level", config_log_level},
                                     {NULL, NULL}};

    cs_register(L, mod, funcs);
}
