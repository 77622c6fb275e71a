//! Deploy-time checks, each with an error that says what is wrong and what to do.

/// Why a component cannot be deployed.
#[derive(Debug, thiserror::Error)]
pub enum DeployError {
    /// The bytes are not WebAssembly at all.
    #[error("not a WebAssembly binary: {0}")]
    NotWasm(String),
    #[error(
        "this is a core WebAssembly module, not a component; build for wasm32-wasip2 \
         (or wrap it with `wasm-tools component new`)"
    )]
    /// A core module where a component was expected.
    CoreModule,
    #[error("component of {size} bytes exceeds this node's limit of {limit} bytes")]
    /// Larger than the node accepts.
    TooLarge {
        /// The component's size, in bytes.
        size: usize,
        /// The node's limit, in bytes.
        limit: usize,
    },
    /// The component does not validate or compile.
    #[error("invalid component: {0}")]
    Invalid(String),
    #[error(
        "wrong world: a service must export `micro:network/handler` (world micro:network/service) \
         or `wasi:http/incoming-handler` (world wasi:http/proxy); this component exports {}",
        if exports.is_empty() { "nothing".to_string() } else { exports.join(", ") }
    )]
    /// It exports neither a service nor a wasi:http handler.
    WrongWorld {
        /// What it does export.
        exports: Vec<String>,
    },
    #[error("the component imports `{name}`, which this node does not provide ({detail})")]
    /// It imports something the node does not offer.
    MissingImport {
        /// The import.
        name: String,
        /// The linker's full message.
        detail: String,
    },
    /// Its `describe` failed.
    #[error("the service failed when asked to describe itself: {0}")]
    Describe(String),
    /// The service's name is not one the node takes.
    #[error(transparent)]
    InvalidName(#[from] micro_base::names::InvalidName),
    /// Recording the service failed.
    #[error("the node could not record the service: {0}")]
    Store(String),
    /// Governance refused the deploy (the message says which governance and why).
    #[error("{0}")]
    Denied(String),
}

/// Checks the bytes are a component before spending time compiling them.
pub fn check_binary(wasm: &[u8], limit: usize) -> Result<(), DeployError> {
    if wasm.len() > limit {
        return Err(DeployError::TooLarge {
            size: wasm.len(),
            limit,
        });
    }
    if !wasm.starts_with(b"\0asm") {
        let shown: String = wasm
            .iter()
            .take(4)
            .map(|b| format!("{b:02x}"))
            .collect::<Vec<_>>()
            .join(" ");
        return Err(DeployError::NotWasm(format!(
            "it starts with bytes [{shown}] instead of the wasm magic [00 61 73 6d]"
        )));
    }
    if wasmparser::Parser::is_core_wasm(wasm) {
        return Err(DeployError::CoreModule);
    }
    if !wasmparser::Parser::is_component(wasm) {
        return Err(DeployError::NotWasm(
            "unknown WebAssembly version or layer".into(),
        ));
    }
    Ok(())
}

/// Turns a linker error into the import it could not satisfy.
pub fn missing_import(error: &wasmtime::Error) -> DeployError {
    let detail = format!("{error:#}");
    let name = detail
        .split('`')
        .nth(1)
        .unwrap_or("an unknown import")
        .to_string();
    DeployError::MissingImport { name, detail }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn garbage_core_modules_and_oversized_inputs_are_told_apart() {
        assert!(matches!(
            check_binary(b"hello", 100),
            Err(DeployError::NotWasm(_))
        ));
        assert!(matches!(
            check_binary(b"\0asm\x01\0\0\0", 100),
            Err(DeployError::CoreModule)
        ));
        assert!(matches!(
            check_binary(&[0; 200], 100),
            Err(DeployError::TooLarge { .. })
        ));
        assert!(check_binary(b"\0asm\x0d\0\x01\0", 100).is_ok());
    }
}
