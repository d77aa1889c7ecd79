//! The Lua scripts that make each step of a task's life atomic on the server.
//!
//! The rule they keep: **the first XACK of an entry wins**. An entry is in the
//! group's pending list exactly once, so exactly one `XACK` of it returns 1; whoever
//! gets that 1 (the worker completing it, or a peer retrying or dead-lettering it after
//! its worker was lost) decides the entry's fate, in the same script, and everyone
//! else's step is a no-op counted in the pool's stats (`late`). A task whose entry was
//! written twice (a write retried after a lost reply) can send two results: its caller
//! keeps the first and drops the other, so it still sees one outcome.
//!
//! Settled entries are not deleted one by one (`XDEL` costs a scan of the entry's
//! node, on every task): [`TRIM`] cuts the stream, from time to time, below the oldest
//! entry that is still pending or not yet delivered, which frees whole nodes and can
//! never drop unprocessed work.

use redis::{Connection, RedisResult, Script};

/// Completes an entry: acknowledge, and (if first) send the result.
///
/// KEYS: tasks, reply, stats. ARGV: group, entry id, then the result's field/value
/// pairs. Returns 1 (sent) or 0 (late: the entry was already settled by someone
/// else). The reply stream's expiry and trimming by age, and the counters of results
/// sent, are done once per batch by the worker, not here: this is the hot path.
const COMPLETE: &str = r"
if redis.call('XACK', KEYS[1], ARGV[1], ARGV[2]) == 1 then
  redis.call('XADD', KEYS[2], '*', unpack(ARGV, 3))
  return 1
end
redis.call('HINCRBY', KEYS[3], 'late', 1)
return 0
";

/// Renews the leases a worker holds: resets the idle time of each entry it still
/// owns (XCLAIM JUSTID does not raise the delivery count), and names the ones it lost.
///
/// KEYS: tasks. ARGV: group, consumer, entry ids... Returns the ids it no longer owns.
const RENEW: &str = r"
local mine, lost = {}, {}
for i = 3, #ARGV do
  local p = redis.call('XPENDING', KEYS[1], ARGV[1], ARGV[i], ARGV[i], 1)
  if p[1] and p[1][2] == ARGV[2] then
    table.insert(mine, ARGV[i])
  else
    table.insert(lost, ARGV[i])
  end
end
if #mine > 0 then
  local args = {KEYS[1], ARGV[1], ARGV[2], 0}
  for _, id in ipairs(mine) do args[#args + 1] = id end
  args[#args + 1] = 'JUSTID'
  redis.call('XCLAIM', unpack(args))
end
return lost
";

/// Moves an entry on: back into the task stream (a retry or a hand-back) or into the
/// dead-letter stream, telling the caller when it is dead.
///
/// KEYS: tasks, dead, reply, stats. ARGV: group, entry id, mode (`retry`, `handback`,
/// `dead`, `bad`), result TTL (ms), the number `k` of the entry's field/value
/// arguments, those `k` arguments, then the result's field/value pairs (for `dead` and
/// `bad`; none to tell nobody). Returns 1 if moved, 0 if the entry was already
/// settled.
const MOVE: &str = r"
if redis.call('XACK', KEYS[1], ARGV[1], ARGV[2]) ~= 1 then
  redis.call('HINCRBY', KEYS[4], 'late', 1)
  return 0
end
redis.call('XDEL', KEYS[1], ARGV[2])
local k = tonumber(ARGV[5])
local entry = {}
for i = 6, 5 + k do entry[#entry + 1] = ARGV[i] end
local mode = ARGV[3]
if mode == 'retry' or mode == 'handback' then
  redis.call('XADD', KEYS[1], '*', unpack(entry))
  if mode == 'retry' then redis.call('HINCRBY', KEYS[4], 'retried', 1) end
  return 1
end
redis.call('XADD', KEYS[2], '*', unpack(entry))
redis.call('HINCRBY', KEYS[4], mode, 1)
if #ARGV > 5 + k then
  redis.call('XADD', KEYS[3], '*', unpack(ARGV, 6 + k))
  redis.call('PEXPIRE', KEYS[3], ARGV[4])
end
return 1
";

/// Cuts the task stream below the oldest entry still pending (delivered, not
/// settled) or not yet delivered: everything below it is settled.
///
/// KEYS: tasks. ARGV: group. Returns the number of entries removed.
const TRIM: &str = r"
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
local last = nil
for _, g in ipairs(redis.call('XINFO', 'GROUPS', KEYS[1])) do
  local name, delivered = nil, nil
  for i = 1, #g, 2 do
    if g[i] == 'name' then name = g[i + 1] end
    if g[i] == 'last-delivered-id' then delivered = g[i + 1] end
  end
  if name == ARGV[1] then last = delivered end
end
if not last then return 0 end
local ms, seq = string.match(last, '^(%d+)%-(%d+)$')
if not ms then return 0 end
local minid = ms .. '-' .. tostring(tonumber(seq) + 1)
local p = redis.call('XPENDING', KEYS[1], ARGV[1])
if p[1] > 0 then minid = p[2] end
return redis.call('XTRIM', KEYS[1], 'MINID', '~', minid)
";

/// The scripts, with their hashes.
pub(crate) struct Scripts {
    pub(crate) complete: Script,
    pub(crate) renew: Script,
    pub(crate) moved: Script,
    pub(crate) trim: Script,
}

impl Scripts {
    pub(crate) fn new() -> Scripts {
        Scripts {
            complete: Script::new(COMPLETE),
            renew: Script::new(RENEW),
            moved: Script::new(MOVE),
            trim: Script::new(TRIM),
        }
    }

    /// Loads every script into the server's cache (after a connect, or a NOSCRIPT
    /// reply: a restarted server has an empty cache).
    pub(crate) fn load(&self, con: &mut Connection) -> RedisResult<()> {
        redis::pipe()
            .load_script(&self.complete)
            .load_script(&self.renew)
            .load_script(&self.moved)
            .load_script(&self.trim)
            .query::<()>(con)
    }
}
