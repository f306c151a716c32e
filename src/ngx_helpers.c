/* C helpers of the ngx layer (DECISIONS.md 8, SPEC.md P2.2): hashes on
 * libcrypto, crc32, base64, URI escapes, query args and quote_sql_str, as
 * nginx 1.22 + ngx_lua 0.10.23 compute them.  cosocket/ngx.lua puts them in
 * the ngx table; the resty.core-style argument coercion (nil -> "", other
 * values -> tostring) happens there, these functions take strings. */
#include <string.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "cosocket.h"
#include "compat.h"

#define HELPERS_MAX_ARGS 100 /* ngx_lua's default for decode_args */

static const char hex_upper[] = "0123456789ABCDEF";
static const char hex_lower[] = "0123456789abcdef";

/* ---- hashes ---- */

static int helpers_digest(lua_State *L, const EVP_MD *md, int hex)
{
    size_t len;
    const char *s = luaL_checklstring(L, 1, &len);
    unsigned char out[EVP_MAX_MD_SIZE];
    char text[2 * EVP_MAX_MD_SIZE];
    unsigned int n = 0, i;

    if (!EVP_Digest(s, len, out, &n, md, NULL))
        return luaL_error(L, "digest failed");
    if (!hex) {
        lua_pushlstring(L, (const char *)out, n);
        return 1;
    }
    for (i = 0; i < n; i++) {
        text[2 * i] = hex_lower[out[i] >> 4];
        text[2 * i + 1] = hex_lower[out[i] & 15];
    }
    lua_pushlstring(L, text, 2 * (size_t)n);
    return 1;
}

static int helpers_md5(lua_State *L)
{
    return helpers_digest(L, EVP_md5(), 1);
}

static int helpers_md5_bin(lua_State *L)
{
    return helpers_digest(L, EVP_md5(), 0);
}

static int helpers_sha1_bin(lua_State *L)
{
    return helpers_digest(L, EVP_sha1(), 0);
}

/* ngx.hmac_sha1(key, data): ngx_lua's C function, its argument errors */
static int helpers_hmac_sha1(lua_State *L)
{
    size_t klen, dlen;
    const char *key, *data;
    unsigned char out[EVP_MAX_MD_SIZE];
    unsigned int n = 0;

    if (lua_gettop(L) != 2)
        return luaL_error(L, "expecting 2 arguments, but got %d",
                          lua_gettop(L));
    key = luaL_checklstring(L, 1, &klen);
    data = luaL_checklstring(L, 2, &dlen);
    if (HMAC(EVP_sha1(), key, (int)klen, (const unsigned char *)data, dlen, out,
             &n) == NULL)
        return luaL_error(L, "hmac failed");
    lua_pushlstring(L, (const char *)out, n);
    return 1;
}

/* CRC-32 (IEEE 802.3, reflected), a nibble at a time: nginx's
 * ngx_crc32_short and ngx_crc32_long compute the same value. */
static const unsigned long crc32_nibble[16] = {
    0x00000000, 0x1db71064, 0x3b6e20c8, 0x26d930ac, 0x76dc4190, 0x6b6b51f4,
    0x4db26158, 0x5005713c, 0xedb88320, 0xf00f9344, 0xd6d6a3e8, 0xcb61b38c,
    0x9b64c2b0, 0x86d3d2d4, 0xa00ae278, 0xbdbdf21c};

static int helpers_crc32(lua_State *L)
{
    size_t len, i;
    const unsigned char *p =
        (const unsigned char *)luaL_checklstring(L, 1, &len);
    unsigned long crc = 0xffffffff;

    for (i = 0; i < len; i++) {
        crc = crc32_nibble[(crc ^ p[i]) & 15] ^ (crc >> 4);
        crc = crc32_nibble[(crc ^ (p[i] >> 4)) & 15] ^ (crc >> 4);
    }
    lua_pushinteger(L, (lua_Integer)(crc ^ 0xffffffff));
    return 1;
}

/* ---- base64 ---- */

static const char b64_chars[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/* _encode_base64(s, no_padding) */
static int helpers_encode_base64(lua_State *L)
{
    size_t len, i = 0;
    const unsigned char *s =
        (const unsigned char *)luaL_checklstring(L, 1, &len);
    int pad = !lua_toboolean(L, 2);
    luaL_Buffer b;
    char q[4];

    luaL_buffinit(L, &b);
    for (; len - i > 2; i += 3) {
        q[0] = b64_chars[s[i] >> 2];
        q[1] = b64_chars[((s[i] & 3) << 4) | (s[i + 1] >> 4)];
        q[2] = b64_chars[((s[i + 1] & 15) << 2) | (s[i + 2] >> 6)];
        q[3] = b64_chars[s[i + 2] & 63];
        luaL_addlstring(&b, q, 4);
    }
    if (i < len) {
        size_t n = 2;

        q[0] = b64_chars[s[i] >> 2];
        if (len - i == 1) {
            q[1] = b64_chars[(s[i] & 3) << 4];
            q[2] = q[3] = '=';
        } else {
            q[1] = b64_chars[((s[i] & 3) << 4) | (s[i + 1] >> 4)];
            q[2] = b64_chars[(s[i + 1] & 15) << 2];
            q[3] = '=';
            n = 3;
        }
        luaL_addlstring(&b, q, pad ? 4 : n);
    }
    luaL_pushresult(&b);
    return 1;
}

static int b64_value(unsigned char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '+')
        return 62;
    if (c == '/')
        return 63;
    return -1;
}

/* _decode_base64(s): nil on invalid input, as nginx's ngx_decode_base64:
 * everything from the first '=' on is ignored, padding is optional, the
 * unused low bits of the last character are not checked. */
static int helpers_decode_base64(lua_State *L)
{
    size_t len, n, i;
    const unsigned char *s;
    luaL_Buffer b;

    luaL_checktype(L, 1, LUA_TSTRING);
    s = (const unsigned char *)lua_tolstring(L, 1, &len);
    for (n = 0; n < len && s[n] != '='; n++)
        if (b64_value(s[n]) < 0) {
            lua_pushnil(L);
            return 1;
        }
    if (n % 4 == 1) {
        lua_pushnil(L);
        return 1;
    }
    luaL_buffinit(L, &b);
    for (i = 0; i + 1 < n; i += 4) {
        unsigned long v = 0;
        size_t k, chars = n - i < 4 ? n - i : 4;

        for (k = 0; k < 4; k++)
            v = (v << 6) | (k < chars ? (unsigned long)b64_value(s[i + k]) : 0);
        luaL_addchar(&b, (char)((v >> 16) & 255));
        if (chars > 2)
            luaL_addchar(&b, (char)((v >> 8) & 255));
        if (chars > 3)
            luaL_addchar(&b, (char)(v & 255));
    }
    luaL_pushresult(&b);
    return 1;
}

/* ---- URI escapes ---- */

/* Bytes each escape type turns into %XX, one bit per byte: ngx_lua's
 * tables (read off the oracle byte by byte).  0 uri, 1 args, 2 uri
 * component (the default: all but A-Za-z0-9 -._~ and !'()*), 3 html,
 * 4 refresh, 5 memcached, 6 mail auth. */
static const unsigned long escape_bits[7][8] = {
    {0xffffffff, 0x80000029, 0x00000000, 0x80000000, 0xffffffff, 0xffffffff,
     0xffffffff, 0xffffffff},
    {0xffffffff, 0x80000829, 0x00000000, 0x80000000, 0xffffffff, 0xffffffff,
     0xffffffff, 0xffffffff},
    {0xffffffff, 0xfc00987d, 0x78000001, 0xb8000001, 0xffffffff, 0xffffffff,
     0xffffffff, 0xffffffff},
    {0xffffffff, 0x000000ad, 0x00000000, 0x80000000, 0xffffffff, 0xffffffff,
     0xffffffff, 0xffffffff},
    {0xffffffff, 0x00000085, 0x00000000, 0x80000000, 0xffffffff, 0xffffffff,
     0xffffffff, 0xffffffff},
    {0xffffffff, 0x00000021, 0x00000000, 0x00000000, 0x00000000, 0x00000000,
     0x00000000, 0x00000000},
    {0xffffffff, 0x00000021, 0x00000000, 0x00000000, 0x00000000, 0x00000000,
     0x00000000, 0x00000000}};

#define ESCAPE_COMPONENT 2

static void escape_add(luaL_Buffer *b, const unsigned char *s, size_t len,
                       int type)
{
    const unsigned long *bits = escape_bits[type];
    size_t i, start = 0;

    for (i = 0; i < len; i++) {
        unsigned char c = s[i];
        char q[3];

        if (!(bits[c >> 5] & (1UL << (c & 31))))
            continue;
        luaL_addlstring(b, (const char *)s + start, i - start);
        q[0] = '%';
        q[1] = hex_upper[c >> 4];
        q[2] = hex_upper[c & 15];
        luaL_addlstring(b, q, 3);
        start = i + 1;
    }
    luaL_addlstring(b, (const char *)s + start, len - start);
}

/* _escape_uri(s, type): type 0..6 (ngx.lua checks it first) */
static int helpers_escape_uri(lua_State *L)
{
    size_t len;
    const char *s = luaL_checklstring(L, 1, &len);
    lua_Integer type = luaL_optinteger(L, 2, ESCAPE_COMPONENT);
    luaL_Buffer b;

    luaL_argcheck(L, type >= 0 && type <= 6, 2, "type out of range");
    luaL_buffinit(L, &b);
    escape_add(&b, (const unsigned char *)s, len, (int)type);
    luaL_pushresult(&b);
    return 1;
}

static int hex_value(unsigned char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    c |= 0x20;
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    return -1;
}

/* %XX decoded, '+' to a space, malformed escapes kept as they are */
static void unescape_add(luaL_Buffer *b, const char *s, size_t len)
{
    size_t i;

    for (i = 0; i < len; i++) {
        int hi, lo;

        if (s[i] == '+') {
            luaL_addchar(b, ' ');
        } else if (s[i] == '%' && len - i > 2 &&
                   (hi = hex_value((unsigned char)s[i + 1])) >= 0 &&
                   (lo = hex_value((unsigned char)s[i + 2])) >= 0) {
            luaL_addchar(b, (char)(hi * 16 + lo));
            i += 2;
        } else {
            luaL_addchar(b, s[i]);
        }
    }
}

static int helpers_unescape_uri(lua_State *L)
{
    size_t len;
    const char *s = luaL_checklstring(L, 1, &len);
    luaL_Buffer b;

    luaL_buffinit(L, &b);
    unescape_add(&b, s, len);
    luaL_pushresult(&b);
    return 1;
}

/* ---- query args ---- */

/* One pair of encode_args into the pieces table at t: "key", "key=value"
 * (value: the string or number at the top), escaped. */
static void args_pair(lua_State *L, int t, const char *key, size_t klen,
                      int with_value)
{
    size_t vlen = 0;
    const char *v = NULL;
    luaL_Buffer b;

    if (with_value) {
        int type = lua_type(L, -1);

        if (type != LUA_TSTRING && type != LUA_TNUMBER)
            luaL_error(L, "attempt to use %s as query arg value",
                       luaL_typename(L, -1));
        v = lua_tolstring(L, -1, &vlen); /* a copy on the stack: safe */
    }
    luaL_buffinit(L, &b); /* no stack index is used until pushresult */
    escape_add(&b, (const unsigned char *)key, klen, ESCAPE_COMPONENT);
    if (with_value) {
        luaL_addchar(&b, '=');
        escape_add(&b, (const unsigned char *)v, vlen, ESCAPE_COMPONENT);
    }
    luaL_pushresult(&b);
    lua_rawseti(L, t, (int)cs_rawlen(L, t) + 1);
}

/* ngx.encode_args(t): ngx_lua's C function.  true: a bare key, false:
 * nothing, a table: the key repeated for each of its values. */
static int helpers_encode_args(lua_State *L)
{
    luaL_Buffer b;
    int i, n;

    if (lua_gettop(L) != 1)
        return luaL_error(L, "expecting 1 argument but seen %d", lua_gettop(L));
    luaL_checktype(L, 1, LUA_TTABLE);
    lua_newtable(L); /* 2: the pairs, escaped */
    lua_pushnil(L);
    while (lua_next(L, 1) != 0) {
        size_t klen;
        const char *key;

        if (lua_type(L, -2) != LUA_TSTRING)
            return luaL_error(L, "attempt to use a non-string key in the "
                                 "\"args\" option table");
        key = lua_tolstring(L, -2, &klen);
        if (lua_type(L, -1) == LUA_TBOOLEAN) {
            if (lua_toboolean(L, -1))
                args_pair(L, 2, key, klen, 0);
        } else if (lua_type(L, -1) == LUA_TTABLE) {
            lua_pushnil(L);
            while (lua_next(L, -2) != 0) {
                if (lua_type(L, -1) != LUA_TBOOLEAN)
                    args_pair(L, 2, key, klen, 1);
                else if (lua_toboolean(L, -1))
                    args_pair(L, 2, key, klen, 0);
                lua_pop(L, 1);
            }
        } else {
            args_pair(L, 2, key, klen, 1);
        }
        lua_pop(L, 1);
    }
    n = (int)cs_rawlen(L, 2);
    luaL_buffinit(L, &b);
    for (i = 1; i <= n; i++) {
        if (i > 1)
            luaL_addchar(&b, '&');
        lua_rawgeti(L, 2, i);
        luaL_addvalue(&b);
    }
    luaL_pushresult(&b);
    return 1;
}

/* key, value on the stack: into the table at t, repeated keys become an
 * array of their values (ngx_http_lua_set_multi_value_table). */
static void args_set(lua_State *L, int t)
{
    lua_pushvalue(L, -2);
    lua_rawget(L, t);
    if (lua_isnil(L, -1)) {
        lua_pop(L, 1);
        lua_rawset(L, t);
    } else if (!lua_istable(L, -1)) {
        lua_createtable(L, 4, 0);
        lua_insert(L, -2);
        lua_rawseti(L, -2, 1); /* the old value */
        lua_insert(L, -2);
        lua_rawseti(L, -2, 2); /* the new one */
        lua_rawset(L, t);
    } else {
        lua_insert(L, -2);
        lua_rawseti(L, -2, (int)cs_rawlen(L, -2) + 1);
        lua_pop(L, 2);
    }
}

/* Pushes s unescaped (keys and values are unescaped apart). */
static void args_push(lua_State *L, const char *s, size_t len)
{
    luaL_Buffer b;

    luaL_buffinit(L, &b);
    unescape_add(&b, s, len);
    luaL_pushresult(&b);
}

/* One key or key=value piece ends: set it unless its key is empty. */
static void args_piece(lua_State *L, int t, const char *s, size_t len,
                       int has_key)
{
    size_t klen;

    args_push(L, s, len);
    if (!has_key)
        lua_pushboolean(L, 1);
    lua_tolstring(L, -2, &klen);
    if (klen == 0)
        lua_pop(L, 2);
    else
        args_set(L, t);
}

/* ngx.decode_args(s, max?): ngx_lua's C function.  At most max pairs
 * (default 100, 0 or less: all); the limit counts every '&', empty pairs
 * too, and cutting short returns "truncated" too. */
static int helpers_decode_args(lua_State *L)
{
    int n = lua_gettop(L), count = 0, in_value = 0, t;
    lua_Integer max = HELPERS_MAX_ARGS;
    size_t len, p, q = 0;
    const char *s;

    if (n != 1 && n != 2)
        return luaL_error(L, "expecting 1 or 2 arguments but seen %d", n);
    s = luaL_checklstring(L, 1, &len);
    if (n == 2)
        max = luaL_checkinteger(L, 2);
    lua_createtable(L, 0, 4);
    t = lua_gettop(L);
    for (p = 0; p < len; p++) {
        if (s[p] == '=' && !in_value) {
            args_push(L, s + q, p - q); /* the key, its value follows */
            q = p + 1;
            in_value = 1;
        } else if (s[p] == '&') {
            args_piece(L, t, s + q, p - q, in_value);
            q = p + 1;
            in_value = 0;
            if (max > 0 && ++count == max) {
                lua_pushliteral(L, "truncated");
                return 2;
            }
        }
    }
    if (q < len || in_value)
        args_piece(L, t, s + q, len - q, in_value);
    return 1;
}

/* ---- SQL ---- */

/* ngx.quote_sql_str(s): MySQL's escapes inside single quotes */
static int helpers_quote_sql_str(lua_State *L)
{
    size_t len, i;
    const char *s;
    luaL_Buffer b;

    if (lua_gettop(L) != 1)
        return luaL_error(L, "expecting one argument");
    s = luaL_checklstring(L, 1, &len);
    luaL_buffinit(L, &b);
    luaL_addchar(&b, '\'');
    for (i = 0; i < len; i++) {
        const char *esc = NULL;

        switch (s[i]) {
        case '\0':
            esc = "\\0";
            break;
        case '\b':
            esc = "\\b";
            break;
        case '\n':
            esc = "\\n";
            break;
        case '\r':
            esc = "\\r";
            break;
        case '\t':
            esc = "\\t";
            break;
        case 26:
            esc = "\\Z";
            break;
        case '\\':
            esc = "\\\\";
            break;
        case '\'':
            esc = "\\'";
            break;
        case '"':
            esc = "\\\"";
            break;
        default:
            break;
        }
        if (esc != NULL)
            luaL_addlstring(&b, esc, 2);
        else
            luaL_addchar(&b, s[i]);
    }
    luaL_addchar(&b, '\'');
    luaL_pushresult(&b);
    return 1;
}

void cs_open_ngx_helpers(lua_State *L, int mod)
{
    static const luaL_Reg funcs[] = {{"_md5", helpers_md5},
                                     {"_md5_bin", helpers_md5_bin},
                                     {"_sha1_bin", helpers_sha1_bin},
                                     {"_hmac_sha1", helpers_hmac_sha1},
                                     {"_crc32", helpers_crc32},
                                     {"_encode_base64", helpers_encode_base64},
                                     {"_decode_base64", helpers_decode_base64},
                                     {"_escape_uri", helpers_escape_uri},
                                     {"_unescape_uri", helpers_unescape_uri},
                                     {"_encode_args", helpers_encode_args},
                                     {"_decode_args", helpers_decode_args},
                                     {"_quote_sql_str", helpers_quote_sql_str},
                                     {NULL, NULL}};

    cs_register(L, mod, funcs);
    cs_open_ngx_re(L, mod);
}
