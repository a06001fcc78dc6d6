//! Query strings and cookies: reading a named value, and removing it before forwarding.

/// Percent-decodes `application/x-www-form-urlencoded` text (`+` is a space). Invalid escapes
/// are kept as they are, the way browsers and servers treat them.
pub fn percent_decode(input: &str) -> Vec<u8> {
    let bytes = input.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        match b {
            b'+' => out.push(b' '),
            b'%' => {
                let hi = bytes.get(i + 1).and_then(|c| hex_val(*c));
                let lo = bytes.get(i + 2).and_then(|c| hex_val(*c));
                if let (Some(hi), Some(lo)) = (hi, lo) {
                    out.push(hi << 4 | lo);
                    i += 3;
                    continue;
                }
                out.push(b'%');
            }
            _ => out.push(b),
        }
        i += 1;
    }
    out
}

fn hex_val(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

/// Every decoded value of the parameter `name` in a raw query string.
pub fn query_values<'a>(query: &'a str, name: &'a str) -> impl Iterator<Item = Vec<u8>> + 'a {
    query.split('&').filter_map(move |pair| {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        (percent_decode(k) == name.as_bytes()).then(|| percent_decode(v))
    })
}

/// `path?query` with every `name` parameter removed (and the `?` too if nothing is left).
pub fn remove_query_param(path_and_query: &str, name: &str) -> String {
    let Some((path, query)) = path_and_query.split_once('?') else {
        return path_and_query.to_string();
    };
    let kept: Vec<&str> = query
        .split('&')
        .filter(|pair| {
            let k = pair.split_once('=').map_or(*pair, |(k, _)| k);
            percent_decode(k) != name.as_bytes()
        })
        .collect();
    if kept.iter().all(|p| p.is_empty()) {
        path.to_string()
    } else {
        format!("{path}?{}", kept.join("&"))
    }
}

/// Every value of cookie `name` in one `Cookie` header value (RFC 6265 §5.4 syntax).
pub fn cookie_values<'a>(header: &'a [u8], name: &'a str) -> impl Iterator<Item = &'a [u8]> + 'a {
    header.split(|b| *b == b';').filter_map(move |pair| {
        let pair = trim(pair);
        let eq = pair.iter().position(|b| *b == b'=')?;
        let (k, v) = (pair.get(..eq)?, pair.get(eq + 1..)?);
        (trim(k) == name.as_bytes()).then(|| strip_quotes(trim(v)))
    })
}

/// The `Cookie` header value without cookie `name`; `None` when nothing is left.
pub fn remove_cookie(header: &[u8], name: &str) -> Option<Vec<u8>> {
    let kept: Vec<&[u8]> = header
        .split(|b| *b == b';')
        .map(trim)
        .filter(|pair| {
            !pair.is_empty() && {
                let k = pair
                    .iter()
                    .position(|b| *b == b'=')
                    .and_then(|eq| pair.get(..eq));
                k.is_none_or(|k| trim(k) != name.as_bytes())
            }
        })
        .collect();
    (!kept.is_empty()).then(|| kept.join(b"; ".as_slice()))
}

fn trim(s: &[u8]) -> &[u8] {
    let start = s
        .iter()
        .position(|b| !b.is_ascii_whitespace())
        .unwrap_or(s.len());
    let end = s
        .iter()
        .rposition(|b| !b.is_ascii_whitespace())
        .map_or(start, |e| e + 1);
    s.get(start..end).unwrap_or_default()
}

fn strip_quotes(v: &[u8]) -> &[u8] {
    match v {
        [b'"', inner @ .., b'"'] => inner,
        _ => v,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    #[cfg(all(target_arch = "wasm32", target_os = "unknown"))]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    #[test]
    fn decoding() {
        for (input, want) in [
            ("a%20b+c", "a b c"),
            ("%zz%4", "%zz%4"),
            ("%41%61", "Aa"),
            ("", ""),
        ] {
            assert_eq!(percent_decode(input), want.as_bytes(), "{input}");
        }
        assert_eq!(percent_decode("%ff"), vec![0xff]);
    }

    #[test]
    fn query_lookup_and_removal() {
        let q = "a=1&api_key=s%33cret&b&api%5Fkey=two";
        let vals: Vec<Vec<u8>> = query_values(q, "api_key").collect();
        assert_eq!(vals, vec![b"s3cret".to_vec(), b"two".to_vec()]);
        let cases = [
            ("/p?a=1&api_key=x&b=2", "/p?a=1&b=2"),
            ("/p?api_key=x", "/p"),
            ("/p?api_key=x&api_key=y", "/p"),
            ("/p", "/p"),
            ("/p?apikey=x", "/p?apikey=x"),
        ];
        for (input, want) in cases {
            assert_eq!(remove_query_param(input, "api_key"), want, "{input}");
        }
    }

    #[test]
    fn cookie_lookup_and_removal() {
        let h = b"a=1; api_key=\"k1\" ;b=2; api_key=k2";
        let vals: Vec<&[u8]> = cookie_values(h, "api_key").collect();
        assert_eq!(vals, vec![b"k1".as_slice(), b"k2"]);
        assert_eq!(remove_cookie(h, "api_key").unwrap(), b"a=1; b=2".to_vec());
        assert_eq!(remove_cookie(b"api_key=x", "api_key"), None);
        assert_eq!(
            remove_cookie(b"novalue; api_key=x", "api_key").unwrap(),
            b"novalue".to_vec()
        );
    }
}
