//! Per-call resource limits: a memory cap that traps with an error we can recognise.

use wasmtime::ResourceLimiter;

/// The error a call traps with when it grows past its memory limit.
#[derive(Debug, thiserror::Error)]
#[error("memory limit of {limit_mib} MiB exceeded (asked for {asked_mib} MiB)")]
pub struct MemoryLimitExceeded {
    /// The limit, in MiB.
    pub limit_mib: u64,
    /// What the instance asked to grow to, in MiB.
    pub asked_mib: u64,
}

/// Caps linear memory per instance and table size per call.
pub struct CallLimiter {
    memory_bytes: usize,
}

impl CallLimiter {
    /// A limiter allowing `memory_mib` MiB per linear memory.
    pub fn new(memory_mib: u64) -> Self {
        Self {
            memory_bytes: (memory_mib as usize) << 20,
        }
    }
}

impl ResourceLimiter for CallLimiter {
    fn memory_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if desired > self.memory_bytes {
            return Err(MemoryLimitExceeded {
                limit_mib: (self.memory_bytes >> 20) as u64,
                asked_mib: (desired >> 20) as u64,
            }
            .into());
        }
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(desired <= 1_000_000)
    }
}
