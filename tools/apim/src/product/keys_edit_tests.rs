//! `apim keys`' edits on a product file written every way YAML allows a consumer's keys.
use super::*;

const FILE: &str = "apiVersion: apim/v1
plans:
  gold: {limits: [{requests: 1, per: second}]}
consumers:
  # alice: two keys in a flow list
  - id: alice
    plan: gold
    keys: [{sha256: aaaaaaaa00000000000000000000000000000000000000000000000000000001},
           {sha256: aaaaaaaa00000000000000000000000000000000000000000000000000000002}]
    scopes: [x]
  - id: bob
    keys:
    - sha256: bbbbbbbb00000000000000000000000000000000000000000000000000000001
      expires_at: \"2020-01-01T00:00:00Z\"
  - id: carol
    plan: gold
  - {id: dave, plan: gold}
upstreams:
  app: {address: 127.0.0.1, port: 80}
apis:
  - name: a
    upstream: app
    routes:
      - {name: r, match: {prefix: /}, scopes: []}
";

fn keys_of(text: &str, id: &str) -> Vec<Key> {
    let p = super::super::load(text).unwrap().product.unwrap();
    p.consumer(id).unwrap().keys.clone()
}

fn outside_unchanged(before: &str, after: &str, id: &str) {
    // Every line of the other consumers and sections is still there, in order.
    let kept: Vec<&str> = before
        .lines()
        .filter(|l| {
            !l.contains("sha256")
                && !l.contains("keys")
                && !l.contains("expires_at")
                && !l.trim_start().starts_with("{sha256")
        })
        .collect();
    let after_lines: Vec<&str> = after.lines().collect();
    let mut i = 0;
    for l in &kept {
        match after_lines.iter().skip(i).position(|a| a == l) {
            Some(at) => i += at + 1,
            None => panic!("{id}: line {l:?} lost:\n{after}"),
        }
    }
}

#[test]
fn add_rotate_and_revoke_change_only_the_consumers_keys() {
    let e = edit(
        FILE,
        "alice",
        &Change::Add {
            not_before: None,
            expires_at: Some("2999-01-01T00:00:00Z".into()),
        },
    )
    .unwrap();
    let keys = keys_of(&e.text, "alice");
    assert_eq!(keys.len(), 3, "{}", e.text);
    let key = e.key.unwrap();
    assert_eq!(
        keys[2].sha256.v,
        to_hex(&sha256(key.as_bytes())),
        "the digest of the printed key"
    );
    assert_eq!(
        keys[2].expires_at.as_ref().unwrap().v,
        "2999-01-01T00:00:00Z"
    );
    assert!(!e.text.contains(&key), "the plaintext key is never written");
    outside_unchanged(FILE, &e.text, "add");

    // bob: an indentless block list, one key already expired: rotation leaves its expiry.
    let e = edit(
        FILE,
        "bob",
        &Change::Rotate {
            overlap_secs: 86_400,
        },
    )
    .unwrap();
    let keys = keys_of(&e.text, "bob");
    assert_eq!(keys.len(), 2, "{}", e.text);
    assert_eq!(
        keys[0].expires_at.as_ref().unwrap().v,
        "2020-01-01T00:00:00Z"
    );
    assert_eq!(keys[1].expires_at, None);
    outside_unchanged(FILE, &e.text, "rotate");
    // alice's two keys get the overlap's end.
    let e = edit(
        FILE,
        "alice",
        &Change::Rotate {
            overlap_secs: 86_400,
        },
    )
    .unwrap();
    let keys = keys_of(&e.text, "alice");
    let until = rfc3339(now_secs() + 86_400);
    assert!(
        keys[..2]
            .iter()
            .all(|k| k.expires_at.as_ref().is_some_and(
                |x| x.v.as_str() <= until.as_str() && !super::super::time::is_past(&x.v)
            )),
        "{}",
        e.text
    );

    // carol has no keys: one is added after her last line.
    let e = edit(
        FILE,
        "carol",
        &Change::Add {
            not_before: None,
            expires_at: None,
        },
    )
    .unwrap();
    assert_eq!(keys_of(&e.text, "carol").len(), 1, "{}", e.text);
    outside_unchanged(FILE, &e.text, "carol");

    let e = edit(
        FILE,
        "alice",
        &Change::Revoke {
            digest_prefix: "AAAAAAAA00000000000000000000000000000000000000000000000000000001"
                .into(),
        },
    )
    .unwrap();
    assert_eq!(e.key, None);
    let keys = keys_of(&e.text, "alice");
    assert_eq!(keys.len(), 1, "{}", e.text);
    assert!(keys[0].sha256.v.ends_with('2'));
}

#[test]
fn refused_edits_say_why() {
    let cases: [(&str, Change, &str); 5] = [
        (
            "zed",
            Change::Add {
                not_before: None,
                expires_at: None,
            },
            "no consumer \"zed\"",
        ),
        (
            "alice",
            Change::Revoke {
                digest_prefix: "aaaaaaaa".into(),
            },
            "2 keys' sha256 start with aaaaaaaa",
        ),
        (
            "alice",
            Change::Revoke {
                digest_prefix: "aaaa".into(),
            },
            "at least 8 hex digits",
        ),
        (
            "bob",
            Change::Revoke {
                digest_prefix: "cccccccc".into(),
            },
            "0 keys' sha256",
        ),
        (
            "dave",
            Change::Add {
                not_before: None,
                expires_at: None,
            },
            "written on one line",
        ),
    ];
    for (id, change, want) in cases {
        let err = edit(FILE, id, &change).err().unwrap_or_default();
        assert!(err.contains(want), "{id} {change:?}: {err}");
    }
    // A key for an anonymous consumer would hand its rights to every keyless caller.
    let anonymous = FILE.replace(
        "{name: r, match: {prefix: /}, scopes: []}",
        "{name: r, match: {prefix: /}, auth: {anonymous: carol}}",
    );
    let err = edit(
        &anonymous,
        "carol",
        &Change::Add {
            not_before: None,
            expires_at: None,
        },
    )
    .err()
    .unwrap_or_default();
    assert!(
        err.contains("the edit would break the file")
            && err.contains("anonymous consumer \"carol\" has keys"),
        "{err}"
    );
}

#[test]
fn durations() {
    for (s, want) in [
        ("7d", Ok(604_800)),
        ("36h", Ok(129_600)),
        ("90m", Ok(5400)),
        ("600", Ok(600)),
        ("600s", Ok(600)),
    ] {
        assert_eq!(duration(s), want, "{s}");
    }
    assert!(duration("7w").is_err() && duration("d").is_err() && duration("").is_err());
}
