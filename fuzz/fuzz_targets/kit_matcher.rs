//! kit's rule matcher: a rule list (first line, JSON: `[{"match": {...}, "loosens": bool,
//! "value": n}]`) against a request (the rest). The rule set's answer must equal a plain model of
//! the documented semantics (`kit::matcher`), built from single matchers read one way at a time:
//! - the normalised reading first: the first rule that meets it, where a guarded rule (loosening
//!   and path-dependent) is passed over on an ambiguous path, and a loosening `grpc` rule holds
//!   only for a clean gRPC call;
//! - on an ambiguous path, the first unguarded rule its widest reading meets: it decides only
//!   when the normalised reading met nothing (`wide`), and `conflict` is set exactly when both
//!   readings met a rule and their values differ (`value`: rules with equal values decide alike).
#![no_main]

use kit::config_error::Field;
use kit::matcher::{MatchInput, RawMatch, RouteMatcher, RuleSet};
use kit::request::RequestHead;
use libfuzzer_sys::fuzz_target;

#[derive(serde::Deserialize)]
struct Rule {
    #[serde(rename = "match", default)]
    matcher: RawMatch,
    #[serde(default)]
    loosens: bool,
    #[serde(default)]
    value: u8,
}

/// A rule's value as the rule set sees it: equal when `value` is, whatever the position.
#[derive(Debug, Clone, Copy)]
struct Value {
    index: usize,
    value: u8,
    loosens: bool,
    guarded: bool,
    grpc: bool,
}

impl PartialEq for Value {
    fn eq(&self, other: &Self) -> bool {
        self.value == other.value
    }
}

fuzz_target!(|data: &[u8]| {
    let (rules, request) = apim_fuzz::first_line(data);
    let Ok(raw) = serde_json::from_slice::<Vec<Rule>>(rules) else {
        return;
    };
    if raw.len() > 16 {
        return;
    }
    let mut compiled: Vec<(RouteMatcher, Value)> = Vec::new();
    for (i, r) in raw.iter().enumerate() {
        let Ok(m) = RouteMatcher::compile(&r.matcher, &Field::root().key("rules").index(i)) else {
            return;
        };
        let grpc = r.matcher.grpc.is_some();
        let path_dependent = r.matcher.path.is_some() || r.matcher.route_name.is_some() || grpc;
        compiled.push((
            m,
            Value {
                index: i,
                value: r.value,
                loosens: r.loosens,
                guarded: r.loosens && path_dependent,
                grpc,
            },
        ));
    }
    let reference = compiled.clone();
    let set = RuleSet::with_loosening(compiled, |v| v.loosens);

    let (headers, _) = apim_fuzz::request(request);
    let head = RequestHead::new(headers);
    for route_name in [None, Some("pets")] {
        let input = MatchInput {
            route_name,
            head: &head,
        };
        let got = set.lookup(&input);
        let ambiguous = head.path_is_ambiguous();
        let clean = kit::grpc::clean_call(&head).is_some();
        let normal = reference
            .iter()
            .find(|(m, v)| {
                m.matches_reading(&input, false)
                    && !(v.guarded && ambiguous)
                    && !(v.loosens && v.grpc && !clean)
            })
            .map(|(_, v)| *v);
        let widest = if ambiguous {
            reference
                .iter()
                .find(|(m, v)| !v.guarded && m.matches_reading(&input, true))
                .map(|(_, v)| *v)
        } else {
            None
        };
        let (want, wide) = match normal {
            Some(v) => (Some(v), false),
            None => (widest, widest.is_some()),
        };
        let conflict = match (normal, widest) {
            (Some(n), Some(w)) => n.index != w.index && n.value != w.value,
            _ => false,
        };
        assert_eq!(got.rule.map(|v| v.index), want.map(|v| v.index));
        assert_eq!(got.index, want.map(|v| v.index));
        assert_eq!(got.wide, wide, "wide");
        assert_eq!(got.conflict, conflict, "conflict");
        if let Some(v) = got.rule {
            assert!(
                !(v.guarded && ambiguous),
                "a loosening rule matched an ambiguous path"
            );
            assert!(
                !(v.loosens && v.grpc && !clean),
                "a loosening grpc rule matched a request that is not a clean gRPC call"
            );
        }
        let _ = set.needed_headers();
    }
});
