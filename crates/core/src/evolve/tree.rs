//! A source tree as builders see it: its files, listed, and a hash of its content (for local
//! directories, which have no commit to name their versions by).

use std::path::{Path, PathBuf};

/// Why a tree could not be read.
#[derive(Debug, thiserror::Error)]
pub enum TreeError {
    /// A directory or file could not be read.
    #[error("{}: {source}", path.display())]
    Read {
        /// What could not be read.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// More files than a source tree may have.
    #[error("the tree has more than {MAX_FILES} files")]
    TooManyFiles,
}

fn read_error(path: &Path) -> impl FnOnce(std::io::Error) -> TreeError + '_ {
    move |source| TreeError::Read {
        path: path.to_owned(),
        source,
    }
}

/// Directories that are build output or tool caches, never source.
const SKIPPED: [&str; 5] = [".git", "target", "node_modules", "__pycache__", ".venv"];

/// The most files a tree may have.
const MAX_FILES: usize = 20_000;

/// Every file of the tree, relative, '/'-separated, sorted.
pub fn list(root: &Path) -> Result<Vec<String>, TreeError> {
    let mut files = Vec::new();
    walk(root, "", &mut files)?;
    files.sort();
    Ok(files)
}

fn walk(dir: &Path, prefix: &str, files: &mut Vec<String>) -> Result<(), TreeError> {
    let entries = std::fs::read_dir(dir).map_err(read_error(dir))?;
    for entry in entries {
        let entry = entry.map_err(read_error(dir))?;
        let name = entry.file_name().to_string_lossy().to_string();
        let kind = entry.file_type().map_err(read_error(&entry.path()))?;
        let path = format!("{prefix}{name}");
        if kind.is_dir() {
            if !SKIPPED.contains(&name.as_str()) {
                walk(&entry.path(), &format!("{path}/"), files)?;
            }
        } else {
            files.push(path);
            if files.len() > MAX_FILES {
                return Err(TreeError::TooManyFiles);
            }
        }
    }
    Ok(())
}

/// A hash of every file's path and content.
pub fn content_hash(root: &Path) -> Result<String, TreeError> {
    use sha2::Digest;
    let mut hasher = sha2::Sha256::new();
    for file in list(root)? {
        let path = root.join(&file);
        let bytes = std::fs::read(&path).map_err(read_error(&path))?;
        hasher.update((file.len() as u64).to_le_bytes());
        hasher.update(file.as_bytes());
        hasher.update((bytes.len() as u64).to_le_bytes());
        hasher.update(&bytes);
    }
    Ok(hex::encode(hasher.finalize()))
}

/// Bytecode caches a tool may write into a tree it builds in place (componentize-py imports
/// the service's modules, and its interpreter ignores the environment that would stop it).
const CACHE_DIRS: [&str; 1] = ["__pycache__"];

/// The cache directories in a tree now, to tell later which ones a build added.
pub fn caches(root: &Path) -> Vec<std::path::PathBuf> {
    let mut found = Vec::new();
    let mut stack = vec![root.to_owned()];
    while let Some(dir) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            if !entry.file_type().is_ok_and(|t| t.is_dir()) {
                continue;
            }
            let name = entry.file_name();
            let name = name.to_string_lossy();
            if CACHE_DIRS.contains(&name.as_ref()) {
                found.push(entry.path());
            } else if !SKIPPED.contains(&name.as_ref()) && found.len() < MAX_FILES {
                stack.push(entry.path());
            }
        }
    }
    found
}

/// Removes the cache directories a build added to a tree (those not in `before`): the
/// owner's directory is left as the build found it.
pub fn remove_added_caches(root: &Path, before: &[std::path::PathBuf]) {
    for dir in caches(root) {
        if !before.contains(&dir)
            && let Err(e) = std::fs::remove_dir_all(&dir)
        {
            tracing::warn!(dir = %dir.display(), error = %e, "cannot remove a cache the build wrote");
        }
    }
}
