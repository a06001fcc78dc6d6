//! A bench row's proof that its filter did its job: a status code alone cannot tell a filter that
//! authenticated every request from one whose rule never matched (or a quota on its error path),
//! so each row names counters (by Envoy stat name, from `/stats`) that must account for every
//! request Envoy answered, and counters that must stay at zero.
//!
//! The check runs on one fresh Envoy per row and round, over its whole life (the first checked
//! request, the warm-up and the measured run), so counters that a filter flushes in batches
//! (scope-authz's allowed/cache-hit, on a 500 ms timer) are compared once they have settled,
//! not across a window edge.

use std::collections::BTreeMap;

use serde::Deserialize;

/// What a row's counters must show; exactly one of `served` and `none` is given (`zero` may
/// come with either: a baseline can still prove how Envoy handled its requests).
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Proof {
    /// Stats each equal to the number of responses Envoy sent with the row's status class.
    #[serde(default)]
    pub served: Vec<String>,
    /// Stats that must exist and be 0; a name ending in `.` means every stat under that prefix
    /// (at least one must exist), so counters a filter adds later are covered too.
    #[serde(default)]
    pub zero: Vec<String>,
    /// For a row with nothing to prove (no filter, or a filter without counters): why.
    #[serde(default)]
    pub none: Option<String>,
    /// A stat counting requests whose client left before the answer
    /// (`http.ingress.downstream_rq_rx_reset`). When the filter waits on a call (the global
    /// tier) and the route proxies, wrk closing its connections at the end of a run leaves a
    /// few requests the filter counted that Envoy never answered: with this set, each `served`
    /// stat may exceed the responses by at most this stat's value, never fall short of them.
    #[serde(default)]
    pub in_flight: Option<String>,
}

impl Proof {
    /// The shape check done when the rows are loaded.
    pub fn validate(&self) -> Result<(), String> {
        match (&self.none, self.served.is_empty()) {
            (Some(_), false) => Err("proof: `none` and `served` exclude each other".into()),
            (Some(why), true) if why.trim().is_empty() => {
                Err("proof.none: say why the row has nothing to prove".into())
            }
            (None, true) => Err(
                "proof.served: name the counters that count every request the filter handled \
                 (or give `none` with the reason)"
                    .into(),
            ),
            _ => Ok(()),
        }
    }

    /// Whether there are counters to check.
    pub fn has_counters(&self) -> bool {
        !self.served.is_empty() || !self.zero.is_empty()
    }

    /// Checks a stats snapshot against `served` responses: Ok with a one-line summary
    /// (`allowed=1234`), or an error naming every counter that disagrees.
    pub fn check(&self, stats: &BTreeMap<String, u64>, served: u64) -> Result<String, String> {
        let mut wrong = Vec::new();
        let mut summary = Vec::new();
        let left = match &self.in_flight {
            Some(name) => match stats.get(name) {
                Some(v) => *v,
                None => {
                    wrong.push(format!("{name}: no such stat"));
                    0
                }
            },
            None => 0,
        };
        for name in &self.served {
            match stats.get(name) {
                Some(v) if *v == served => summary.push(format!("{}={v}", short(name))),
                Some(v) if *v > served && *v - served <= left => summary.push(format!(
                    "{}={v} ({} left before the answer)",
                    short(name),
                    *v - served
                )),
                Some(v) if left > 0 => wrong.push(format!(
                    "{name} = {v}, expected {served} (responses) to {} (+ clients that left)",
                    served + left
                )),
                Some(v) => wrong.push(format!("{name} = {v}, expected {served} (responses)")),
                None => wrong.push(format!("{name}: no such stat")),
            }
        }
        for name in &self.zero {
            if name.ends_with('.') {
                let under: Vec<(&String, &u64)> = stats
                    .iter()
                    .filter(|(n, _)| n.starts_with(name.as_str()))
                    .collect();
                if under.is_empty() {
                    wrong.push(format!("{name}*: no such stats"));
                }
                wrong.extend(
                    under
                        .into_iter()
                        .filter(|(_, v)| **v != 0)
                        .map(|(n, v)| format!("{n} = {v}, expected 0")),
                );
            } else {
                match stats.get(name) {
                    Some(0) => {}
                    Some(v) => wrong.push(format!("{name} = {v}, expected 0")),
                    None => wrong.push(format!("{name}: no such stat")),
                }
            }
        }
        if wrong.is_empty() {
            if summary.is_empty() {
                summary.push(format!("{} zero", self.zero.len()));
            }
            Ok(summary.join(" "))
        } else {
            Err(format!("counters disagree: {}", wrong.join("; ")))
        }
    }
}

/// `wasmcustom.apim.quota.allowed` → `quota.allowed`, for the summary line.
fn short(name: &str) -> &str {
    let name = name.strip_prefix("wasmcustom.").unwrap_or(name);
    name.strip_prefix("apim.").unwrap_or(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stats(pairs: &[(&str, u64)]) -> BTreeMap<String, u64> {
        pairs.iter().map(|(n, v)| ((*n).to_owned(), *v)).collect()
    }

    fn proof(served: &[&str], zero: &[&str]) -> Proof {
        Proof {
            served: served.iter().map(|s| (*s).to_owned()).collect(),
            zero: zero.iter().map(|s| (*s).to_owned()).collect(),
            none: None,
            in_flight: None,
        }
    }

    #[test]
    fn a_filter_that_did_its_job_passes() {
        let p = proof(
            &["wasmcustom.apim.q.allowed"],
            &["wasmcustom.apim.q.denied."],
        );
        let s = stats(&[
            ("wasmcustom.apim.q.allowed", 100),
            ("wasmcustom.apim.q.denied.a", 0),
            ("wasmcustom.apim.q.denied.b", 0),
        ]);
        assert_eq!(p.check(&s, 100), Ok("q.allowed=100".into()));
    }

    #[test]
    fn a_filter_that_did_nothing_or_erred_fails() {
        let p = proof(
            &["wasmcustom.apim.q.allowed"],
            &["wasmcustom.apim.q.passed", "wasmcustom.apim.q.denied."],
        );
        let cases: &[(&[(&str, u64)], &str)] = &[
            // The rule never matched: requests passed through uncounted.
            (
                &[
                    ("wasmcustom.apim.q.allowed", 0),
                    ("wasmcustom.apim.q.passed", 100),
                    ("wasmcustom.apim.q.denied.a", 0),
                ],
                "wasmcustom.apim.q.allowed = 0, expected 100",
            ),
            // Some requests took another path.
            (
                &[
                    ("wasmcustom.apim.q.allowed", 99),
                    ("wasmcustom.apim.q.passed", 0),
                    ("wasmcustom.apim.q.denied.a", 1),
                ],
                "wasmcustom.apim.q.denied.a = 1, expected 0",
            ),
            // The filter never defined its counters (not loaded).
            (&[], "wasmcustom.apim.q.allowed: no such stat"),
            (&[], "wasmcustom.apim.q.denied.*: no such stats"),
        ];
        for (snapshot, needle) in cases {
            let err = p.check(&stats(snapshot), 100).unwrap_err();
            assert!(err.contains(needle), "{err} lacks {needle}");
        }
    }

    #[test]
    fn requests_whose_client_left_may_be_counted_but_never_missing() {
        let p = Proof {
            in_flight: Some("reset".into()),
            ..proof(&["allowed"], &[])
        };
        let s = |allowed: u64| stats(&[("allowed", allowed), ("reset", 5)]);
        assert!(p.check(&s(100), 100).is_ok());
        assert!(p.check(&s(105), 100).is_ok());
        assert!(p.check(&s(106), 100).is_err());
        assert!(p.check(&s(99), 100).is_err());
        assert!(proof(&["allowed"], &[]).check(&s(101), 100).is_err());
        let missing = Proof {
            in_flight: Some("nope".into()),
            ..proof(&["allowed"], &[])
        };
        assert!(missing.check(&s(100), 100).is_err());
    }

    #[test]
    fn shapes() {
        assert!(proof(&["a"], &[]).validate().is_ok());
        assert!(proof(&[], &["a"]).validate().is_err());
        let none = |why: &str| Proof {
            none: Some(why.into()),
            ..Proof::default()
        };
        assert!(none("no filter").validate().is_ok());
        assert!(Proof {
            zero: vec!["a".into()],
            ..none("no filter")
        }
        .validate()
        .is_ok());
        assert!(none(" ").validate().is_err());
        assert!(Proof {
            served: vec!["a".into()],
            ..none("x")
        }
        .validate()
        .is_err());
    }
}
