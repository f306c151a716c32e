/* Gathering of send data into the scheduler's iovec scratch (gather.c). */
#ifndef COSOCKET_GATHER_H
#define COSOCKET_GATHER_H

#include "cosocket.h"

/* The value at idx as s->iov entries (returned count, *total bytes); the
 * pieces point into Lua strings that idx anchors, and into s->nums.  May
 * raise: ngx_lua's argument errors, "no memory". */
int cs_gather(lua_State *L, cs_sched *s, int idx, size_t *total);

#endif
