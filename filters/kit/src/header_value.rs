//! The one check for a header value the suite builds from client-controlled data (query
//! parameters, claims, consumer fields, body fields rendered by a template).
//!
//! Envoy refuses to forward a header with CR, LF or NUL in it and answers 503 after the filter
//! has already counted the request as handled; other control bytes reach backends that split or
//! log on them. A filter refuses such a value itself (400, counted under its own reason)
//! before it would set the header.

/// Longest value a filter sets from client data: far above any legitimate use, far below
/// Envoy's 60 KiB header-block default, so one rendered value cannot exhaust it.
pub const MAX_HEADER_VALUE: usize = 8 * 1024;

/// Why a value may not become a header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unsafe {
    /// A control byte (anything below 0x20 but horizontal tab, and DEL).
    ControlByte,
    /// Longer than [`MAX_HEADER_VALUE`].
    TooLong,
}

impl Unsafe {
    /// A short phrase for a denial's detail.
    pub fn describe(self) -> &'static str {
        match self {
            Unsafe::ControlByte => "contains a control character",
            Unsafe::TooLong => "is too long for a header",
        }
    }
}

/// `Ok` when `value` may be sent as a header value as it is.
pub fn check(value: &[u8]) -> Result<(), Unsafe> {
    if value.len() > MAX_HEADER_VALUE {
        return Err(Unsafe::TooLong);
    }
    if value.iter().any(|&b| (b < 0x20 && b != b'\t') || b == 0x7f) {
        return Err(Unsafe::ControlByte);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    #[cfg(all(target_arch = "wasm32", target_os = "unknown"))]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    #[test]
    fn control_bytes_and_length_are_refused() {
        let cases: &[(&[u8], Result<(), Unsafe>)] = &[
            (b"alice", Ok(())),
            (b"a\tb", Ok(())),
            (b"caf\xc3\xa9", Ok(())),
            (b"", Ok(())),
            (b"a\r\nx-admin: 1", Err(Unsafe::ControlByte)),
            (b"a\nb", Err(Unsafe::ControlByte)),
            (b"a\0b", Err(Unsafe::ControlByte)),
            (b"a\x7fb", Err(Unsafe::ControlByte)),
            (b"\x1b[31m", Err(Unsafe::ControlByte)),
        ];
        for (v, want) in cases {
            assert_eq!(check(v), *want, "{v:?}");
        }
        assert_eq!(check(&vec![b'a'; MAX_HEADER_VALUE]), Ok(()));
        assert_eq!(
            check(&vec![b'a'; MAX_HEADER_VALUE + 1]),
            Err(Unsafe::TooLong)
        );
    }
}
