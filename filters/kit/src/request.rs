//! A read-only view of the request head.
//!
//! The glue fetches every request header (pseudo-headers included) in one host call and hands
//! this view to the logic: one call is cheaper than one per header, and it is the only way to
//! see duplicate headers (Envoy's single-header read returns only the first value).

/// Most header lines a request may carry before the view refuses to look further: keeps every
/// scan bounded whatever the client sends (Envoy's own default limit is 100).
pub const MAX_HEADERS: usize = 1024;

/// From this many names on, [`RequestHead::fetch`] reads the whole header map in one host call.
pub const WHOLE_MAP_FROM: usize = 4;

/// Headers frameworks obey to treat a request as another method (Rails, Express
/// method-override, Spring's HiddenHttpMethodFilter variants, ASP.NET).
pub const METHOD_OVERRIDE_HEADERS: [&str; 3] = [
    "x-http-method-override",
    "x-http-method",
    "x-method-override",
];

/// Every header [`RequestHead::is_cors_preflight`] reads besides `:method`.
pub const PREFLIGHT_HEADERS: [&str; 7] = [
    "origin",
    "access-control-request-method",
    "content-length",
    "transfer-encoding",
    "x-http-method-override",
    "x-http-method",
    "x-method-override",
];

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RequestHead {
    headers: Vec<(String, Vec<u8>)>,
    /// The headers did not end the stream: a body follows (HTTP/2 may send one with neither
    /// `content-length` nor `transfer-encoding`). Set by the glue from Envoy's end_of_stream.
    body_follows: bool,
}

impl RequestHead {
    /// Names are expected lowercase, as Envoy gives them; they are lowercased again here so a
    /// test or another host cannot break lookups.
    pub fn new(mut headers: Vec<(String, Vec<u8>)>) -> Self {
        headers.truncate(MAX_HEADERS);
        for (name, _) in &mut headers {
            if name.bytes().any(|b| b.is_ascii_uppercase()) {
                *name = name.to_ascii_lowercase();
            }
        }
        Self {
            headers,
            body_follows: false,
        }
    }

    /// Records whether a body follows these headers (`!end_of_stream` at the headers).
    pub fn set_body_follows(&mut self, body_follows: bool) {
        self.body_follows = body_follows;
    }

    /// A view holding only `names` (absent headers are left out, a repeated header's copies
    /// joined by `,` as [`crate::host::Host::request_header`] joins them). Filters work out at
    /// config time which headers they can need, so the common request costs one or two host
    /// calls instead of a copy of the whole header map; from [`WHOLE_MAP_FROM`] names on, the
    /// map is read in one call instead (a single read of an absent header costs two calls).
    pub fn fetch(host: &dyn crate::host::Host, names: &[String]) -> Self {
        let mut head = Self::default();
        if names.len() < WHOLE_MAP_FROM || host.header_reads_are_cheap() {
            head.fetch_more(host, names);
            return head;
        }
        // Every entry is looked at (a copy past any cap could be a second credential).
        let all = host.request_headers();
        for name in names {
            let values: Vec<&[u8]> = all
                .iter()
                .filter(|(k, _)| k.eq_ignore_ascii_case(name))
                .map(|(_, v)| v.as_slice())
                .collect();
            if !values.is_empty() && !head.contains(name) {
                head.headers
                    .push((name.clone(), values.join(b",".as_slice())));
            }
        }
        head
    }

    /// Adds headers fetched later, when the first ones show they are needed (CORS preflight).
    pub fn fetch_more(&mut self, host: &dyn crate::host::Host, names: &[String]) {
        for name in names {
            if self.headers.len() < MAX_HEADERS && !self.contains(name) {
                if let Some(value) = host.request_header(name) {
                    self.headers.push((name.clone(), value));
                }
            }
        }
    }

    /// Convenience for tests and tools: string pairs.
    pub fn from_pairs(pairs: &[(&str, &str)]) -> Self {
        Self::new(
            pairs
                .iter()
                .map(|(k, v)| ((*k).to_string(), v.as_bytes().to_vec()))
                .collect(),
        )
    }

    /// First value of a header.
    pub fn get(&self, name: &str) -> Option<&[u8]> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_slice())
    }

    /// First value, if it is UTF-8.
    pub fn get_str(&self, name: &str) -> Option<&str> {
        self.get(name).and_then(|v| core::str::from_utf8(v).ok())
    }

    /// Every value of a header, in order.
    pub fn all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a [u8]> + 'a {
        self.headers
            .iter()
            .filter(move |(k, _)| k == name)
            .map(|(_, v)| v.as_slice())
    }

    pub fn contains(&self, name: &str) -> bool {
        self.headers.iter().any(|(k, _)| k == name)
    }

    pub fn method(&self) -> &str {
        self.get_str(":method").unwrap_or("")
    }

    /// `:path` as sent: path and query.
    pub fn path_and_query(&self) -> &str {
        self.get_str(":path").unwrap_or("")
    }

    /// The path without its query string.
    pub fn path(&self) -> &str {
        let pq = self.path_and_query();
        pq.split_once('?').map_or(pq, |(p, _)| p)
    }

    /// The path as rules compare it: [`normalize_path`] of [`Self::path`], so `//admin`,
    /// `/%61dmin` and `/x/../admin` cannot slip past a rule written for `/admin`.
    pub fn match_path(&self) -> String {
        normalize_path(self.path())
    }

    /// Whether the path as sent can mean different things to different parsers: an encoded
    /// `/`, `\` or `.` (`%2F`, `%5C`, `%2E`), a literal `\`, an empty segment (`//`), a `.` /
    /// `..` segment, a `;` (path parameters, which servlet containers drop) or bytes that are
    /// not UTF-8. Envoy's `normalize_path`, `merge_slashes` and
    /// `path_with_escaped_slashes_action` remove most of these before any filter runs; when one
    /// is still here, Envoy chose its route on the raw form and a backend may resolve it to
    /// another resource, so no rule may loosen a decision for it (see [`crate::matcher`]).
    pub fn path_is_ambiguous(&self) -> bool {
        // A `:path` that is not UTF-8 reads as "" everywhere else: never let that match as `/`.
        let unreadable = self.contains(":path") && self.get_str(":path").is_none();
        unreadable || path_is_ambiguous(self.path())
    }

    /// The widest reading of an ambiguous path: what a backend that decodes `%2F`, `%5C` and
    /// `%2E`, treats `\` as `/` and drops `;` parameters would serve. Rules that restrict also
    /// match this reading, so a path that some backend resolves to `/admin` meets `/admin`'s
    /// rule whichever way it was spelled. `None` when the path is not ambiguous.
    pub fn wide_match_path(&self) -> Option<String> {
        if !self.path_is_ambiguous() {
            return None;
        }
        let raw = self.get(":path").unwrap_or_default();
        let raw = String::from_utf8_lossy(raw);
        let path = raw.split_once('?').map_or(&*raw, |(p, _)| p);
        Some(wide_path(path))
    }

    /// The raw query string, without `?`.
    pub fn query(&self) -> Option<&str> {
        self.path_and_query().split_once('?').map(|(_, q)| q)
    }

    /// `:authority` (or `host`), without a port, lowercased by the caller when compared.
    pub fn host(&self) -> &str {
        let h = self
            .get_str(":authority")
            .or_else(|| self.get_str("host"))
            .unwrap_or("");
        // `example.com.` names the same host as `example.com`.
        let h = strip_port(h);
        h.strip_suffix('.').unwrap_or(h)
    }

    /// A CORS preflight: `OPTIONS` (exactly: the exemption loosens, and a server may read an
    /// HTTP/2 `options` another way) with `Origin` and `Access-Control-Request-Method`, and
    /// nothing a preflight never carries: no body (the headers end the stream, no `content-length`
    /// other than 0, no `transfer-encoding`) and no method-override header that a framework would obey. Which
    /// of these the view holds is up to the filter: fetch [`PREFLIGHT_HEADERS`] for OPTIONS.
    pub fn is_cors_preflight(&self) -> bool {
        self.method() == "OPTIONS"
            && self.contains("origin")
            && self.contains("access-control-request-method")
            && !self.body_follows
            && !self.contains("transfer-encoding")
            && self.all("content-length").all(|v| v == b"0")
            && !METHOD_OVERRIDE_HEADERS.iter().any(|h| self.contains(h))
    }

    pub fn len(&self) -> usize {
        self.headers.len()
    }

    pub fn is_empty(&self) -> bool {
        self.headers.is_empty()
    }
}

/// RFC 3986 normalisation of a path for matching: percent-escapes of unreserved characters are
/// decoded (other escapes stay, upper-cased, so `%2F` never becomes a separator), runs of `/`
/// are merged, and `.` / `..` segments are resolved (never above the root). Case is kept: paths
/// are case-sensitive. Envoy can do the same before any filter (`normalize_path`,
/// `merge_slashes`); the shipped bootstraps turn that on, and this keeps rules safe without it.
pub fn normalize_path(path: &str) -> String {
    let bytes = path.as_bytes();
    let mut decoded = String::with_capacity(path.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        if b == b'%' {
            let hex = bytes
                .get(i + 1..i + 3)
                .filter(|h| h.iter().all(u8::is_ascii_hexdigit))
                .and_then(|h| core::str::from_utf8(h).ok());
            if let Some(v) = hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                if v.is_ascii_alphanumeric() || b"-._~".contains(&v) {
                    decoded.push(char::from(v));
                } else {
                    decoded.push_str(&format!("%{v:02X}"));
                }
                i += 3;
                continue;
            }
            // A '%' that starts no escape is itself escaped: left bare, it would form a new
            // escape with decoded characters after it (`%%32E` → `%2E`), so normalising twice
            // would give another path (`/.` → `/`).
            decoded.push_str("%25");
            i += 1;
            continue;
        }
        // Non-ASCII bytes cannot occur in a `&str` split at ASCII boundaries except as whole
        // UTF-8 sequences, which are copied through unchanged.
        if let Some(c) = path.get(i..).and_then(|rest| rest.chars().next()) {
            decoded.push(c);
            i += c.len_utf8();
        } else {
            i += 1;
        }
    }
    let mut segments: Vec<&str> = Vec::new();
    for seg in decoded.split('/') {
        match seg {
            "" | "." => {}
            ".." => {
                segments.pop();
            }
            s => segments.push(s),
        }
    }
    let trailing = decoded.ends_with('/') || decoded.ends_with("/.") || decoded.ends_with("/..");
    let mut out = String::with_capacity(decoded.len() + 1);
    for s in &segments {
        out.push('/');
        out.push_str(s);
    }
    if out.is_empty() || (trailing && !segments.is_empty()) {
        out.push('/');
    }
    out
}

/// See [`RequestHead::path_is_ambiguous`].
pub fn path_is_ambiguous(path: &str) -> bool {
    let b = path.as_bytes();
    if b.contains(&b'\\') {
        return true;
    }
    let encoded = b.windows(3).any(|w| {
        matches!(
            w,
            [b'%', b'2', b'f' | b'F' | b'e' | b'E'] | [b'%', b'5', b'c' | b'C']
        )
    });
    // A `;` starts path parameters that servlet containers (Tomcat, Jetty, Spring) strip from
    // every segment before routing (`/admin;x/users` is `/admin/users`, `..;` is `..`), though
    // RFC 3986 and Envoy keep them.
    let dot = |seg: &str| seg == "." || seg == "..";
    encoded || b.contains(&b';') || path.contains("//") || path.split('/').any(dot)
}

/// See [`RequestHead::wide_match_path`]: decode `%2F`, `%5C`, `%2E`, turn `\` into `/`, drop
/// `;…` from every segment, then [`normalize_path`]. Bounded by the path's length.
pub fn wide_path(path: &str) -> String {
    let mut decoded = String::with_capacity(path.len());
    let mut rest = path;
    while let Some(c) = rest.chars().next() {
        // The two hex digits of an escape, upper-cased, without allocating.
        let b = rest.as_bytes();
        let hex = match (b.first(), b.get(1), b.get(2)) {
            (Some(b'%'), Some(h), Some(l)) => {
                Some((h.to_ascii_uppercase(), l.to_ascii_uppercase()))
            }
            _ => None,
        };
        let (out, used) = match (c, hex) {
            (_, Some((b'2', b'F'))) | (_, Some((b'5', b'C'))) => ('/', 3),
            (_, Some((b'2', b'E'))) => ('.', 3),
            ('\\', _) => ('/', 1),
            _ => (c, c.len_utf8()),
        };
        decoded.push(out);
        rest = rest.get(used..).unwrap_or("");
    }
    let stripped: Vec<&str> = decoded
        .split('/')
        .map(|seg| seg.split(';').next().unwrap_or(""))
        .collect();
    normalize_path(&stripped.join("/"))
}

fn strip_port(host: &str) -> &str {
    if host.starts_with('[') {
        // IPv6 literal: [::1]:8080
        return host
            .split_once(']')
            .map_or(host, |(h, _)| h.get(1..).unwrap_or(h));
    }
    host.rsplit_once(':')
        .filter(|(_, port)| port.bytes().all(|b| b.is_ascii_digit()))
        .map_or(host, |(h, _)| h)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn many_names_are_fetched_in_one_read_with_copies_joined() {
        let host = crate::host::MockHost::new(&[
            (":path", "/a"),
            ("x-a", "1"),
            ("x-a", "2"),
            (":method", "GET"),
        ]);
        let names: Vec<String> = [":path", "x-a", ":method", "x-absent"]
            .iter()
            .map(|n| (*n).to_string())
            .collect();
        let head = RequestHead::fetch(&host, &names);
        assert_eq!(host.host_call_names(), ["request_headers"]);
        assert_eq!(head.get("x-a"), Some(b"1,2".as_slice()));
        assert_eq!(head.get(":path"), Some(b"/a".as_slice()));
        assert_eq!(head.get("x-absent"), None);
        // Fewer names: one read each, as before.
        let host = crate::host::MockHost::new(&[(":path", "/a")]);
        let head = RequestHead::fetch(&host, &names[..2]);
        assert_eq!(host.host_call_names(), ["request_header", "request_header"]);
        assert_eq!(head.get(":path"), Some(b"/a".as_slice()));
    }
    #[cfg(all(target_arch = "wasm32", target_os = "unknown"))]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    #[test]
    fn view_reads_pseudo_headers_and_duplicates() {
        let h = RequestHead::from_pairs(&[
            (":method", "GET"),
            (":path", "/pets/1?api_key=x&b=2"),
            (":authority", "Example.com:8080"),
            ("X-Api-Key", "a"),
            ("x-api-key", "b"),
        ]);
        assert_eq!(h.method(), "GET");
        assert_eq!(h.path(), "/pets/1");
        assert_eq!(h.query(), Some("api_key=x&b=2"));
        assert_eq!(h.host(), "Example.com");
        assert_eq!(
            h.all("x-api-key").collect::<Vec<_>>(),
            vec![b"a".as_slice(), b"b"]
        );
        assert!(!h.is_cors_preflight());
    }

    #[test]
    fn paths_are_normalised_for_matching() {
        let cases = [
            ("/admin/users", "/admin/users"),
            ("//admin//users", "/admin/users"),
            ("/%61dmin/users", "/admin/users"),
            ("/x/../admin/users", "/admin/users"),
            ("/./admin/./users/", "/admin/users/"),
            ("/../../admin", "/admin"),
            ("/admin%2Fusers", "/admin%2Fusers"),
            ("/admin%2fusers", "/admin%2Fusers"),
            ("/a/b/..", "/a/"),
            ("/", "/"),
            ("", "/"),
            ("/caf%C3%A9/é", "/caf%C3%A9/é"),
            ("/%zz", "/%25zz"),
            ("/100%", "/100%25"),
            // Found by fuzzing (kit_path): a bare '%' before a decoded escape.
            ("/a/%%32E%%32E/b", "/a/%252E%252E/b"),
            ("/%2%45", "/%252E"),
            // `from_str_radix` alone would read `+4` as a hex number.
            ("/%+41", "/%25+41"),
            ("/ADMIN", "/ADMIN"),
        ];
        for (input, want) in cases {
            assert_eq!(normalize_path(input), want, "{input}");
            assert_eq!(normalize_path(want), want, "idempotent: {input}");
        }
        let h = RequestHead::from_pairs(&[
            (":path", "//%61dmin/../admin?x=1"),
            (":authority", "api.example.com.:443"),
        ]);
        assert_eq!(h.match_path(), "/admin");
        assert_eq!(h.host(), "api.example.com");
    }

    #[test]
    fn ambiguous_paths_are_recognised() {
        let ambiguous = [
            "/public/..%2Fadmin/users",
            "/public/%2e%2e%2fadmin",
            "/public/..%5Cadmin",
            "/public/..%5cadmin",
            "/public/..\\admin",
            "/public/../admin/users",
            "/public/./x",
            "/public/..",
            "//public",
            "/public//x",
            "/public/%2E",
            "/public/..;/admin",
            "/public/..;jsessionid=1/admin",
            "/admin;x/users",
            "/a;b/c",
            "/a/..b;c",
            "/public/.;/x",
        ];
        for p in ambiguous {
            assert!(path_is_ambiguous(p), "{p}");
        }
        for p in [
            "/",
            "/public/x",
            "/public/x/",
            "/a..b/c",
            "/.well-known/x",
            "/%61dmin",
            "/a%20b",
        ] {
            assert!(!path_is_ambiguous(p), "{p}");
        }
        let h = RequestHead::from_pairs(&[(":path", "/public/x?next=/../admin")]);
        assert!(!h.path_is_ambiguous(), "the query is not part of the path");
    }

    #[test]
    fn the_wide_reading_is_what_a_lenient_backend_serves() {
        let cases = [
            ("/public/..%2Fadmin/users", "/admin/users"),
            ("/public/%2e%2e%2fadmin/users", "/admin/users"),
            ("/public/..%5Cadmin/users", "/admin/users"),
            ("/public/..\\admin/users", "/admin/users"),
            ("/public/..;/admin/users", "/admin/users"),
            ("/.;/admin/users", "/admin/users"),
            ("/admin;jsessionid=1/users", "/admin/users"),
            ("/%2Fadmin/users", "/admin/users"),
            ("/x/..%2F..%2Fadmin", "/admin"),
            ("/a/b", "/a/b"),
        ];
        for (input, want) in cases {
            assert_eq!(wide_path(input), want, "{input}");
        }
        let h = RequestHead::from_pairs(&[(":path", "/public/..;/admin?x=/..;/y")]);
        assert_eq!(h.wide_match_path().as_deref(), Some("/admin"));
        let plain = RequestHead::from_pairs(&[(":path", "/public/x")]);
        assert_eq!(plain.wide_match_path(), None);
        let bytes = RequestHead::new(vec![(":path".into(), b"/admin/\xff".to_vec())]);
        assert!(
            bytes.path_is_ambiguous(),
            "a path that is not UTF-8 is ambiguous"
        );
        assert_eq!(bytes.wide_match_path().as_deref(), Some("/admin/\u{fffd}"));
    }

    #[test]
    fn hosts_lose_their_port() {
        for (input, want) in [
            ("a.com", "a.com"),
            ("a.com:80", "a.com"),
            ("[::1]:80", "::1"),
            ("[::1]", "::1"),
            ("", ""),
        ] {
            assert_eq!(strip_port(input), want, "{input}");
        }
    }

    #[test]
    fn preflight_needs_all_three_parts() {
        let yes = RequestHead::from_pairs(&[
            (":method", "OPTIONS"),
            ("origin", "https://a"),
            ("access-control-request-method", "POST"),
        ]);
        assert!(yes.is_cors_preflight());
        let no = RequestHead::from_pairs(&[(":method", "OPTIONS"), ("origin", "https://a")]);
        assert!(!no.is_cors_preflight());
        // A preflight carries no body and asks for no other method.
        let preflight = [
            (":method", "OPTIONS"),
            ("origin", "https://a"),
            ("access-control-request-method", "POST"),
        ];
        for (extra, want) in [
            (("content-length", "0"), true),
            (("content-length", "12"), false),
            (("transfer-encoding", "chunked"), false),
            (("x-http-method-override", "DELETE"), false),
            (("x-http-method", "PUT"), false),
            (("x-method-override", "PATCH"), false),
        ] {
            let mut pairs = preflight.to_vec();
            pairs.push(extra);
            assert_eq!(
                RequestHead::from_pairs(&pairs).is_cors_preflight(),
                want,
                "{extra:?}"
            );
        }
        let mut streamed = RequestHead::from_pairs(&preflight);
        assert!(streamed.is_cors_preflight());
        streamed.set_body_follows(true);
        assert!(
            !streamed.is_cors_preflight(),
            "HTTP/2 DATA without content-length"
        );
        let lower = RequestHead::from_pairs(&[
            (":method", "options"),
            ("origin", "https://a"),
            ("access-control-request-method", "POST"),
        ]);
        assert!(!lower.is_cors_preflight(), "only OPTIONS exactly");
    }

    #[test]
    fn header_count_is_bounded() {
        let many: Vec<(String, Vec<u8>)> = (0..5000)
            .map(|i| ("x".to_string(), vec![i as u8]))
            .collect();
        assert_eq!(RequestHead::new(many).len(), MAX_HEADERS);
    }
}
