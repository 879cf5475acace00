//! The shared bucket store: one bucket per key in Redis, so every tollgate in front
//! of the same Redis draws from the same budget. Taking tokens is one server-side
//! script, atomic in Redis (no read-modify-write race between instances), running
//! the `gcra` arithmetic on Redis's own clock in microseconds.
//!
//! One multiplexed connection (redis-rs `ConnectionManager`) carries every request
//! and reconnects by itself. Each call is bounded by `timeout`; a failure is the
//! caller's to handle (the policy's `on_store_error`). While the first connection
//! cannot be made, a new attempt is made at most once per `RECONNECT_EVERY`.

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::Script;
use std::sync::Mutex;
use std::time::{Duration, Instant};
use tokio::sync::OnceCell;

use super::gcra::{Quota, Take};
use crate::base::registry::Reusable;
use crate::config::raw::RedisSection;

const RECONNECT_EVERY: Duration = Duration::from_secs(1);

/// Takes `ARGV[3]` tokens; returns {admitted, retry_after_us, remaining, full_in_us}.
const TAKE: &str = r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local interval = tonumber(ARGV[1])
local tolerance = tonumber(ARGV[2])
local cost = tonumber(ARGV[3])
local tat = tonumber(redis.call('GET', KEYS[1]) or '0')
if tat < now then tat = now end
local new_tat = tat + interval * cost
local ahead = new_tat - now
if ahead > tolerance then
  return {0, ahead - tolerance, 0, tat - now}
end
redis.call('SET', KEYS[1], string.format('%d', new_tat), 'PX', math.ceil(ahead / 1000) + 1000)
return {1, 0, math.floor((tolerance - ahead) / interval), ahead}
";

/// Gives back `ARGV[1]` microseconds of a bucket (a refused request's other limits).
const REFUND: &str = r"
local tat = tonumber(redis.call('GET', KEYS[1]) or '0')
if tat > 0 then
  redis.call('SET', KEYS[1], string.format('%d', math.max(tat - tonumber(ARGV[1]), 0)), 'KEEPTTL')
end
return 1
";

pub struct RedisStore {
    definition: RedisSection,
    client: redis::Client,
    conn: OnceCell<ConnectionManager>,
    last_failed_connect: Mutex<Option<Instant>>,
    take: Script,
    refund: Script,
}

impl Reusable for RedisStore {
    type Definition = RedisSection;

    fn definition(&self) -> &RedisSection {
        &self.definition
    }
}

impl RedisStore {
    pub fn new(def: &RedisSection) -> Result<Self, String> {
        let client =
            redis::Client::open(def.url.as_str()).map_err(|e| format!("redis url: {e}"))?;
        Ok(Self {
            definition: def.clone(),
            client,
            conn: OnceCell::new(),
            last_failed_connect: Mutex::new(None),
            take: Script::new(TAKE),
            refund: Script::new(REFUND),
        })
    }

    async fn connection(&self) -> Result<ConnectionManager, String> {
        if let Some(conn) = self.conn.get() {
            return Ok(conn.clone());
        }
        let recently = self.last_failed_connect.lock().ok().and_then(|l| *l);
        if recently.is_some_and(|t| t.elapsed() < RECONNECT_EVERY) {
            return Err("not connected".into());
        }
        let timeout = self.definition.timeout;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(timeout))
            .set_response_timeout(Some(timeout))
            .set_number_of_retries(1)
            .set_max_delay(Duration::from_millis(500));
        let connected = self
            .conn
            .get_or_try_init(|| async {
                tokio::time::timeout(
                    timeout * 2,
                    ConnectionManager::new_with_config(self.client.clone(), config),
                )
                .await
                .map_err(|_| "connect timed out".to_owned())?
                .map_err(|e| e.to_string())
            })
            .await;
        if connected.is_err() {
            if let Ok(mut last) = self.last_failed_connect.lock() {
                *last = Some(Instant::now());
            }
        }
        connected.cloned()
    }

    /// Takes `cost` tokens from the bucket at `key`.
    pub async fn take(&self, key: &str, quota: &Quota, cost: u64) -> Result<Take, String> {
        let (interval, tolerance) = micros(quota);
        let (admitted, retry_after, remaining, full_in): (u8, u64, u64, u64) = self
            .run(&self.take, &[key], &[interval, tolerance, cost])
            .await?;
        Ok(match admitted {
            // The TAT lives in Redis; nothing local to store.
            1 => Take::Admit {
                tat: 0,
                remaining,
                full_in: full_in.saturating_mul(1000),
            },
            _ => Take::Deny {
                retry_after: retry_after.saturating_mul(1000),
            },
        })
    }

    /// Gives back `cost` tokens taken from the bucket at `key`.
    pub async fn refund(&self, key: &str, quota: &Quota, cost: u64) -> Result<(), String> {
        let (interval, _) = micros(quota);
        self.run::<u8, u64>(&self.refund, &[key], &[interval.saturating_mul(cost)])
            .await
            .map(|_| ())
    }

    /// Runs `script` with `keys` and `args`, bounded by the store's timeout (buckets
    /// here; jails use it too).
    pub async fn run<T: redis::FromRedisValue, A: redis::ToRedisArgs>(
        &self,
        script: &Script,
        keys: &[&str],
        args: &[A],
    ) -> Result<T, String> {
        let mut conn = self.connection().await?;
        let mut invocation = script.prepare_invoke();
        for key in keys {
            invocation.key(*key);
        }
        for arg in args {
            invocation.arg(arg);
        }
        let call = invocation.invoke_async(&mut conn);
        tokio::time::timeout(self.definition.timeout, call)
            .await
            .map_err(|_| format!("no answer within {:?}", self.definition.timeout))?
            .map_err(|e| e.to_string())
    }
}

/// The quota's interval and tolerance in microseconds (Lua numbers are doubles:
/// microseconds since the epoch fit, nanoseconds would lose precision).
fn micros(quota: &Quota) -> (u64, u64) {
    ((quota.interval / 1000).max(1), quota.tolerance / 1000)
}
