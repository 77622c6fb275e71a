//! A source tree as builders see it: its files, listed, and a hash of its content (for local
//! directories, which have no commit to name their versions by).

use std::path::Path;

/// Directories that are build output or tool caches, never source.
const SKIPPED: [&str; 5] = [".git", "target", "node_modules", "__pycache__", ".venv"];

/// The most files a tree may have.
const MAX_FILES: usize = 20_000;

/// Every file of the tree, relative, '/'-separated, sorted.
pub fn list(root: &Path) -> Result<Vec<String>, String> {
    let mut files = Vec::new();
    walk(root, "", &mut files)?;
    files.sort();
    Ok(files)
}

fn walk(dir: &Path, prefix: &str, files: &mut Vec<String>) -> Result<(), String> {
    let entries = std::fs::read_dir(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    for entry in entries {
        let entry = entry.map_err(|e| format!("{}: {e}", dir.display()))?;
        let name = entry.file_name().to_string_lossy().to_string();
        let kind = entry.file_type().map_err(|e| format!("{name}: {e}"))?;
        let path = format!("{prefix}{name}");
        if kind.is_dir() {
            if !SKIPPED.contains(&name.as_str()) {
                walk(&entry.path(), &format!("{path}/"), files)?;
            }
        } else {
            files.push(path);
            if files.len() > MAX_FILES {
                return Err(format!("the tree has more than {MAX_FILES} files"));
            }
        }
    }
    Ok(())
}

/// A hash of every file's path and content.
pub fn content_hash(root: &Path) -> Result<String, String> {
    use sha2::Digest;
    let mut hasher = sha2::Sha256::new();
    for file in list(root)? {
        let bytes = std::fs::read(root.join(&file)).map_err(|e| format!("{file}: {e}"))?;
        hasher.update((file.len() as u64).to_le_bytes());
        hasher.update(file.as_bytes());
        hasher.update((bytes.len() as u64).to_le_bytes());
        hasher.update(&bytes);
    }
    Ok(hex::encode(hasher.finalize()))
}
