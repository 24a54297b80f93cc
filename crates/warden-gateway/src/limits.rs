//! Rate limits (token buckets: `calls_per_minute` refilled continuously) and concurrency
//! caps, keyed per agent, per agent and tool, and per connector.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

struct Bucket {
    tokens: f64,
    last: Instant,
}

/// Shared limiter state.
#[derive(Default)]
pub struct Limiter {
    buckets: Mutex<HashMap<String, Bucket>>,
    caps: Mutex<HashMap<String, Arc<Semaphore>>>,
}

impl Limiter {
    /// Takes one call from `key`'s budget of `per_minute`; false when exhausted.
    pub fn take(&self, key: &str, per_minute: u32) -> bool {
        let cap = per_minute as f64;
        let now = Instant::now();
        let mut map = self.buckets.lock().unwrap();
        let b = map.entry(key.to_string()).or_insert(Bucket {
            tokens: cap,
            last: now,
        });
        let refill = now.duration_since(b.last).as_secs_f64() * cap / 60.0;
        b.tokens = (b.tokens + refill).min(cap);
        b.last = now;
        if b.tokens >= 1.0 {
            b.tokens -= 1.0;
            true
        } else {
            false
        }
    }

    /// Takes one of `max` concurrent slots of `key`; None when all are in use.
    pub fn enter(&self, key: &str, max: u32) -> Option<OwnedSemaphorePermit> {
        let sem = self
            .caps
            .lock()
            .unwrap()
            .entry(key.to_string())
            .or_insert_with(|| Arc::new(Semaphore::new(max as usize)))
            .clone();
        sem.try_acquire_owned().ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bucket_allows_burst_then_refuses() {
        let l = Limiter::default();
        for _ in 0..3 {
            assert!(l.take("a", 3));
        }
        assert!(!l.take("a", 3));
        assert!(l.take("b", 3), "keys are independent");
    }

    #[test]
    fn concurrency_cap_frees_on_drop() {
        let l = Limiter::default();
        let p1 = l.enter("a", 1).unwrap();
        assert!(l.enter("a", 1).is_none());
        drop(p1);
        assert!(l.enter("a", 1).is_some());
    }
}
