//! kit's rule matcher: a rule list (first line, JSON: `[{"match": {...}, "loosens": bool}]`)
//! against a request (the rest). The rule set's answer must equal a plain reference: the first
//! rule that matches and is not a loosening, path-dependent rule facing an ambiguous path, nor a
//! loosening `grpc` rule facing a request that is not a clean gRPC call.
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
}

fuzz_target!(|data: &[u8]| {
    let (rules, request) = apim_fuzz::first_line(data);
    let Ok(raw) = serde_json::from_slice::<Vec<Rule>>(rules) else {
        return;
    };
    if raw.len() > 16 {
        return;
    }
    let mut compiled: Vec<(RouteMatcher, (usize, bool, bool, bool))> = Vec::new();
    for (i, r) in raw.iter().enumerate() {
        let Ok(m) = RouteMatcher::compile(&r.matcher, &Field::root().key("rules").index(i)) else {
            return;
        };
        let grpc = r.matcher.grpc.is_some();
        let path_dependent = r.matcher.path.is_some() || r.matcher.route_name.is_some() || grpc;
        compiled.push((m, (i, r.loosens, path_dependent, grpc)));
    }
    let reference = compiled.clone();
    let set = RuleSet::with_loosening(compiled, |(_, loosens, _, _)| *loosens);

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
        let want = reference
            .iter()
            .find(|(m, (_, loosens, dep, grpc))| {
                m.matches(&input) && !(*loosens && *dep && ambiguous) && !(*loosens && *grpc && !clean)
            })
            .map(|(_, v)| v.0);
        assert_eq!(got.rule.map(|v| v.0), want);
        if let Some((_, loosens, dep, grpc)) = got.rule {
            assert!(
                !(*loosens && *dep && ambiguous),
                "a loosening rule matched an ambiguous path"
            );
            assert!(
                !(*loosens && *grpc && !clean),
                "a loosening grpc rule matched a request that is not a clean gRPC call"
            );
        }
        let _ = set.needed_headers();
    }
});
