//! Where a service's source comes from: a git repository (any URL git accepts, `file://`
//! included) at a ref and a subdirectory, or a local directory. Repositories are kept bare in
//! the data directory and fetched incrementally; a build checks one commit out into its own
//! scratch directory.

use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;

/// Why a source could not be read.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    #[error("{0:?} is not a source: give a git URL (file://, https://, ssh) or a local directory")]
    /// Neither a git URL nor a directory.
    Unrecognised(String),
    #[error("fetching {url}: {message}")]
    /// The repository could not be fetched.
    Fetch {
        /// The repository.
        url: String,
        /// Why.
        message: String,
    },
    #[error("{url} has no branch, tag or commit named {reference:?}")]
    /// The ref is not in the repository.
    NoSuchRef {
        /// The repository.
        url: String,
        /// The branch, tag or commit asked for.
        reference: String,
    },
    #[error("commit {commit} of {url} has no directory {subdir:?}")]
    /// The commit has no such directory.
    NoSuchDir {
        /// The repository.
        url: String,
        /// The commit checked out.
        commit: String,
        /// The directory asked for.
        subdir: String,
    },
    #[error("checking out {commit}: {message}")]
    /// The commit could not be checked out.
    Checkout {
        /// The commit.
        commit: String,
        /// Why.
        message: String,
    },
}

/// A git source: repository, ref (branch, tag or commit; the remote's HEAD when none) and
/// the directory of the service inside it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GitSource {
    /// The repository: file://, https:// or ssh.
    pub url: String,
    /// The branch, tag or commit; the remote's HEAD when none.
    pub reference: Option<String>,
    /// The service's directory in the repository; its root when none.
    pub subdir: Option<String>,
}

/// Where a service is built from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Source {
    /// A git repository.
    Git(GitSource),
    /// A directory on the node's machine, built where it is.
    Local {
        /// The directory.
        path: PathBuf,
    },
}

impl Source {
    /// Reads `url[@ref][#subdir]` or a local directory's path.
    pub fn parse(text: &str) -> Result<Source, SourceError> {
        let text = text.trim();
        let looks_like_git = text.contains("://")
            || text.ends_with(".git")
            || text.contains(".git@")
            || text.contains(".git#")
            || scp_like(text);
        if !looks_like_git {
            let path = Path::new(text);
            return if path.is_dir() {
                Ok(Source::Local {
                    path: path
                        .canonicalize()
                        .map_err(|_| SourceError::Unrecognised(text.into()))?,
                })
            } else {
                Err(SourceError::Unrecognised(text.into()))
            };
        }
        let (rest, subdir) = match text.rsplit_once('#') {
            Some((rest, dir)) => (rest, Some(dir.trim_matches('/').to_string())),
            None => (text, None),
        };
        let (url, reference) = split_ref(rest);
        if url.is_empty() || reference.as_deref() == Some("") {
            return Err(SourceError::Unrecognised(text.into()));
        }
        Ok(Source::Git(GitSource {
            url: url.to_string(),
            reference,
            subdir: subdir.filter(|d| !d.is_empty()),
        }))
    }

    /// The source as a user writes it.
    pub fn display(&self) -> String {
        match self {
            Source::Local { path } => path.display().to_string(),
            Source::Git(g) => {
                let mut s = g.url.clone();
                if let Some(r) = &g.reference {
                    s.push('@');
                    s.push_str(r);
                }
                if let Some(d) = &g.subdir {
                    s.push('#');
                    s.push_str(d);
                }
                s
            }
        }
    }

    /// A default name for the service: the subdirectory's or repository's last part.
    pub fn default_name(&self) -> String {
        let last = match self {
            Source::Local { path } => path
                .file_name()
                .map(|n| n.to_string_lossy().to_string())
                .unwrap_or_default(),
            Source::Git(g) => g
                .subdir
                .as_deref()
                .unwrap_or(&g.url)
                .trim_end_matches('/')
                .rsplit(['/', ':'])
                .next()
                .unwrap_or("")
                .trim_end_matches(".git")
                .to_string(),
        };
        last.to_lowercase().replace('_', "-")
    }
}

/// `user@host:path`, git's scp-like syntax.
fn scp_like(text: &str) -> bool {
    match (text.find('@'), text.find(':')) {
        (Some(at), Some(colon)) => at < colon && !text[..colon].contains('/'),
        _ => false,
    }
}

/// Splits the `@ref` off a URL: an `@` after the start of the URL's path (so not one of
/// `user@host`).
fn split_ref(text: &str) -> (&str, Option<String>) {
    let path_start = if let Some(i) = text.find("://") {
        text[i + 3..].find('/').map_or(text.len(), |j| i + 3 + j)
    } else if scp_like(text) {
        text.find(':').unwrap_or(0)
    } else {
        0
    };
    match text[path_start..].rfind('@') {
        Some(i) => (
            &text[..path_start + i],
            Some(text[path_start + i + 1..].to_string()),
        ),
        None => (text, None),
    }
}

/// One commit of a fetched repository.
#[derive(Debug, Clone)]
pub struct Fetched {
    /// The bare repository in the cache.
    pub repo: PathBuf,
    /// The commit the ref resolved to (hex).
    pub commit: String,
    /// The id of the service directory's tree: a hash of its content.
    pub tree: String,
    /// Whether the fetch brought new objects.
    pub received: bool,
}

fn fetch_error(url: &str, e: impl std::fmt::Display) -> SourceError {
    SourceError::Fetch {
        url: url.to_string(),
        message: e.to_string(),
    }
}

/// Fetches `source` into the cache under `cache_dir` (incrementally, when it was fetched
/// before) and resolves its ref to a commit. Blocking: run it off the executor.
pub fn fetch(cache_dir: &Path, source: &GitSource) -> Result<Fetched, SourceError> {
    let url = &source.url;
    let repo_dir = cache_dir.join(format!(
        "{}.git",
        &micro_base::names::content_hash(url.as_bytes())[..16]
    ));
    let repo = if repo_dir.join("HEAD").exists() {
        gix::open(&repo_dir).map_err(|e| fetch_error(url, e))?
    } else {
        std::fs::create_dir_all(&repo_dir).map_err(|e| fetch_error(url, e))?;
        gix::init_bare(&repo_dir).map_err(|e| fetch_error(url, e))?
    };
    let remote = repo
        .remote_at(url.as_str())
        .map_err(|e| fetch_error(url, e))?
        .with_refspecs(
            [
                "+refs/heads/*:refs/remotes/origin/*",
                "+refs/tags/*:refs/tags/*",
                "+HEAD:refs/remotes/origin/HEAD",
            ],
            gix::remote::Direction::Fetch,
        )
        .map_err(|e| fetch_error(url, e))?;
    let outcome = remote
        .connect(gix::remote::Direction::Fetch)
        .map_err(|e| fetch_error(url, e))?
        .prepare_fetch(gix::progress::Discard, Default::default())
        .map_err(|e| fetch_error(url, e))?
        .receive(gix::progress::Discard, &AtomicBool::new(false))
        .map_err(|e| fetch_error(url, e))?;
    let received = matches!(outcome.status, gix::remote::fetch::Status::Change { .. });
    let commit = resolve(&repo, source)?;
    let tree = subdir_tree(&repo, source, &commit)?;
    Ok(Fetched {
        repo: repo_dir,
        commit: commit.to_string(),
        tree: tree.to_string(),
        received,
    })
}

fn resolve(repo: &gix::Repository, source: &GitSource) -> Result<gix::ObjectId, SourceError> {
    let candidates: Vec<String> = match &source.reference {
        Some(r) => vec![
            format!("refs/remotes/origin/{r}"),
            format!("refs/tags/{r}"),
            r.clone(),
        ],
        None => ["HEAD", "main", "master"]
            .iter()
            .map(|b| format!("refs/remotes/origin/{b}"))
            .collect(),
    };
    for name in &candidates {
        if let Ok(id) = repo.rev_parse_single(format!("{name}^{{commit}}").as_str()) {
            return Ok(id.detach());
        }
    }
    Err(SourceError::NoSuchRef {
        url: source.url.clone(),
        reference: source.reference.clone().unwrap_or_else(|| "HEAD".into()),
    })
}

fn subdir_tree(
    repo: &gix::Repository,
    source: &GitSource,
    commit: &gix::ObjectId,
) -> Result<gix::ObjectId, SourceError> {
    let checkout = |e: gix::Error| SourceError::Checkout {
        commit: commit.to_string(),
        message: e.to_string(),
    };
    let tree = repo
        .find_commit(*commit)
        .map_err(checkout)?
        .tree()
        .map_err(checkout)?;
    let Some(subdir) = &source.subdir else {
        return Ok(tree.id);
    };
    let no_dir = || SourceError::NoSuchDir {
        url: source.url.clone(),
        commit: commit.to_string(),
        subdir: subdir.clone(),
    };
    let entry = tree
        .lookup_entry_by_path(subdir)
        .map_err(checkout)?
        .ok_or_else(no_dir)?;
    if !entry.mode().is_tree() {
        return Err(no_dir());
    }
    Ok(entry.object_id())
}

/// Writes the whole tree of `commit` into `dest` (which must not exist or be empty); returns
/// the number of files written. Blocking.
pub fn checkout(repo_dir: &Path, commit: &str, dest: &Path) -> Result<usize, SourceError> {
    let failed = |message: String| SourceError::Checkout {
        commit: commit.to_string(),
        message,
    };
    let repo = gix::open(repo_dir).map_err(|e| failed(e.to_string()))?;
    let id = gix::ObjectId::from_hex(commit.as_bytes()).map_err(|e| failed(e.to_string()))?;
    let tree = repo
        .find_commit(id)
        .map_err(|e| failed(e.to_string()))?
        .tree_id()
        .map_err(|e| failed(e.to_string()))?;
    let mut index = repo
        .index_from_tree(&tree)
        .map_err(|e| failed(e.to_string()))?;
    let mut options = repo
        .checkout_options(gix::worktree::stack::state::attributes::Source::IdMapping)
        .map_err(|e| failed(e.to_string()))?;
    options.destination_is_initially_empty = true;
    std::fs::create_dir_all(dest).map_err(|e| failed(format!("{}: {e}", dest.display())))?;
    let objects = repo
        .objects
        .clone()
        .into_arc()
        .map_err(|e| failed(e.to_string()))?;
    let outcome = gix::worktree::state::checkout(
        &mut index,
        dest,
        objects,
        &gix::progress::Discard,
        &gix::progress::Discard,
        &AtomicBool::new(false),
        options,
    )
    .map_err(|e| failed(e.to_string()))?;
    if let Some(error) = outcome.errors.first() {
        return Err(failed(format!("{}: {}", error.path, error.error)));
    }
    Ok(outcome.files_updated)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn git(text: &str) -> GitSource {
        match Source::parse(text).unwrap() {
            Source::Git(g) => g,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn reads_refs_and_subdirectories() {
        let g = git("file:///tmp/repo@v2#services/hello");
        assert_eq!(g.url, "file:///tmp/repo");
        assert_eq!(g.reference.as_deref(), Some("v2"));
        assert_eq!(g.subdir.as_deref(), Some("services/hello"));
        let g = git("https://user@example.com/org/repo.git");
        assert_eq!(
            (g.url.as_str(), g.reference),
            ("https://user@example.com/org/repo.git", None)
        );
        let g = git("git@example.com:org/repo.git@feature/x");
        assert_eq!(g.url, "git@example.com:org/repo.git");
        assert_eq!(g.reference.as_deref(), Some("feature/x"));
        assert!(Source::parse("file:///tmp/repo@").is_err());
        assert!(Source::parse("/no/such/dir/anywhere").is_err());
    }

    #[test]
    fn names_a_service_after_its_directory() {
        assert_eq!(
            Source::parse("file:///x/My_Repo.git")
                .unwrap()
                .default_name(),
            "my-repo"
        );
        assert_eq!(
            Source::parse("file:///x/r#svc/counter")
                .unwrap()
                .default_name(),
            "counter"
        );
    }
}
