//! Unary gRPC over the dynamic-module ABI's HTTP streams: the ABI has HTTP callouts and streams
//! but no gRPC client, so a call is an HTTP/2 POST with the message in gRPC's frame, and its
//! answer (headers, data, trailers) is gathered per stream until it completes.

/// Largest answer kept (a Rate Limit Service answer is a few hundred bytes).
pub const MAX_ANSWER_BYTES: usize = 64 * 1024;

/// gRPC status `UNAVAILABLE`: the stream was reset or never answered.
pub const UNAVAILABLE: u32 = 14;
/// gRPC status `INTERNAL`: the answer was not a well-formed gRPC message.
pub const INTERNAL: u32 = 13;

/// `message` in gRPC's length-prefixed frame (uncompressed).
pub fn frame(message: &[u8]) -> Option<Vec<u8>> {
    let len = u32::try_from(message.len()).ok()?;
    let mut out = Vec::with_capacity(message.len() + 5);
    out.push(0);
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(message);
    Some(out)
}

/// What one call's stream has received so far.
#[derive(Debug, Default)]
pub struct Answer {
    pub headers: Vec<(String, Vec<u8>)>,
    pub data: Vec<u8>,
    pub trailers: Vec<(String, Vec<u8>)>,
    /// More data than [`MAX_ANSWER_BYTES`] arrived.
    pub oversize: bool,
}

impl Answer {
    pub fn add_data(&mut self, chunk: &[u8]) {
        if self.data.len().saturating_add(chunk.len()) > MAX_ANSWER_BYTES {
            self.oversize = true;
            return;
        }
        self.data.extend_from_slice(chunk);
    }

    /// The call's status and message: `grpc-status` from the trailers (or the headers of a
    /// trailers-only answer); a non-200 or missing answer is `UNAVAILABLE`, a malformed one
    /// `INTERNAL`.
    pub fn outcome(&self) -> (u32, Vec<u8>) {
        let find = |map: &[(String, Vec<u8>)], name: &str| {
            map.iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(name))
                .map(|(_, v)| v.clone())
        };
        if find(&self.headers, ":status").as_deref() != Some(b"200".as_slice()) {
            return (UNAVAILABLE, Vec::new());
        }
        let status =
            find(&self.trailers, "grpc-status").or_else(|| find(&self.headers, "grpc-status"));
        let Some(status) = status
            .and_then(|s| String::from_utf8(s).ok())
            .and_then(|s| s.trim().parse::<u32>().ok())
        else {
            return (UNAVAILABLE, Vec::new());
        };
        if status != 0 {
            return (status, Vec::new());
        }
        if self.oversize {
            return (INTERNAL, Vec::new());
        }
        match unframe(&self.data) {
            Some(message) => (0, message.to_vec()),
            None => (INTERNAL, Vec::new()),
        }
    }
}

/// The one uncompressed message of a unary answer.
fn unframe(data: &[u8]) -> Option<&[u8]> {
    let (&flag, rest) = data.split_first()?;
    if flag != 0 {
        return None;
    }
    let (len, message) = rest.split_first_chunk::<4>()?;
    let len = usize::try_from(u32::from_be_bytes(*len)).ok()?;
    (message.len() == len).then_some(message)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(pairs: &[(&str, &str)]) -> Vec<(String, Vec<u8>)> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_string(), v.as_bytes().to_vec()))
            .collect()
    }

    #[test]
    fn outcomes() {
        let ok = frame(b"hi").unwrap();
        let cases: Vec<(Answer, (u32, Vec<u8>))> = vec![
            (
                Answer {
                    headers: h(&[(":status", "200")]),
                    data: ok.clone(),
                    trailers: h(&[("grpc-status", "0")]),
                    oversize: false,
                },
                (0, b"hi".to_vec()),
            ),
            // Trailers-only error.
            (
                Answer {
                    headers: h(&[(":status", "200"), ("grpc-status", "7")]),
                    ..Answer::default()
                },
                (7, vec![]),
            ),
            (
                Answer {
                    headers: h(&[(":status", "503")]),
                    ..Answer::default()
                },
                (UNAVAILABLE, vec![]),
            ),
            (Answer::default(), (UNAVAILABLE, vec![])),
            // No status at all: not an answer.
            (
                Answer {
                    headers: h(&[(":status", "200")]),
                    data: ok.clone(),
                    ..Answer::default()
                },
                (UNAVAILABLE, vec![]),
            ),
            // A frame whose length lies.
            (
                Answer {
                    headers: h(&[(":status", "200")]),
                    data: vec![0, 0, 0, 0, 9, 1],
                    trailers: h(&[("grpc-status", "0")]),
                    oversize: false,
                },
                (INTERNAL, vec![]),
            ),
            // Compressed: not ours.
            (
                Answer {
                    headers: h(&[(":status", "200")]),
                    data: vec![1, 0, 0, 0, 0],
                    trailers: h(&[("grpc-status", "0")]),
                    oversize: false,
                },
                (INTERNAL, vec![]),
            ),
        ];
        for (answer, want) in cases {
            assert_eq!(answer.outcome(), want, "{answer:?}");
        }
    }

    #[test]
    fn answers_are_bounded() {
        let mut a = Answer::default();
        a.add_data(&vec![0; MAX_ANSWER_BYTES]);
        a.add_data(&[0]);
        assert!(a.oversize);
        assert_eq!(a.data.len(), MAX_ANSWER_BYTES);
    }
}
