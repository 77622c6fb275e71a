//! Rate limits that come with an allowance: a token bucket per subject and kind of question,
//! enforced by the node.

use super::Kind;
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Instant;

/// A token bucket for one rate-limited subject and kind of question.
struct Bucket {
    tokens: f64,
    at: Instant,
}

/// Every subject's buckets.
#[derive(Default)]
pub(super) struct Buckets(Mutex<HashMap<(Kind, String), Bucket>>);

impl Buckets {
    /// Takes a token from the subject's bucket; when it is empty, answers how long until the
    /// next token.
    pub(super) fn take(
        &self,
        kind: Kind,
        subject: String,
        per_second: f64,
        burst: u32,
    ) -> Result<(), u64> {
        let per_second = per_second.max(0.0);
        let burst = f64::from(burst.max(1));
        let now = Instant::now();
        let mut buckets = micro_base::sync::lock(&self.0);
        let bucket = buckets.entry((kind, subject)).or_insert(Bucket {
            tokens: burst,
            at: now,
        });
        let elapsed = now.duration_since(bucket.at).as_secs_f64();
        bucket.tokens = (bucket.tokens + elapsed * per_second).min(burst);
        bucket.at = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            Ok(())
        } else if per_second > 0.0 {
            Err((((1.0 - bucket.tokens) / per_second) * 1000.0).ceil() as u64)
        } else {
            Err(u64::MAX)
        }
    }
}
