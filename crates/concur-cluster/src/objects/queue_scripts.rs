//! The Lua scripts of a [`Queue`](super::Queue): each step of an item's life, atomic
//! on the server. The keys they use are listed in the module `queue`.

use std::sync::LazyLock;

use redis::Script;

use super::ctx;

/// Makes the group (from the stream's start) and the state, or checks them. KEYS:
/// items, state. ARGV: group, maxsize, type. Returns `{maxsize, type}` as stored.
pub(super) static INIT: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local ok, e = pcall(redis.call, 'XGROUP', 'CREATE', KEYS[1], ARGV[1], '0', 'MKSTREAM')
if not ok and not string.find(tostring(e.err or e), 'BUSYGROUP') then return redis.error_reply(tostring(e.err or e)) end
redis.call('HSETNX', KEYS[2], 'maxsize', ARGV[2])
redis.call('HSETNX', KEYS[2], 'type', ARGV[3])
return {redis.call('HGET', KEYS[2], 'maxsize'), redis.call('HGET', KEYS[2], 'type')}
",
    )
});

/// Queues an item unless the queue is shut down or full. KEYS: items, state, room,
/// session. ARGV: group, maxsize, item, session seq. Returns `{'ok'}` (or `{'dup', _}`
/// for a retry of a put that happened), `{'shut'}`, or `{'full', last room id}`.
pub(super) static PUT: LazyLock<Script> = LazyLock::new(|| {
    Script::new(&format!(
        r"
{}
if redis.call('HGET', KEYS[2], 'shutdown') then return {{'shut'}} end
local max = tonumber(ARGV[2])
if max > 0 then
  local n = redis.call('XLEN', KEYS[1])
  if n >= max then
    local ok, p = pcall(redis.call, 'XPENDING', KEYS[1], ARGV[1])
    local pending = 0
    if ok then pending = p[1] end
    if n - pending >= max then
      local l = redis.call('XREVRANGE', KEYS[3], '+', '-', 'COUNT', 1)
      if l[1] then return {{'full', l[1][1]}} end
      return {{'full', '0-0'}}
    end
  end
end
redis.call('XADD', KEYS[1], '*', 'd', ARGV[3])
{}
return {{'ok'}}
",
        ctx::session_check(4, 4),
        ctx::session_record(4, 4, "'put'"),
    ))
});

/// Takes up to `count` entries: new ones, else ones whose lease lapsed. KEYS: items,
/// state, room, blocked. ARGV: group, consumer, count, lease ms, bounded (`0`/`1`),
/// client id (registered in `blocked` if nothing was taken; empty: do not). Returns
/// `{'ok', redelivered, id, has_item, item, ...}`, `{'shut'}` or `{'empty'}`.
pub(super) static GET: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local sd = redis.call('HGET', KEYS[2], 'shutdown')
if sd == 'now' then return {'shut'} end
local out = {'ok', '0'}
local entries = {}
local r = redis.call('XREADGROUP', 'GROUP', ARGV[1], ARGV[2], 'COUNT', ARGV[3], 'STREAMS', KEYS[1], '>')
if r then entries = r[1][2] end
if #entries == 0 then
  local c = redis.call('XAUTOCLAIM', KEYS[1], ARGV[1], ARGV[2], ARGV[4], '0-0', 'COUNT', ARGV[3])
  entries = c[2]
  out[2] = '1'
end
local n = 0
for _, e in ipairs(entries) do
  if e and e[2] then
    local item = false
    for i = 1, #e[2], 2 do if e[2][i] == 'd' then item = e[2][i + 1] end end
    out[#out + 1] = e[1]
    if item then
      out[#out + 1] = '1'
      out[#out + 1] = item
    else
      out[#out + 1] = '0'
      out[#out + 1] = ''
    end
    n = n + 1
  end
end
if n > 0 then
  if ARGV[5] == '1' then redis.call('XADD', KEYS[3], 'MAXLEN', '~', '16', '*', 'r', '1') end
  return out
end
if sd then return {'shut'} end
if ARGV[6] ~= '' then redis.call('SADD', KEYS[4], ARGV[6]) end
return {'empty'}
",
    )
});

/// Acknowledges an entry this consumer holds and deletes it. KEYS: items, done.
/// ARGV: group, consumer, id. Returns 1 (done), 0 (another consumer holds it now) or
/// 2 (not pending: acknowledged already).
pub(super) static ACK: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local p = redis.call('XPENDING', KEYS[1], ARGV[1], ARGV[3], ARGV[3], 1)
if p[1] then
  if p[1][2] ~= ARGV[2] then return 0 end
  redis.call('XACK', KEYS[1], ARGV[1], ARGV[3])
  redis.call('XDEL', KEYS[1], ARGV[3])
  if redis.call('XLEN', KEYS[1]) == 0 then
    redis.call('XADD', KEYS[2], 'MAXLEN', '~', '16', '*', 'd', '1')
  end
  return 1
end
return 2
",
    )
});

/// Moves entries this consumer holds: back to the stream's end (`back`) or to the
/// dead-letter stream with a cause (`dead`); then forgets the consumer if it holds
/// nothing more. KEYS: items, dead, done. ARGV: group, consumer, mode, cause, then
/// (id, has_item, item) triples.
pub(super) static MOVE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
for i = 5, #ARGV, 3 do
  local p = redis.call('XPENDING', KEYS[1], ARGV[1], ARGV[i], ARGV[i], 1)
  if p[1] and p[1][2] == ARGV[2] then
    redis.call('XACK', KEYS[1], ARGV[1], ARGV[i])
    redis.call('XDEL', KEYS[1], ARGV[i])
    if ARGV[3] == 'back' and ARGV[i + 1] == '1' then
      redis.call('XADD', KEYS[1], '*', 'd', ARGV[i + 2])
    else
      redis.call('XADD', KEYS[2], '*', 'id', ARGV[i], 'd', ARGV[i + 2], 'cause', ARGV[4])
    end
  end
end
if redis.call('XLEN', KEYS[1]) == 0 then
  redis.call('XADD', KEYS[3], 'MAXLEN', '~', '16', '*', 'd', '1')
end
local mine = redis.call('XPENDING', KEYS[1], ARGV[1], '-', '+', 1, ARGV[2])
if #mine == 0 then redis.call('XGROUP', 'DELCONSUMER', KEYS[1], ARGV[1], ARGV[2]) end
return 1
",
    )
});

/// Shuts the queue down; `immediate` (ARGV 2 = `1`) also drops the items not taken
/// (and those whose lease lapsed: ARGV 3, lease ms). KEYS: items, state, room, done,
/// blocked. ARGV: group. Returns the client ids blocked in a `get`, to unblock.
pub(super) static SHUTDOWN: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
if ARGV[2] == '1' then
  redis.call('HSET', KEYS[2], 'shutdown', 'now')
  local last = '0-0'
  for _, g in ipairs(redis.call('XINFO', 'GROUPS', KEYS[1])) do
    local name, delivered = nil, nil
    for i = 1, #g, 2 do
      if g[i] == 'name' then name = g[i + 1] end
      if g[i] == 'last-delivered-id' then delivered = g[i + 1] end
    end
    if name == ARGV[1] then last = delivered end
  end
  while true do
    local es = redis.call('XRANGE', KEYS[1], '(' .. last, '+', 'COUNT', 500)
    if #es == 0 then break end
    local ids = {}
    for _, e in ipairs(es) do ids[#ids + 1] = e[1] end
    redis.call('XDEL', KEYS[1], unpack(ids))
    last = ids[#ids]
  end
  local cursor = '0-0'
  repeat
    local c = redis.call('XAUTOCLAIM', KEYS[1], ARGV[1], '__shutdown__', ARGV[3], cursor, 'COUNT', 100, 'JUSTID')
    cursor = c[1]
    for _, id in ipairs(c[2]) do
      redis.call('XACK', KEYS[1], ARGV[1], id)
      redis.call('XDEL', KEYS[1], id)
    end
  until cursor == '0-0'
  redis.call('XGROUP', 'DELCONSUMER', KEYS[1], ARGV[1], '__shutdown__')
elseif not redis.call('HGET', KEYS[2], 'shutdown') then
  redis.call('HSET', KEYS[2], 'shutdown', 'drain')
end
if redis.call('XLEN', KEYS[1]) == 0 then
  redis.call('XADD', KEYS[4], 'MAXLEN', '~', '16', '*', 'd', '1')
end
redis.call('XADD', KEYS[3], 'MAXLEN', '~', '16', '*', 'r', '1')
local ids = redis.call('SMEMBERS', KEYS[5])
redis.call('DEL', KEYS[5])
return ids
",
    )
});

/// Items queued and not taken (XLEN minus the pending entries). KEYS: items. ARGV:
/// group.
pub(super) static QSIZE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local n = redis.call('XLEN', KEYS[1])
local ok, p = pcall(redis.call, 'XPENDING', KEYS[1], ARGV[1])
if ok then n = n - p[1] end
return n
",
    )
});

/// `{'1'}` if no item is unfinished, else `{'0', last done id}`. KEYS: items, done.
pub(super) static JOINED: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
if redis.call('XLEN', KEYS[1]) == 0 then return {'1'} end
local l = redis.call('XREVRANGE', KEYS[2], '+', '-', 'COUNT', 1)
if l[1] then return {'0', l[1][1]} end
return {'0', '0-0'}
",
    )
});
