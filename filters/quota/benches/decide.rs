//! Criterion benches of the request path's logic: resolving plan, key and cost, and the CAS
//! admission of one request against a two-limit plan in an in-memory store that behaves like
//! Envoy's shared data (a slot holding 1 or 50 other counters); and config parsing.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use criterion::{criterion_group, criterion_main, Criterion};
use kit::identity::Identity;
use kit::request::RequestHead;
use quota::config::Config;
use quota::policy::{checks, resolve, verdict, Inputs, Resolution};
use quota::store::{admit, SetResult, SharedStore};
use std::cell::RefCell;
use std::collections::HashMap;
use std::hint::black_box;

const CONFIG: &str = r#"{
  "plans": {
    "gold": {"limits": [{"requests": 1000000000, "per": "second"}, {"requests": 1000000000, "per": "month"}]},
    "free": {"limits": [{"requests": 100, "per": "minute"}]}
  },
  "default_plan": "free",
  "rules": [{"match": {"path": {"prefix": "/reports"}}, "cost": 5}],
  "headers": {"on_allowed": true}
}"#;

#[derive(Default)]
struct Store(RefCell<HashMap<String, (Vec<u8>, u32)>>);

impl SharedStore for Store {
    fn get(&self, key: &str) -> (Option<Vec<u8>>, Option<u32>) {
        match self.0.borrow().get(key) {
            Some((v, c)) => (Some(v.clone()), Some(*c)),
            None => (None, None),
        }
    }
    fn set(&self, key: &str, value: &[u8], _cas: Option<u32>) -> SetResult {
        let mut m = self.0.borrow_mut();
        let next = m.get(key).map_or(1, |e| e.1 + 1);
        m.insert(key.to_string(), (value.to_vec(), next));
        SetResult::Ok
    }
}

fn bench(c: &mut Criterion) {
    let config = Config::parse(CONFIG.as_bytes()).unwrap();
    let head = RequestHead::from_pairs(&[(":path", "/pets/1"), (":method", "GET")]);
    let alice = Identity {
        id: "alice".into(),
        plan: Some("gold".into()),
        ..Identity::default()
    };
    c.bench_function("resolve", |b| {
        b.iter(|| {
            let input = Inputs {
                identity: Some(&alice),
                ..Inputs::new(&head)
            };
            black_box(resolve(&config, black_box(&input)))
        })
    });
    let input = Inputs {
        identity: Some(&alice),
        ..Inputs::new(&head)
    };
    let Resolution::Count { plan, key, cost } = resolve(&config, &input).resolution else {
        panic!("counted")
    };
    let plan = &config.plans[plan];
    for others in [0usize, 50] {
        let store = Store::default();
        // Put the others in alice's slot, as hash collisions would.
        let (alice_slot, _) = checks(plan, &key, 1_800_000_000, &KEY);
        for i in 0..others {
            let (_, cs) = checks(plan, &format!("=other-{i}"), 1_800_000_000, &KEY);
            admit(&store, &alice_slot, &cs, 1, 1_800_000_000);
        }
        c.bench_function(&format!("admit (slot with {others} others)"), |b| {
            b.iter(|| {
                let now = 1_800_000_000;
                let (slot, cs) = checks(plan, &key, now, &KEY);
                let outcome = admit(&store, &slot, &cs, cost, now);
                black_box(verdict(&config, plan, &cs, &outcome, cost, now))
            })
        });
    }
    c.bench_function("parse config", |b| {
        b.iter(|| black_box(Config::parse(black_box(CONFIG.as_bytes())).unwrap()))
    });
}

/// The slot-hash key (random per process in the filter).
const KEY: [u8; 16] = [7; 16];

criterion_group!(benches, bench);
criterion_main!(benches);
