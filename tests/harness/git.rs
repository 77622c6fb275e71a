//! A git repository in a temporary directory, for tests of evolution from source.

use std::path::Path;
use std::process::Command;

/// A git repository in a temporary directory, committed to with the `git` command.
pub struct GitRepo {
    dir: tempfile::TempDir,
}

impl GitRepo {
    /// An empty repository on branch `main`.
    pub fn new() -> GitRepo {
        let dir = tempfile::Builder::new()
            .prefix("micro-repo-")
            .tempdir()
            .expect("creating a temp dir");
        let repo = GitRepo { dir };
        repo.git(&["init", "-q", "-b", "main"]);
        repo
    }

    /// The repository's directory.
    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Its `file://` URL.
    pub fn url(&self) -> String {
        format!("file://{}", self.path().display())
    }

    /// Writes a file (creating its directories).
    pub fn write(&self, path: &str, contents: impl AsRef<[u8]>) {
        let full = self.path().join(path);
        std::fs::create_dir_all(full.parent().expect("a file has a directory"))
            .expect("creating directories");
        std::fs::write(full, contents).expect("writing a file");
    }

    /// Commits everything; answers the commit's id.
    pub fn commit(&self, message: &str) -> String {
        self.git(&["add", "-A"]);
        self.git(&[
            "-c",
            "user.name=micro tests",
            "-c",
            "user.email=tests@micro.invalid",
            "commit",
            "-q",
            "-m",
            message,
        ]);
        self.git(&["rev-parse", "HEAD"]).trim().to_string()
    }

    /// Runs git in the repository; answers its output.
    pub fn git(&self, args: &[&str]) -> String {
        let out = Command::new("git")
            .args(args)
            .current_dir(self.path())
            .output()
            .expect("running git");
        assert!(
            out.status.success(),
            "git {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }
}

impl Default for GitRepo {
    fn default() -> Self {
        Self::new()
    }
}
