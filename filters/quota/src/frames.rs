//! Counting the request messages of a gRPC stream as its body flows by, for a rule's
//! `message_cost`: every gRPC message is framed by a 5-byte prefix (a compressed-flag byte,
//! then its length as a big-endian u32). A message counts when its prefix is complete, before
//! its bytes are forwarded, so a refusal stops it from reaching the service. Constant state
//! whatever the body: the prefix so far and how many message bytes to step over.

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Frames {
    prefix: [u8; 5],
    /// Bytes of `prefix` seen.
    have: usize,
    /// Bytes of the current message still to step over.
    skip: u64,
}

impl Frames {
    /// Feeds the next chunk of the body; how many messages started in it.
    pub fn feed(&mut self, mut bytes: &[u8]) -> u64 {
        let mut started = 0u64;
        while !bytes.is_empty() {
            if self.skip > 0 {
                let n = usize::try_from(self.skip)
                    .unwrap_or(usize::MAX)
                    .min(bytes.len());
                bytes = bytes.get(n..).unwrap_or_default();
                self.skip -= n as u64;
                continue;
            }
            let n = (5 - self.have).min(bytes.len());
            if let (Some(to), Some(from)) = (
                self.prefix.get_mut(self.have..self.have + n),
                bytes.get(..n),
            ) {
                to.copy_from_slice(from);
            }
            self.have += n;
            bytes = bytes.get(n..).unwrap_or_default();
            if self.have == 5 {
                let [_, a, b, c, d] = self.prefix;
                self.skip = u64::from(u32::from_be_bytes([a, b, c, d]));
                self.have = 0;
                started = started.saturating_add(1);
            }
        }
        started
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    #[cfg(all(target_arch = "wasm32", target_os = "unknown"))]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    fn frame(len: u32) -> Vec<u8> {
        let mut f = vec![0];
        f.extend_from_slice(&len.to_be_bytes());
        f.extend(std::iter::repeat_n(7u8, len as usize));
        f
    }

    #[test]
    fn messages_count_when_their_prefix_completes_whatever_the_chunking() {
        let body: Vec<u8> = [frame(3), frame(0), frame(10), frame(1)].concat();
        // Whole, byte by byte, and in chunks that split prefixes and messages.
        for chunk in [body.len(), 1, 2, 3, 4, 6, 7] {
            let mut frames = Frames::default();
            let counts: Vec<u64> = body.chunks(chunk).map(|c| frames.feed(c)).collect();
            assert_eq!(counts.iter().sum::<u64>(), 4, "chunks of {chunk}");
            assert_eq!((frames.have, frames.skip), (0, 0), "ends between messages");
        }
        // A prefix cut short counts nothing yet; its message counts once it completes.
        let mut frames = Frames::default();
        assert_eq!(frames.feed(&[0, 0, 0]), 0);
        assert_eq!(frames.feed(&[0, 2, 9]), 1);
        assert_eq!(frames.feed(&[9]), 0);
        // A huge declared length is stepped over without being held.
        let mut frames = Frames::default();
        assert_eq!(frames.feed(&[1, 255, 255, 255, 255, 1, 2]), 1);
        assert_eq!(frames.feed(&[0; 64]), 0);
    }
}
