//! What things are called: service names (path segments and storage namespaces), a service
//! reference with its version, and the content hash that names components and their code.

/// A service name the node does not take, and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid service name {name:?}: {reason}")]
pub struct InvalidName {
    /// The name as given.
    pub name: String,
    /// What rule it breaks.
    pub reason: String,
}

/// Service names are path segments and storage namespaces: keep them plain.
pub fn check_name(name: &str) -> Result<(), InvalidName> {
    let bad = |reason: &str| {
        Err(InvalidName {
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

/// Splits `name@version` into its parts.
pub fn split_version(service: &str) -> (&str, Option<&str>) {
    match service.split_once('@') {
        Some((name, version)) => (name, Some(version)),
        None => (service, None),
    }
}

/// A stable content hash (SHA-256, hex), used to name components and their compiled code.
pub fn content_hash(bytes: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_plain_path_segments() {
        assert!(check_name("hello-2").is_ok());
        for bad in ["", "Hello", "a/b", "-a", "api", &"a".repeat(64)] {
            assert!(check_name(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn a_reference_splits_at_its_version() {
        assert_eq!(split_version("hello@abc"), ("hello", Some("abc")));
        assert_eq!(split_version("hello"), ("hello", None));
    }

    #[test]
    fn the_hash_is_sha256_hex() {
        assert_eq!(
            content_hash(b""),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }
}
