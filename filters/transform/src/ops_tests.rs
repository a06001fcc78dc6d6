//! Tables for every operation: pointers, RFC 6902 (its Appendix A), RFC 7396 (its Appendix A),
//! body ops, headers, query and path, templates.

use crate::body::{self, is_json, BodyError, BodyOp, SetValue, ValueType};
use crate::headers::{Edit, HeaderOps};
use crate::patch::{self, merge_patch};
use crate::pointer::{self, Pointer};
use crate::template::{Ctx, Refused, Template};
use crate::uri::{self, QueryOps};
use kit::config_error::Field;
use kit::identity::Identity;
use kit::request::RequestHead;
use serde_json::{json, Value};
#[cfg(all(target_arch = "wasm32", target_os = "unknown"))]
use wasm_bindgen_test::wasm_bindgen_test as test;

fn head() -> RequestHead {
    RequestHead::from_pairs(&[
        (":method", "GET"),
        (":path", "/pets/42?limit=5&x=%20y"),
        ("x-tenant", "acme"),
        ("x-dup", "a"),
        ("x-dup", "b"),
        ("x-climb", "../../admin"),
        ("x-dots", ".."),
        ("x-slash", "a/b"),
    ])
}

fn with_ctx<R>(f: impl FnOnce(&Ctx<'_>) -> R) -> R {
    let h = head();
    let caps = vec![Some("/pets/42".to_string()), Some("42".to_string())];
    let id = Identity {
        id: "alice".into(),
        plan: Some("gold".into()),
        ..Identity::default()
    };
    let claims = json!({"sub": "u-1", "tier": 3});
    f(&Ctx {
        head: &h,
        captures: &caps,
        identity: Some(&id),
        claims: Some(&claims),
    })
}

fn tpl(text: &str) -> Template {
    let names = vec![None, Some("id".to_string())];
    Template::parse(text, Some(&names), &Field::root().key("t")).unwrap()
}

#[test]
fn pointer_parse_table() {
    let ok: &[(&str, &[&str])] = &[
        ("", &[]),
        ("/a", &["a"]),
        ("/a/0/b", &["a", "0", "b"]),
        ("/a~1b/m~0n", &["a/b", "m~n"]),
        ("/", &[""]),
    ];
    for (text, want) in ok {
        let p = Pointer::parse(text).unwrap();
        let doc = json!({});
        let _ = pointer::get(&doc, &p);
        assert_eq!(p.last(), want.last().copied(), "{text}");
    }
    for bad in ["a", "/a~2", "/a~"] {
        assert!(Pointer::parse(bad).is_err(), "{bad}");
    }
}

/// RFC 6902 Appendix A: (doc, patch, Some(result) | None for an error).
#[test]
fn json_patch_rfc6902_appendix_a() {
    let cases: Vec<(Value, Value, Option<Value>)> = vec![
        // A.1 adding an object member
        (
            json!({"foo":"bar"}),
            json!([{"op":"add","path":"/baz","value":"qux"}]),
            Some(json!({"baz":"qux","foo":"bar"})),
        ),
        // A.2 adding an array element
        (
            json!({"foo":["bar","baz"]}),
            json!([{"op":"add","path":"/foo/1","value":"qux"}]),
            Some(json!({"foo":["bar","qux","baz"]})),
        ),
        // A.3 removing an object member
        (
            json!({"baz":"qux","foo":"bar"}),
            json!([{"op":"remove","path":"/baz"}]),
            Some(json!({"foo":"bar"})),
        ),
        // A.4 removing an array element
        (
            json!({"foo":["bar","qux","baz"]}),
            json!([{"op":"remove","path":"/foo/1"}]),
            Some(json!({"foo":["bar","baz"]})),
        ),
        // A.5 replacing a value
        (
            json!({"baz":"qux","foo":"bar"}),
            json!([{"op":"replace","path":"/baz","value":"boo"}]),
            Some(json!({"baz":"boo","foo":"bar"})),
        ),
        // A.6 moving a value
        (
            json!({"foo":{"bar":"baz","waldo":"fred"},"qux":{"corge":"grault"}}),
            json!([{"op":"move","from":"/foo/waldo","path":"/qux/thud"}]),
            Some(json!({"foo":{"bar":"baz"},"qux":{"corge":"grault","thud":"fred"}})),
        ),
        // A.7 moving an array element
        (
            json!({"foo":["all","grass","cows","eat"]}),
            json!([{"op":"move","from":"/foo/1","path":"/foo/3"}]),
            Some(json!({"foo":["all","cows","eat","grass"]})),
        ),
        // A.8 testing a value: success
        (
            json!({"baz":"qux","foo":["a",2,"c"]}),
            json!([{"op":"test","path":"/baz","value":"qux"},{"op":"test","path":"/foo/1","value":2}]),
            Some(json!({"baz":"qux","foo":["a",2,"c"]})),
        ),
        // A.9 testing a value: error
        (
            json!({"baz":"qux"}),
            json!([{"op":"test","path":"/baz","value":"bar"}]),
            None,
        ),
        // A.10 adding a nested member object
        (
            json!({"foo":"bar"}),
            json!([{"op":"add","path":"/child","value":{"grandchild":{}}}]),
            Some(json!({"foo":"bar","child":{"grandchild":{}}})),
        ),
        // A.12 adding to a nonexistent target
        (
            json!({"foo":"bar"}),
            json!([{"op":"add","path":"/baz/bat","value":"qux"}]),
            None,
        ),
        // A.14 ~ escape ordering
        (
            json!({"/":9,"~1":10}),
            json!([{"op":"test","path":"/~01","value":10}]),
            Some(json!({"/":9,"~1":10})),
        ),
        // A.15 comparing strings and numbers
        (
            json!({"/":9,"~1":10}),
            json!([{"op":"test","path":"/~01","value":"10"}]),
            None,
        ),
        // A.16 adding an array value
        (
            json!({"foo":["bar"]}),
            json!([{"op":"add","path":"/foo/-","value":["abc","def"]}]),
            Some(json!({"foo":["bar",["abc","def"]]})),
        ),
        // copy, and atomicity: the failing second op leaves the document untouched
        (
            json!({"a":1}),
            json!([{"op":"copy","from":"/a","path":"/b"}]),
            Some(json!({"a":1,"b":1})),
        ),
        (
            json!({"a":1}),
            json!([{"op":"remove","path":"/a"},{"op":"remove","path":"/zz"}]),
            None,
        ),
        (
            json!({"a":1}),
            json!([{"op":"replace","path":"","value":[1]}]),
            Some(json!([1])),
        ),
    ];
    for (i, (doc, p, want)) in cases.into_iter().enumerate() {
        let ops = patch::compile(&p).unwrap();
        let mut d = doc.clone();
        let r = patch::apply(&mut d, &ops);
        match want {
            Some(w) => assert_eq!((r, d), (Ok(()), w), "case {i}"),
            None => {
                assert!(r.is_err(), "case {i}");
                assert_eq!(d, doc, "case {i}: an error leaves the document unchanged");
            }
        }
    }
}

#[test]
fn json_patch_compile_errors() {
    let cases: &[(Value, &str)] = &[
        (json!({}), "a JSON Patch must be an array"),
        (json!([{"op":"add","path":"/a"}]), "\"value\" is missing"),
        (json!([{"op":"frob","path":"/a"}]), "unknown op \"frob\""),
        (json!([{"op":"remove","path":"a"}]), "is not a JSON Pointer"),
        (
            json!([{"op":"add","path":"/a","value":1,"xyz":1}]),
            "unexpected member \"xyz\"",
        ),
        (
            json!([{"op":"move","from":"/a","path":"/a/b"}]),
            "into one of its own children",
        ),
        (json!([1]), "an operation must be an object"),
    ];
    for (p, want) in cases {
        let (_, e) = patch::compile(p).unwrap_err();
        assert!(e.contains(want), "{p}: {e}");
    }
}

/// RFC 7396 Appendix A, every example.
#[test]
fn merge_patch_rfc7396_appendix_a() {
    let cases: Vec<(Value, Value, Value)> = vec![
        (json!({"a":"b"}), json!({"a":"c"}), json!({"a":"c"})),
        (json!({"a":"b"}), json!({"b":"c"}), json!({"a":"b","b":"c"})),
        (json!({"a":"b"}), json!({"a":null}), json!({})),
        (
            json!({"a":"b","b":"c"}),
            json!({"a":null}),
            json!({"b":"c"}),
        ),
        (json!({"a":["b"]}), json!({"a":"c"}), json!({"a":"c"})),
        (json!({"a":"c"}), json!({"a":["b"]}), json!({"a":["b"]})),
        (
            json!({"a":{"b":"c"}}),
            json!({"a":{"b":"d","c":null}}),
            json!({"a":{"b":"d"}}),
        ),
        (json!({"a":[{"b":"c"}]}), json!({"a":[1]}), json!({"a":[1]})),
        (json!(["a", "b"]), json!(["c", "d"]), json!(["c", "d"])),
        (json!({"a":"b"}), json!(["c"]), json!(["c"])),
        (json!({"a":"foo"}), json!(null), json!(null)),
        (json!({"a":"foo"}), json!("bar"), json!("bar")),
        (json!({"e":null}), json!({"a":1}), json!({"e":null,"a":1})),
        (json!([1, 2]), json!({"a":"b","c":null}), json!({"a":"b"})),
        (
            json!({}),
            json!({"a":{"bb":{"ccc":null}}}),
            json!({"a":{"bb":{}}}),
        ),
    ];
    for (target, p, want) in cases {
        let mut t = target.clone();
        merge_patch(&mut t, &p);
        assert_eq!(t, want, "{target} + {p}");
    }
}

fn run(ops: Vec<BodyOp>, body: &str) -> Result<Value, BodyError> {
    with_ctx(|ctx| body::transform(&ops, body.as_bytes(), ctx))
        .map(|b| serde_json::from_slice(&b).unwrap())
}

fn p(s: &str) -> Pointer {
    Pointer::parse(s).unwrap()
}

#[test]
fn body_ops_table() {
    let cases: Vec<(Vec<BodyOp>, &str, Value)> = vec![
        (
            vec![BodyOp::Set(p("/a/b"), SetValue::Json(json!(1)))],
            "{}",
            json!({"a":{"b":1}}),
        ),
        (
            vec![BodyOp::Set(p("/l/-"), SetValue::Json(json!(3)))],
            r#"{"l":[1]}"#,
            json!({"l":[1,3]}),
        ),
        (
            vec![BodyOp::Set(p("/l/0"), SetValue::Json(json!(9)))],
            r#"{"l":[1]}"#,
            json!({"l":[9]}),
        ),
        (
            vec![BodyOp::Set(
                p("/t"),
                SetValue::Template(tpl("{{consumer.id}}-{{path.id}}"), ValueType::String),
            )],
            "{}",
            json!({"t":"alice-42"}),
        ),
        (
            vec![BodyOp::Set(
                p("/n"),
                SetValue::Template(tpl("{{path.1}}"), ValueType::Int),
            )],
            "{}",
            json!({"n":42}),
        ),
        (
            vec![BodyOp::Set(
                p("/c"),
                SetValue::Template(tpl("{{claim.tier}}"), ValueType::Json),
            )],
            "{}",
            json!({"c":3}),
        ),
        (
            vec![BodyOp::Remove(p("/a"))],
            r#"{"a":1,"b":2}"#,
            json!({"b":2}),
        ),
        (vec![BodyOp::Remove(p("/zz"))], r#"{"a":1}"#, json!({"a":1})),
        (
            vec![BodyOp::Rename(p("/a/old"), "new".into())],
            r#"{"a":{"old":1}}"#,
            json!({"a":{"new":1}}),
        ),
        (
            vec![BodyOp::Rename(p("/missing"), "new".into())],
            r#"{"a":1}"#,
            json!({"a":1}),
        ),
        (
            vec![BodyOp::Copy {
                from: p("/a"),
                path: p("/x/y"),
            }],
            r#"{"a":[1]}"#,
            json!({"a":[1],"x":{"y":[1]}}),
        ),
        (
            vec![BodyOp::Move {
                from: p("/a"),
                path: p("/b"),
            }],
            r#"{"a":1}"#,
            json!({"b":1}),
        ),
        (
            vec![BodyOp::Move {
                from: p("/zz"),
                path: p("/b"),
            }],
            r#"{"a":1}"#,
            json!({"a":1}),
        ),
        (
            vec![BodyOp::MergePatch(json!({"a":null,"b":{"c":1}}))],
            r#"{"a":1}"#,
            json!({"b":{"c":1}}),
        ),
    ];
    for (i, (ops, body, want)) in cases.into_iter().enumerate() {
        assert_eq!(run(ops, body), Ok(want), "case {i}");
    }
}

#[test]
fn body_errors_never_trap() {
    let deep = format!("{}{}", "[".repeat(10_000), "]".repeat(10_000));
    let set = || vec![BodyOp::Set(p("/a"), SetValue::Json(json!(1)))];
    assert!(matches!(run(set(), &deep), Err(BodyError::Invalid(_))));
    assert!(matches!(
        run(set(), "{not json"),
        Err(BodyError::Invalid(_))
    ));
    assert!(matches!(
        run(set(), "\u{0}\u{ff}"),
        Err(BodyError::Invalid(_))
    ));
    // a scalar in the way
    assert!(matches!(
        run(
            vec![BodyOp::Set(p("/a/b"), SetValue::Json(json!(1)))],
            r#"{"a":3}"#
        ),
        Err(BodyError::Failed(_))
    ));
    // a value of the wrong type
    assert!(matches!(
        run(
            vec![BodyOp::Set(
                p("/n"),
                SetValue::Template(tpl("{{header.x-tenant}}"), ValueType::Int)
            )],
            "{}"
        ),
        Err(BodyError::Failed(_))
    ));
    // 127 levels still parse
    let ok = format!("{}{}", "[".repeat(100), "]".repeat(100));
    assert!(run(vec![BodyOp::Remove(p("/0"))], &ok).is_ok());
}

#[test]
fn json_media_types() {
    for (ct, want) in [
        ("application/json", true),
        ("Application/JSON; charset=utf-8", true),
        ("application/problem+json", true),
        ("application/vnd.api+json;v=1", true),
        ("text/json", false),
        ("application/jsonx", false),
        ("text/plain", false),
        ("", false),
        ("+json", false),
        ("application/grpc+json", false),
        ("application/grpc-web+json", false),
        ("application/grpc", false),
    ] {
        assert_eq!(is_json(ct.as_bytes()), want, "{ct}");
    }
    assert!(!is_json(b"application/json\xff"));
}

#[test]
fn templates_render_every_source() {
    let cases: &[(&str, &str)] = &[
        ("plain", "plain"),
        ("{{header.x-tenant}}", "acme"),
        ("{{ header.X-Tenant }}", "acme"),
        ("{{header.missing}}", ""),
        ("{{header.:method}}", "GET"),
        ("{{query.limit}}/{{query.x}}", "5/ y"),
        ("{{path.1}}={{path.id}}", "42=42"),
        ("{{consumer.id}}:{{consumer.plan}}", "alice:gold"),
        ("{{claim.sub}} {{claim.tier}} {{claim.none}}", "u-1 3 "),
        ("{{request.method}} {{request.path}}", "GET /pets/42"),
    ];
    for (text, want) in cases {
        let out = with_ctx(|ctx| tpl(text).render(ctx)).unwrap();
        assert_eq!(String::from_utf8(out).unwrap(), *want, "{text}");
    }
}

#[test]
fn template_errors_and_bounds() {
    let f = Field::root().key("t");
    let cases: &[(&str, &str)] = &[
        ("{{header.x", "t: unclosed \"{{\""),
        ("{{nope.x}}", "t: unknown variable \"{{nope.x}}\""),
        ("{{consumer.groups}}", "consumer has id and plan"),
        ("{{query}}", "parameter name is missing"),
        (
            "{{path.1}}",
            "path captures need the rule's \"captures\" regex",
        ),
    ];
    for (text, want) in cases {
        let e = Template::parse(text, None, &f).unwrap_err().to_string();
        assert!(e.contains(want), "{text}: {e}");
    }
    let names = vec![None];
    let e = Template::parse("{{path.2}}", Some(&names), &f)
        .unwrap_err()
        .to_string();
    assert!(e.contains("no such capture group"), "{e}");
    let big = "x".repeat(4000);
    let h = RequestHead::from_pairs(&[("big", &big)]);
    let t = Template::parse("{{header.big}}{{header.big}}{{header.big}}", None, &f).unwrap();
    let ctx = Ctx {
        head: &h,
        captures: &[],
        identity: None,
        claims: None,
    };
    assert!(t.render(&ctx).is_err());
}

fn hops(json: Value) -> HeaderOps {
    let raw: crate::config::RawHeaders = serde_json::from_value(json).unwrap();
    let rule = json!({"rules":[{"request":{"headers": raw_to_json(&raw)}}]});
    let c = crate::config::Config::parse(rule.to_string().as_bytes()).unwrap();
    let r = c
        .rules
        .first(&kit::matcher::MatchInput {
            route_name: None,
            head: &head(),
        })
        .unwrap();
    r.request.headers.clone()
}

fn raw_to_json(raw: &crate::config::RawHeaders) -> Value {
    json!({"remove": raw.remove, "rename": raw.rename, "replace": raw.replace, "add": raw.add, "append": raw.append})
}

fn set(n: &str, v: &str) -> Edit {
    Edit::Set(n.into(), v.as_bytes().to_vec())
}

#[test]
fn header_semantics_table() {
    let current = |pairs: &[(&str, &str)]| -> Vec<(String, Vec<u8>)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.as_bytes().to_vec()))
            .collect()
    };
    let cases: Vec<(Value, Vec<(String, Vec<u8>)>, Vec<Edit>)> = vec![
        // remove: every copy; absent is a no-op
        (
            json!({"remove":["X-A","x-b"]}),
            current(&[("x-a", "1"), ("x-a", "2")]),
            vec![Edit::Remove("x-a".into())],
        ),
        // rename: copies move, an existing target is dropped
        (
            json!({"rename":{"x-a":"x-b"}}),
            current(&[("x-a", "1"), ("x-a", "2"), ("x-b", "old")]),
            vec![
                Edit::Remove("x-a".into()),
                set("x-b", "1"),
                Edit::Append("x-b".into(), b"2".to_vec()),
            ],
        ),
        (
            json!({"rename":{"x-a":"x-b"}}),
            current(&[("x-b", "old")]),
            vec![],
        ),
        // replace: only when present
        (
            json!({"replace":{"x-a":"new"}}),
            current(&[("x-a", "1")]),
            vec![set("x-a", "new")],
        ),
        (json!({"replace":{"x-a":"new"}}), current(&[]), vec![]),
        // add: only when absent
        (
            json!({"add":{"x-a":"new"}}),
            current(&[("x-a", "1")]),
            vec![],
        ),
        (
            json!({"add":{"x-a":"{{header.x-tenant}}"}}),
            current(&[]),
            vec![set("x-a", "acme")],
        ),
        // append: always
        (
            json!({"append":{"x-a":"2"}}),
            current(&[("x-a", "1")]),
            vec![Edit::Append("x-a".into(), b"2".to_vec())],
        ),
        // order: remove then add re-adds; rename then replace sees the renamed header
        (
            json!({"remove":["x-a"],"add":{"x-a":"fresh"}}),
            current(&[("x-a", "1")]),
            vec![Edit::Remove("x-a".into()), set("x-a", "fresh")],
        ),
        (
            json!({"rename":{"x-a":"x-b"},"replace":{"x-b":"r"}}),
            current(&[("x-a", "1")]),
            vec![Edit::Remove("x-a".into()), set("x-b", "1"), set("x-b", "r")],
        ),
    ];
    for (i, (ops, cur, want)) in cases.into_iter().enumerate() {
        let got = with_ctx(|ctx| hops(ops).plan(&cur, ctx)).unwrap();
        assert_eq!(got, want, "case {i}");
    }
}

fn qops(
    remove: &[&str],
    rename: &[(&str, &str)],
    set: &[(&str, &str)],
    add: &[(&str, &str)],
) -> QueryOps {
    QueryOps {
        remove: remove.iter().map(|s| s.to_string()).collect(),
        rename: rename
            .iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect(),
        set: set.iter().map(|(a, b)| (a.to_string(), tpl(b))).collect(),
        add: add.iter().map(|(a, b)| (a.to_string(), tpl(b))).collect(),
    }
}

#[test]
fn query_and_path_table() {
    let cases: Vec<(&str, Option<&str>, QueryOps, Option<&str>)> = vec![
        (
            "/a?x=1&y=2&x=3",
            None,
            qops(&["x"], &[], &[], &[]),
            Some("/a?y=2"),
        ),
        ("/a?x=1", None, qops(&["x"], &[], &[], &[]), Some("/a")),
        (
            "/a?x=1&y=2",
            None,
            qops(&[], &[("x", "z")], &[], &[]),
            Some("/a?z=1&y=2"),
        ),
        (
            "/a?y=1&x=1&x=2",
            None,
            qops(&[], &[], &[("x", "v")], &[]),
            Some("/a?y=1&x=v"),
        ),
        (
            "/a",
            None,
            qops(&[], &[], &[("x", "a b&c")], &[]),
            Some("/a?x=a%20b%26c"),
        ),
        (
            "/a?x=1",
            None,
            qops(&[], &[], &[], &[("x", "{{header.x-tenant}}")]),
            Some("/a?x=1&x=acme"),
        ),
        ("/a?x=%31", None, qops(&["x"], &[], &[], &[]), Some("/a")),
        ("/a?k=1", None, qops(&["zz"], &[], &[], &[]), None),
        (
            "/pets/42?q=1",
            Some("/v2/animals/{{path.1}}"),
            QueryOps::default(),
            Some("/v2/animals/42?q=1"),
        ),
        (
            "/p",
            Some("x y?#{{header.x-tenant}}"),
            QueryOps::default(),
            Some("/x%20y%3F%23acme"),
        ),
    ];
    for (i, (pq, path, ops, want)) in cases.into_iter().enumerate() {
        let path_t = path.map(tpl);
        let got = with_ctx(|ctx| uri::rewrite(pq, path_t.as_ref(), &ops, ctx)).unwrap();
        assert_eq!(got.as_deref(), want, "case {i}");
    }
    // Values put into a path cannot add separators or climb out of it.
    // A value's `/` is encoded, and a path with an encoded separator or a dot segment is
    // ambiguous (a backend that decodes `%2F` would climb): refused, never sent.
    for (template, want) in [
        ("/users/{{header.x-climb}}", Err(Refused::AmbiguousPath)),
        ("/users/{{header.x-slash}}", Err(Refused::AmbiguousPath)),
        ("/users/{{header.x-dots}}/x", Err(Refused::AmbiguousPath)),
        ("/a/../b", Err(Refused::AmbiguousPath)),
        ("/a/{{header.x-missing}}/b", Err(Refused::AmbiguousPath)),
        (
            "/users/{{header.x-tenant}}",
            Ok(Some("/users/acme".to_string())),
        ),
        ("/users/{{query.x}}", Ok(Some("/users/%20y".to_string()))),
    ] {
        let t = tpl(template);
        let got = with_ctx(|ctx| uri::rewrite("/u", Some(&t), &QueryOps::default(), ctx));
        assert_eq!(got, want, "{template}");
    }
}

#[test]
fn edits_apply_to_a_header_list() {
    let mut h: Vec<(String, Vec<u8>)> = [("a", "1"), ("b", "2"), ("a", "3")]
        .iter()
        .map(|(k, v)| (k.to_string(), v.as_bytes().to_vec()))
        .collect();
    crate::handler::apply_edits(
        &mut h,
        &[
            Edit::Set("a".into(), b"x".to_vec()),
            Edit::Append("b".into(), b"4".to_vec()),
            Edit::Remove("zz".into()),
            Edit::Set("c".into(), b"5".to_vec()),
        ],
    );
    let flat: Vec<(&str, &[u8])> = h.iter().map(|(k, v)| (k.as_str(), v.as_slice())).collect();
    assert_eq!(
        flat,
        vec![("a", &b"x"[..]), ("b", b"2"), ("b", b"4"), ("c", b"5")]
    );
}

/// Issue 10 item 8: every header value rendered from the request goes through
/// `kit::header_value::check`; a control byte refuses the whole set (naming the header).
#[test]
fn rendered_header_values_with_control_bytes_are_refused() {
    let h = RequestHead::from_pairs(&[
        (":method", "GET"),
        (
            ":path",
            "/p?name=%0d%0ax-admin:%201&nul=a%00b&tab=a%09b&ok=caf%C3%A9",
        ),
    ]);
    let claims = json!({"sub": "u\r\nx-admin: 1", "n": 3});
    let ctx = Ctx {
        head: &h,
        captures: &[],
        identity: None,
        claims: Some(&claims),
    };
    use kit::header_value::Unsafe;
    let cases: Vec<(Value, Result<Vec<Edit>, Refused>)> = vec![
        (
            json!({"add":{"x-name":"{{query.name}}"}}),
            Err(Refused::UnsafeHeader("x-name".into(), Unsafe::ControlByte)),
        ),
        (
            json!({"append":{"x-n":"{{query.nul}}"}}),
            Err(Refused::UnsafeHeader("x-n".into(), Unsafe::ControlByte)),
        ),
        (
            json!({"add":{"x-ok":"ok","x-sub":"{{claim.sub}}"}}),
            Err(Refused::UnsafeHeader("x-sub".into(), Unsafe::ControlByte)),
        ),
        (
            json!({"add":{"x-tab":"{{query.tab}}","x-u":"{{query.ok}}","x-n":"{{claim.n}}"}}),
            Ok(vec![
                set("x-n", "3"),
                set("x-tab", "a\tb"),
                Edit::Set("x-u".into(), "café".as_bytes().to_vec()),
            ]),
        ),
    ];
    for (ops, want) in cases {
        let hs = hops(ops.clone());
        assert_eq!(hs.plan(&[], &ctx), want, "{ops}");
        assert_eq!(hs.check_values(&ctx).is_err(), want.is_err(), "{ops}");
    }
}

/// Every byte a client can put in a query value, rendered into a header, a path and a query:
/// a header value is either refused or free of control bytes; a rewritten path never carries
/// a raw control byte, space, `?`, `#` or non-ASCII, and is never ambiguous.
#[test]
fn every_byte_from_the_request_is_refused_or_made_safe() {
    let header = hops(json!({"add": {"x-v": "<{{query.v}}>"}}));
    let path = tpl("/a/{{query.v}}/b");
    let query = qops(&[], &[], &[("w", "{{query.v}}")], &[]);
    for b in 0u8..=255 {
        for v in [format!("%{b:02X}"), format!("x%{b:02X}y%{b:02X}%{b:02X}")] {
            let pq = format!("/p?v={v}");
            let h = RequestHead::from_pairs(&[(":method", "GET"), (":path", &pq)]);
            let ctx = Ctx {
                head: &h,
                captures: &[],
                identity: None,
                claims: None,
            };
            let control = b < 0x20 && b != b'\t' || b == 0x7f;
            match header.plan(&[], &ctx) {
                Ok(edits) => {
                    assert!(!control, "byte {b:#04x} reached a header");
                    for e in edits {
                        if let Edit::Set(_, value) = e {
                            assert_eq!(kit::header_value::check(&value), Ok(()));
                        }
                    }
                }
                Err(r) => {
                    assert!(control, "byte {b:#04x} refused: {r:?}");
                    assert!(matches!(r, Refused::UnsafeHeader(..)));
                }
            }
            for rewritten in [
                uri::rewrite(&pq, Some(&path), &QueryOps::default(), &ctx),
                uri::rewrite(&pq, None, &query, &ctx),
            ] {
                let Ok(Some(out)) = rewritten else {
                    // Only a path that would be ambiguous is refused.
                    assert_eq!(rewritten, Err(Refused::AmbiguousPath), "byte {b:#04x}");
                    continue;
                };
                assert!(
                    out.bytes().all(|c| (0x21..0x7f).contains(&c) && c != b'#'),
                    "byte {b:#04x}: {out:?}"
                );
                let (p, q) = out.split_once('?').unwrap_or((out.as_str(), ""));
                assert!(!kit::request::path_is_ambiguous(p), "byte {b:#04x}: {out}");
                assert!(!q.contains('?'), "byte {b:#04x}: {out}");
            }
        }
    }
}
