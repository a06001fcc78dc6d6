//! The demo API keys (DEMO ONLY, also in the shipped examples): alice (plan gold, group
//! partners) and bob (plan silver) where the tests' api-key-auth configs list them, by their
//! SHA-256 digests `dc275ab1…` and `3ddaba5e…`.

/// Alice's demo key.
pub const ALICE: &str = "demo-key-alice-0123456789abcdef";
/// Bob's demo key.
pub const BOB: &str = "demo-key-bob-0123456789abcdef0";
