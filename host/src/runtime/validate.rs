//! Deploy-time checks, each with an error that says what is wrong and what to do.

/// Why a component cannot be deployed.
#[derive(Debug, thiserror::Error)]
pub enum DeployError {
    #[error("not a WebAssembly binary: {0}")]
    NotWasm(String),
    #[error(
        "this is a core WebAssembly module, not a component; build for wasm32-wasip2 \
         (or wrap it with `wasm-tools component new`)"
    )]
    CoreModule,
    #[error("component of {size} bytes exceeds this node's limit of {limit} bytes")]
    TooLarge { size: usize, limit: usize },
    #[error("invalid component: {0}")]
    Invalid(String),
    #[error(
        "wrong world: a service must export `micro:network/handler` (world micro:network/service) \
         or `wasi:http/incoming-handler` (world wasi:http/proxy); this component exports {}",
        if exports.is_empty() { "nothing".to_string() } else { exports.join(", ") }
    )]
    WrongWorld { exports: Vec<String> },
    #[error("the component imports `{name}`, which this node does not provide ({detail})")]
    MissingImport { name: String, detail: String },
    #[error("the service failed when asked to describe itself: {0}")]
    Describe(String),
    #[error("invalid service name {name:?}: {reason}")]
    InvalidName { name: String, reason: String },
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

/// Service names are path segments and storage namespaces: keep them plain.
pub fn check_name(name: &str) -> Result<(), DeployError> {
    let bad = |reason: &str| {
        Err(DeployError::InvalidName {
            name: name.into(),
            reason: reason.into(),
        })
    };
    if name.is_empty() || name.len() > 63 {
        return bad("a name has 1 to 63 characters");
    }
    if !name
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
    {
        return bad("a name has only lowercase letters, digits and '-'");
    }
    if name.starts_with('-') || name.ends_with('-') {
        return bad("a name starts and ends with a letter or digit");
    }
    if name == "api" {
        return bad("'api' is reserved for the node's own API");
    }
    Ok(())
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

    #[test]
    fn names_are_plain_path_segments() {
        assert!(check_name("hello-2").is_ok());
        for bad in ["", "Hello", "a/b", "-a", "api", &"a".repeat(64)] {
            assert!(check_name(bad).is_err(), "{bad:?}");
        }
    }
}
