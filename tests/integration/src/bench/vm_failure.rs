//! A Wasm VM Envoy failed to create, read from its log.
//!
//! When Envoy cannot create a module's VM on a worker (its per-thread copy), Envoy 1.40 leaves
//! that filter out of the worker's chain, whatever its `failure_policy` (FAIL_CLOSED included):
//! the requests are answered without it, so neither the status nor the other filters' counters
//! show it; only the log does. Under valgrind this happens once the V8 instances' address
//! reservations (8 GiB + 64 KiB of guard region per Wasm memory) pass valgrind 3.19's 128 GiB
//! ceiling: 14 fit, and a one-worker Envoy holds three per module (the base VM, the main
//! thread's and the worker's), so five modules in their own VMs (15) do not.

/// The lines Envoy 1.40 logs (at error level) when a VM cannot be created or initialized.
const MARKERS: [&str; 2] = ["Failed to create new Wasm instance", "Wasm VM failed"];

/// The first log line saying a Wasm VM could not be created, if any.
pub fn failed_vm(log: &str) -> Option<&str> {
    log.lines()
        .find(|line| MARKERS.iter().any(|m| line.contains(m)))
        .map(str::trim)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_vm_envoy_could_not_create_is_found_in_its_log() {
        let cases: &[(&str, Option<&str>)] = &[
            ("", None),
            (
                "[..][warning][main] There is no configured limit\n\
                 [..][debug][wasm] Thread-Local Wasm created 14 now active\n",
                None,
            ),
            // As Envoy 1.40 logs it when valgrind refuses the 15th V8 reservation.
            (
                "[..][warning][main] There is no configured limit\n\
                 [..][error][wasm] [source/extensions/common/wasm/wasm_vm.cc:38] Failed to create new Wasm instance\n\
                 [..][error][wasm] [source/extensions/common/wasm/wasm.cc:104] Wasm VM failed Failed to initialize Wasm code\n",
                Some("[..][error][wasm] [source/extensions/common/wasm/wasm_vm.cc:38] Failed to create new Wasm instance"),
            ),
            (
                "[..][error][wasm] Wasm VM failed Failed to initialize Wasm code",
                Some("[..][error][wasm] Wasm VM failed Failed to initialize Wasm code"),
            ),
        ];
        for (log, want) in cases {
            assert_eq!(failed_vm(log), *want, "{log}");
        }
    }
}
