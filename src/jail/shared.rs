//! A jail's state in Redis, shared by every tollgate using the same `[redis]`:
//! strikes in `tollgate:jail:NAME:strikes:KEY:WINDOW` (a counter per fixed window,
//! `WINDOW` being Redis's time in ms divided by the window, expiring after two
//! windows; the sliding estimate is the same as the local one), and bans in the
//! sorted set `tollgate:jail:NAME:bans` (member: the key, score: the ban's end in
//! Redis's clock, ms; at most `max_keys`, the soonest-ending dropped first). Each call
//! is one script, atomic in Redis (a single Redis, not a cluster: the strike script
//! names its window keys itself). Bans are read back by every instance about once a
//! second (`bans`), as times left, so that the instances' clocks do not matter.

use redis::Script;
use std::collections::HashMap;
use std::sync::Arc;

use super::local::Rules;
use crate::ratelimit::RedisStore;

/// Counts a strike; returns {banned, ms the ban lasts}.
const STRIKE: &str = r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local window = tonumber(ARGV[2])
local index = math.floor(now / window)
local current = KEYS[1] .. ':' .. index
local previous = KEYS[1] .. ':' .. (index - 1)
local n = redis.call('INCR', current)
if n == 1 then redis.call('PEXPIRE', current, window * 2) end
local before = tonumber(redis.call('GET', previous) or '0')
if before * (1 - (now % window) / window) + n < tonumber(ARGV[3]) then return {0, 0} end
redis.call('DEL', current, previous)
local ban = tonumber(ARGV[4])
redis.call('ZADD', KEYS[2], 'GT', now + ban, ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now)
local extra = redis.call('ZCARD', KEYS[2]) - tonumber(ARGV[5])
if extra > 0 then redis.call('ZREMRANGEBYRANK', KEYS[2], 0, extra - 1) end
if redis.call('PTTL', KEYS[2]) < ban then redis.call('PEXPIRE', KEYS[2], ban) end
return {1, ban}
";

/// The active bans, latest-ending first (at most ARGV[1]): a flat list of key, ms left.
const BANS: &str = r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
local found = redis.call('ZREVRANGE', KEYS[1], 0, tonumber(ARGV[1]) - 1, 'WITHSCORES')
local out = {}
for i = 1, #found, 2 do
  out[#out + 1] = found[i]
  out[#out + 1] = tostring(tonumber(found[i + 1]) - now)
end
return out
";

const LIFT: &str = "return redis.call('ZREM', KEYS[1], ARGV[1])";

pub struct SharedJail {
    store: Arc<RedisStore>,
    prefix: String,
    strike: Script,
    bans: Script,
    lift: Script,
}

impl SharedJail {
    pub fn new(name: &str, store: Arc<RedisStore>) -> Self {
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
            rules.window.max(1).to_string(),
            rules.max_strikes.to_string(),
            rules.ban.to_string(),
            rules.max_keys.to_string(),
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
