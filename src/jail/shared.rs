//! A jail's state in Redis, shared by every tollgate using the same `[redis]`:
//! strikes in `tollgate:jail:NAME:strikes:KEY` (a counter that expires with its
//! window) and bans in the sorted set `tollgate:jail:NAME:bans` (member: the key,
//! score: the ban's end in Redis's clock, milliseconds). Each call is one script,
//! atomic in Redis. Bans are read back by every instance about once a second
//! (`bans`), as times left so that the instances' clocks do not matter.

use redis::Script;
use std::collections::HashMap;

use super::local::Rules;
use crate::ratelimit::RedisStore;

/// Counts a strike; returns {banned, ms until the ban ends}.
const STRIKE: &str = r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local n = redis.call('INCR', KEYS[1])
if n == 1 then redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
if n < tonumber(ARGV[3]) then return {0, 0} end
redis.call('DEL', KEYS[1])
redis.call('ZADD', KEYS[2], now + tonumber(ARGV[4]), ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now)
redis.call('PEXPIRE', KEYS[2], ARGV[4])
return {1, tonumber(ARGV[4])}
";

/// The active bans: a flat list of key, ms left.
const BANS: &str = r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
local found = redis.call('ZRANGE', KEYS[1], 0, tonumber(ARGV[1]) - 1, 'WITHSCORES')
local out = {}
for i = 1, #found, 2 do
  out[#out + 1] = found[i]
  out[#out + 1] = tostring(tonumber(found[i + 1]) - now)
end
return out
";

const LIFT: &str = "return redis.call('ZREM', KEYS[1], ARGV[1])";

pub struct SharedJail {
    store: std::sync::Arc<RedisStore>,
    prefix: String,
    strike: Script,
    bans: Script,
    lift: Script,
}

impl SharedJail {
    pub fn new(name: &str, store: std::sync::Arc<RedisStore>) -> Self {
        Self {
            store,
            prefix: format!("tollgate:jail:{name}"),
            strike: Script::new(STRIKE),
            bans: Script::new(BANS),
            lift: Script::new(LIFT),
        }
    }

    fn bans_key(&self) -> String {
        format!("{}:bans", self.prefix)
    }

    /// Counts a strike against `key`; `Some(ms left)` when it banned the key.
    pub async fn strike(&self, key: &str, rules: &Rules) -> Result<Option<u64>, String> {
        let strikes = format!("{}:strikes:{key}", self.prefix);
        let args = [
            key.to_owned(),
            rules.window.to_string(),
            rules.max_strikes.to_string(),
            rules.ban.to_string(),
        ];
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let (banned, left): (u8, u64) = self
            .store
            .run(&self.strike, &[&strikes, &self.bans_key()], &args)
            .await?;
        Ok((banned == 1).then_some(left))
    }

    /// The active bans (at most `max`): key and ms left.
    pub async fn bans(&self, max: usize) -> Result<HashMap<String, u64>, String> {
        let max = max.to_string();
        let flat: Vec<String> = self
            .store
            .run(&self.bans, &[&self.bans_key()], &[&max])
            .await?;
        Ok(flat
            .chunks_exact(2)
            .filter_map(|pair| Some((pair[0].clone(), pair[1].parse().ok()?)))
            .collect())
    }

    /// Lifts `key`'s ban; whether there was one.
    pub async fn lift(&self, key: &str) -> Result<bool, String> {
        let removed: u64 = self
            .store
            .run(&self.lift, &[&self.bans_key()], &[key])
            .await?;
        Ok(removed > 0)
    }
}
