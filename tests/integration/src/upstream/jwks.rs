//! A JWKS endpoint for scope-authz tests, with switches to rotate keys and to go down.
//!
//! Every path names an instance, so tests running in parallel do not disturb each other:
//!
//! - `GET /jwks/<name>/keys`: the instance's JWKS (`jwks-1.json` at first), or 503 when down;
//! - `/jwks/<name>/rotate/<1|2>`: serve `jwks-1.json` or `jwks-2.json` (adds `rsa2`) from now on;
//! - `/jwks/<name>/down`, `/jwks/<name>/up`: answer 503 / the keys;
//! - `/jwks/<name>/hits`: how many times `keys` was asked for, as text.

use super::{EchoRequest, Reply};
use std::collections::HashMap;
use std::sync::Mutex;

const JWKS_1: &str = include_str!("../../fixtures/scope-authz/jwks-1.json");
const JWKS_2: &str = include_str!("../../fixtures/scope-authz/jwks-2.json");

#[derive(Clone, Copy)]
struct Instance {
    version: u8,
    down: bool,
    hits: u64,
}

static STATE: Mutex<Option<HashMap<String, Instance>>> = Mutex::new(None);

fn with<T>(name: &str, f: impl FnOnce(&mut Instance) -> T) -> T {
    let mut guard = STATE
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let map = guard.get_or_insert_with(HashMap::new);
    let inst = map.entry(name.to_string()).or_insert(Instance {
        version: 1,
        down: false,
        hits: 0,
    });
    f(inst)
}

/// The handler for the `/jwks/` prefix; `rest` is `<name>/<action>[/arg]`.
pub fn serve(_request: &EchoRequest, rest: &str) -> Reply {
    let rest = rest.split('?').next().unwrap_or_default();
    let mut parts = rest.splitn(3, '/');
    let (name, action, arg) = (
        parts.next().unwrap_or_default(),
        parts.next().unwrap_or_default(),
        parts.next(),
    );
    match action {
        "keys" => with(name, |i| {
            i.hits += 1;
            if i.down {
                Reply::text(503, "jwks down")
            } else {
                let doc = if i.version == 2 { JWKS_2 } else { JWKS_1 };
                Reply {
                    status: 200,
                    headers: vec![("content-type".into(), "application/json".into())],
                    body: doc.as_bytes().to_vec(),
                }
            }
        }),
        "rotate" => match arg {
            Some(v @ ("1" | "2")) => with(name, |i| {
                i.version = if v == "2" { 2 } else { 1 };
                Reply::text(200, "rotated")
            }),
            _ => Reply::text(400, "rotate to 1 or 2"),
        },
        "down" => with(name, |i| {
            i.down = true;
            Reply::text(200, "down")
        }),
        "up" => with(name, |i| {
            i.down = false;
            Reply::text(200, "up")
        }),
        "hits" => with(name, |i| Reply::text(200, &i.hits.to_string())),
        _ => Reply::text(404, "unknown jwks action"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn get(path: &str) -> Reply {
        let req = EchoRequest {
            method: "GET".into(),
            path: path.into(),
            headers: vec![],
            body: vec![],
        };
        serve(&req, path.trim_start_matches("/jwks/"))
    }

    #[test]
    fn rotates_and_goes_down() {
        assert!(String::from_utf8_lossy(&get("/jwks/u/keys").body).contains("rsa1"));
        assert!(!String::from_utf8_lossy(&get("/jwks/u/keys").body).contains("rsa2"));
        get("/jwks/u/rotate/2");
        assert!(String::from_utf8_lossy(&get("/jwks/u/keys").body).contains("rsa2"));
        get("/jwks/u/down");
        assert_eq!(get("/jwks/u/keys").status, 503);
        get("/jwks/u/up");
        assert_eq!(get("/jwks/u/keys").status, 200);
        assert_eq!(get("/jwks/u/hits").body, b"5");
        assert_eq!(get("/jwks/u/rotate/3").status, 400);
    }
}
