//! The Lua scripts that make each step of a task's life atomic on the server.
//!
//! The rule they keep: **the first XACK of an entry wins**. An entry is in the
//! group's pending list exactly once, so exactly one `XACK` of it returns 1; whoever
//! gets that 1 (the worker completing it, or a peer retrying or dead-lettering it after
//! its worker was lost) decides the entry's fate, in the same script, and everyone
//! else's step is a no-op counted in the pool's stats (`late`). A task retried after a
//! lost reply could exist twice in the stream; `SET done:<task> NX` in the same script
//! makes sure its caller still gets one result (`duplicates`).

use redis::{Connection, RedisResult, Script};

/// Completes an entry: acknowledge, delete, and (if first for its task) send the result.
///
/// KEYS: tasks, reply, done, stats. ARGV: group, entry id, result TTL (ms), trim
/// MINID for the reply stream, the stats counter to raise, then the result's
/// field/value pairs. Returns 1 (sent), 2 (a duplicate of a completed task, dropped) or
/// 0 (late: the entry was already settled by someone else).
const COMPLETE: &str = r"
if redis.call('XACK', KEYS[1], ARGV[1], ARGV[2]) == 1 then
  redis.call('XDEL', KEYS[1], ARGV[2])
  if redis.call('SET', KEYS[3], '1', 'NX', 'PX', ARGV[3]) then
    redis.call('XADD', KEYS[2], 'MINID', '~', ARGV[4], '*', unpack(ARGV, 6))
    redis.call('PEXPIRE', KEYS[2], ARGV[3])
    redis.call('HINCRBY', KEYS[4], ARGV[5], 1)
    return 1
  end
  redis.call('HINCRBY', KEYS[4], 'duplicates', 1)
  return 2
end
redis.call('HINCRBY', KEYS[4], 'late', 1)
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
/// KEYS: tasks, dead, reply, done, stats. ARGV: group, entry id, mode (`retry`,
/// `handback`, `dead`, `bad`), result TTL (ms), trim MINID, the number `k` of the
/// entry's field/value arguments, those `k` arguments, then the result's field/value
/// pairs (for `dead` and `bad`; none to tell nobody). Returns 1 if moved, 0 if the
/// entry was already settled.
const MOVE: &str = r"
if redis.call('XACK', KEYS[1], ARGV[1], ARGV[2]) ~= 1 then
  redis.call('HINCRBY', KEYS[5], 'late', 1)
  return 0
end
redis.call('XDEL', KEYS[1], ARGV[2])
local k = tonumber(ARGV[6])
local entry = {}
for i = 7, 6 + k do entry[#entry + 1] = ARGV[i] end
local mode = ARGV[3]
if mode == 'retry' or mode == 'handback' then
  redis.call('XADD', KEYS[1], '*', unpack(entry))
  if mode == 'retry' then redis.call('HINCRBY', KEYS[5], 'retried', 1) end
  return 1
end
redis.call('XADD', KEYS[2], '*', unpack(entry))
redis.call('HINCRBY', KEYS[5], mode, 1)
if #ARGV > 6 + k and redis.call('SET', KEYS[4], '1', 'NX', 'PX', ARGV[4]) then
  redis.call('XADD', KEYS[3], 'MINID', '~', ARGV[5], '*', unpack(ARGV, 7 + k))
  redis.call('PEXPIRE', KEYS[3], ARGV[4])
end
return 1
";

/// The scripts, with their hashes.
pub(crate) struct Scripts {
    pub(crate) complete: Script,
    pub(crate) renew: Script,
    pub(crate) moved: Script,
}

impl Scripts {
    pub(crate) fn new() -> Scripts {
        Scripts {
            complete: Script::new(COMPLETE),
            renew: Script::new(RENEW),
            moved: Script::new(MOVE),
        }
    }

    /// Loads every script into the server's cache (after a connect, or a NOSCRIPT
    /// reply: a restarted server has an empty cache).
    pub(crate) fn load(&self, con: &mut Connection) -> RedisResult<()> {
        redis::pipe()
            .load_script(&self.complete)
            .load_script(&self.renew)
            .load_script(&self.moved)
            .query::<()>(con)
    }
}
