//! What `apim insights` computes from the access log: per consumer, plan and route the
//! requests, refusals by reason, GraphQL cost, latency percentiles; per consumer and quota
//! limit the most of the limit used; and requests over time per consumer and plan.

use super::record::Record;
use serde_json::{json, Value};
use std::collections::BTreeMap;

/// Most distinct names kept per table; the rest are counted under `(other)`: a log full of
/// made-up consumer ids cannot make the report grow without bound.
pub const MAX_KEYS: usize = 10_000;
/// Points per time series (the bucket width follows from the log's time span).
pub const MAX_POINTS: u64 = 60;
const NOBODY: &str = "(none)";
const OTHER: &str = "(other)";

#[derive(Debug, Default, Clone, PartialEq)]
pub struct Stats {
    pub requests: u64,
    pub denied: u64,
    /// 5xx answers no filter gave (the upstream's or Envoy's).
    pub errors: u64,
    pub graphql_cost: u64,
    pub reasons: BTreeMap<String, u64>,
    /// How callers proved who they are (`key`, `token`, `key+token`) → requests.
    pub auth: BTreeMap<String, u64>,
    /// Duration (ms) → how many requests took it.
    durations: BTreeMap<u64, u64>,
}

impl Stats {
    fn add(&mut self, r: &Record) {
        self.requests += 1;
        match &r.decision {
            Some(d) => {
                self.denied += 1;
                *self.reasons.entry(d.clone()).or_default() += 1;
            }
            None if r.status >= 500 => self.errors += 1,
            None => {}
        }
        self.graphql_cost = self
            .graphql_cost
            .saturating_add(r.graphql_cost.unwrap_or(0));
        if let Some(a) = &r.auth {
            *self.auth.entry(a.clone()).or_default() += 1;
        }
        *self.durations.entry(r.duration_ms).or_default() += 1;
    }

    /// The duration at quantile `q` (nearest rank).
    pub fn percentile(&self, q: f64) -> u64 {
        let total: u64 = self.durations.values().sum();
        if total == 0 {
            return 0;
        }
        #[allow(
            clippy::cast_possible_truncation,
            clippy::cast_sign_loss,
            clippy::cast_precision_loss
        )]
        let rank = ((q * total as f64).ceil() as u64).clamp(1, total);
        let mut seen = 0;
        for (d, n) in &self.durations {
            seen += n;
            if seen >= rank {
                return *d;
            }
        }
        0
    }

    fn to_json(&self) -> Value {
        json!({
            "requests": self.requests,
            "allowed": self.requests - self.denied - self.errors,
            "denied": self.denied,
            "errors": self.errors,
            "denials": self.reasons,
            "auth": self.auth,
            "graphql_cost": self.graphql_cost,
            "p50_ms": self.percentile(0.5),
            "p99_ms": self.percentile(0.99),
        })
    }
}

/// A consumer's use of one quota limit: the limit and the least it had left.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LimitUse {
    pub requests: u64,
    pub lowest_remaining: u64,
}

#[derive(Debug, Default)]
pub struct Report {
    pub lines: u64,
    pub unreadable: u64,
    pub from_ms: u64,
    pub to_ms: u64,
    pub bucket_ms: u64,
    pub total: Stats,
    pub consumers: BTreeMap<String, Stats>,
    pub plans: BTreeMap<String, Stats>,
    pub routes: BTreeMap<String, Stats>,
    pub limits: BTreeMap<(String, String), LimitUse>,
    pub consumer_series: BTreeMap<String, BTreeMap<u64, u64>>,
    pub plan_series: BTreeMap<String, BTreeMap<u64, u64>>,
}

fn slot<'a, T: Default>(map: &'a mut BTreeMap<String, T>, key: &str) -> &'a mut T {
    let key = if map.contains_key(key) || map.len() < MAX_KEYS {
        key
    } else {
        OTHER
    };
    map.entry(key.to_string()).or_default()
}

/// A bucket width that gives at most [`MAX_POINTS`] points over `span_ms`, rounded up to a
/// readable one (1 s, 10 s, 1 min, 5 min, 15 min, 1 h, 6 h, 1 day).
fn bucket_for(span_ms: u64) -> u64 {
    const NICE: [u64; 8] = [
        1_000, 10_000, 60_000, 300_000, 900_000, 3_600_000, 21_600_000, 86_400_000,
    ];
    let want = span_ms / MAX_POINTS + 1;
    NICE.iter()
        .copied()
        .find(|b| *b >= want)
        .unwrap_or(want.div_ceil(86_400_000) * 86_400_000)
}

impl Report {
    /// A report over `records` (already filtered by time) whose times span `from_ms..=to_ms`.
    pub fn new(from_ms: u64, to_ms: u64) -> Report {
        Report {
            from_ms,
            to_ms,
            bucket_ms: bucket_for(to_ms.saturating_sub(from_ms)),
            ..Report::default()
        }
    }

    pub fn add(&mut self, r: &Record) {
        let consumer = r.consumer.as_deref().unwrap_or(NOBODY);
        let plan = r.plan.as_deref().unwrap_or(NOBODY);
        self.total.add(r);
        slot(&mut self.consumers, consumer).add(r);
        slot(&mut self.plans, plan).add(r);
        slot(&mut self.routes, &r.route).add(r);
        let bucket = r.time_ms.saturating_sub(self.from_ms) / self.bucket_ms;
        *slot(&mut self.consumer_series, consumer)
            .entry(bucket)
            .or_default() += 1;
        *slot(&mut self.plan_series, plan).entry(bucket).or_default() += 1;
        if let Some((name, requests, remaining)) = &r.quota {
            if self.limits.len() < MAX_KEYS
                || self
                    .limits
                    .contains_key(&(consumer.to_string(), name.clone()))
            {
                let u = self
                    .limits
                    .entry((consumer.to_string(), name.clone()))
                    .or_insert(LimitUse {
                        requests: *requests,
                        lowest_remaining: *remaining,
                    });
                u.requests = *requests;
                u.lowest_remaining = u.lowest_remaining.min(*remaining);
            }
        }
    }

    pub fn to_json(&self) -> Value {
        let table = |m: &BTreeMap<String, Stats>| -> Value {
            m.iter()
                .map(|(k, s)| (k.clone(), s.to_json()))
                .collect::<serde_json::Map<_, _>>()
                .into()
        };
        let series = |m: &BTreeMap<String, BTreeMap<u64, u64>>| -> Value {
            let points = (self.to_ms.saturating_sub(self.from_ms) / self.bucket_ms) + 1;
            m.iter()
                .map(|(k, s)| {
                    let counts: Vec<u64> = (0..points)
                        .map(|b| s.get(&b).copied().unwrap_or(0))
                        .collect();
                    (k.clone(), json!(counts))
                })
                .collect::<serde_json::Map<_, _>>()
                .into()
        };
        let limits: Vec<Value> = self
            .limits
            .iter()
            .map(|((consumer, limit), u)| {
                let used = u.requests.saturating_sub(u.lowest_remaining);
                json!({"consumer": consumer, "limit": limit, "requests": u.requests,
                       "most_used": used, "lowest_remaining": u.lowest_remaining})
            })
            .collect();
        json!({
            "lines": self.lines,
            "unreadable": self.unreadable,
            "from": crate::product::time::rfc3339(self.from_ms / 1000),
            "to": crate::product::time::rfc3339(self.to_ms / 1000),
            "bucket_seconds": self.bucket_ms / 1000,
            "total": self.total.to_json(),
            "consumers": table(&self.consumers),
            "plans": table(&self.plans),
            "routes": table(&self.routes),
            "limits": limits,
            "series": {"consumers": series(&self.consumer_series), "plans": series(&self.plan_series)},
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(consumer: Option<&str>, status: u16, decision: Option<&str>, ms: u64, t: u64) -> Record {
        Record {
            time_ms: t,
            route: "pets".into(),
            status,
            duration_ms: ms,
            consumer: consumer.map(str::to_string),
            plan: consumer.map(|_| "gold".to_string()),
            auth: consumer.map(|_| "key".to_string()),
            decision: decision.map(str::to_string),
            operation: None,
            graphql_cost: Some(3),
            quota: consumer.map(|_| ("gold-burst".to_string(), 10, 10 - ms.min(10))),
        }
    }

    #[test]
    fn counts_percentiles_limits_and_series() {
        let mut r = Report::new(0, 120_000);
        assert_eq!(r.bucket_ms, 10_000, "2 minutes in at most 60 points");
        for ms in 1..=100 {
            r.add(&rec(Some("alice"), 200, None, ms, ms * 1000));
        }
        r.add(&rec(
            None,
            401,
            Some("api-key-auth:missing_api_key"),
            0,
            119_000,
        ));
        r.add(&rec(Some("alice"), 503, None, 7, 5_000));
        let a = &r.consumers["alice"];
        assert_eq!((a.requests, a.denied, a.errors), (101, 0, 1));
        assert_eq!((a.percentile(0.5), a.percentile(0.99)), (50, 99));
        assert_eq!(
            r.consumers[NOBODY].reasons["api-key-auth:missing_api_key"],
            1
        );
        assert_eq!(
            r.limits[&("alice".to_string(), "gold-burst".to_string())].lowest_remaining,
            0
        );
        let j = r.to_json();
        assert_eq!(j["consumers"]["alice"]["auth"]["key"], 101);
        assert_eq!(
            j["series"]["consumers"]["alice"][0], 10,
            "alice's first 10 s: 1..=9 s and the 503 at 5 s"
        );
        assert_eq!(j["total"]["allowed"], 100);
        assert_eq!(j["plans"]["gold"]["graphql_cost"], 303);
    }

    #[test]
    fn made_up_names_are_bounded() {
        let mut r = Report::new(0, 0);
        for i in 0..(MAX_KEYS + 5) {
            let mut x = rec(Some("c"), 200, None, 1, 0);
            x.consumer = Some(format!("c{i}"));
            r.add(&x);
        }
        assert_eq!(r.consumers.len(), MAX_KEYS + 1);
        assert_eq!(r.consumers[OTHER].requests, 5);
    }
}
