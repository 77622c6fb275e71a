//! The sandbox one build runs in: a scratch directory, a clean environment, a short allowlist of
//! tools, a time limit and an output limit. Builder components reach it only through the
//! `toolchain` interface; everything a tool writes to its standard error lands in the build log.

use super::log::BuildLog;
use crate::kit::Kit;
use micro_base::config::EvolveConfig;
use std::path::{Component, Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::time::Instant;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, BufReader};

/// The embedded script that drives componentize-js (its command line tool is not reliable).
const COMPONENTIZE_JS: &str = include_str!("componentize.mjs");

/// A tool a builder may run (the WIT `toolchain.tool`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tool {
    /// `cargo`, for Rust components.
    Cargo,
    /// `componentize-py`, for Python components.
    ComponentizePy,
    /// `jco componentize`, for JavaScript components.
    ComponentizeJs,
}

/// A tool's program, leading arguments and extra environment.
type Program = (PathBuf, Vec<String>, Vec<(String, String)>);

/// How a tool run ended.
#[derive(Debug)]
pub struct RunOutcome {
    /// Its exit status (-1 when killed or timed out).
    pub status: i32,
    /// What it wrote to standard output.
    pub stdout: String,
}

/// One build's sandbox.
pub struct Sandbox {
    /// The service's source directory (a checkout, or a local directory built in place).
    pub tree: PathBuf,
    /// The build's scratch directory: `out/` for outputs, `home/` and `tmp/` for tools.
    pub scratch: PathBuf,
    /// Where cargo keeps its target directory for this source (warm across builds).
    pub cargo_target: PathBuf,
    /// The node's WIT package and SDKs, for componentizers.
    pub kit: Arc<Kit>,
    /// When the build must be done.
    pub deadline: Instant,
    /// The build's log, where tool output goes line by line.
    pub log: Arc<BuildLog>,
    config: EvolveConfig,
    /// The largest source file an in-process step (WAT to wasm) reads: text is several times
    /// the size of the binary it makes, so a multiple of the component size limit.
    pub max_source_bytes: usize,
}

impl Sandbox {
    /// Makes the scratch directories of a build of `tree`.
    pub fn new(
        tree: PathBuf,
        scratch: PathBuf,
        cargo_target: PathBuf,
        kit: Arc<Kit>,
        config: &EvolveConfig,
        max_component_bytes: usize,
        log: Arc<BuildLog>,
    ) -> std::io::Result<Self> {
        for dir in ["out", "home", "tmp"] {
            std::fs::create_dir_all(scratch.join(dir))?;
        }
        Ok(Self {
            tree,
            deadline: Instant::now() + std::time::Duration::from_millis(config.build_timeout_ms),
            scratch,
            cargo_target,
            kit,
            log,
            config: config.clone(),
            max_source_bytes: max_component_bytes * 4,
        })
    }

    /// The output directory.
    pub fn out_dir(&self) -> PathBuf {
        self.scratch.join("out")
    }

    /// Resolves a builder's path: relative to the tree, or inside the output directory (or
    /// cargo's target directory, where cargo leaves what it built). `..`, other absolute paths
    /// and symbolic links out of those are refused.
    pub fn resolve(&self, path: &str) -> Result<PathBuf, String> {
        let p = Path::new(path);
        let (base, rest) = if p.is_absolute() {
            let roots = [self.out_dir(), self.cargo_target.clone()];
            match roots.into_iter().find_map(|root| {
                p.strip_prefix(&root)
                    .ok()
                    .map(|rest| (root.clone(), rest.to_owned()))
            }) {
                Some(found) => found,
                None => return Err(format!("{path}: outside the tree and the output directory")),
            }
        } else {
            (self.tree.clone(), p.to_owned())
        };
        if rest
            .components()
            .any(|c| !matches!(c, Component::Normal(_) | Component::CurDir))
        {
            return Err(format!("{path}: a path may not leave its directory"));
        }
        let full = base.join(rest);
        // A symbolic link in the tree must not lead out of it.
        if let Ok(real) = full.canonicalize() {
            let base_real = base.canonicalize().unwrap_or(base);
            if !real.starts_with(&base_real) {
                return Err(format!("{path}: leads out of its directory"));
            }
        }
        Ok(full)
    }

    /// Runs an allowlisted tool in `dir` of the tree, within the build's limits.
    pub async fn run(
        &self,
        tool: Tool,
        args: Vec<String>,
        dir: &str,
    ) -> Result<RunOutcome, String> {
        let cwd = self.resolve(if dir.is_empty() { "." } else { dir })?;
        let (program, mut full_args, extra_env) = self.program(tool, &args)?;
        full_args.extend(args);
        self.log.line(format!(
            "$ {} {}",
            program.file_name().map_or_else(
                || program.display().to_string(),
                |n| n.to_string_lossy().to_string()
            ),
            full_args.join(" ")
        ));
        let mut command = tokio::process::Command::new(&program);
        command
            .args(&full_args)
            .current_dir(&cwd)
            .env_clear()
            .envs(self.base_env(&program))
            .envs(extra_env)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .process_group(0);
        let mut child = command
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", program.display()))?;
        // Whatever way this call ends (finished, stopped, or dropped with the build), nothing
        // it started outlives it: cargo's rustc and build-script children included.
        let group = ProcessGroup(child.id());
        let limit = self.config.max_build_output_bytes;
        let stdout = child.stdout.take();
        let stderr = child.stderr.take();
        let log = self.log.clone();
        let work = async {
            let read_out = async {
                let mut buf = Vec::new();
                if let Some(out) = stdout {
                    let mut out = out.take(limit as u64 + 1);
                    out.read_to_end(&mut buf).await.ok();
                }
                if buf.len() > limit {
                    group.kill();
                }
                buf
            };
            let read_err = async {
                if let Some(err) = stderr {
                    let mut lines = BufReader::new(err).lines();
                    while let Ok(Some(line)) = lines.next_line().await {
                        if !log.line(line) {
                            // Stop it now: a writer blocked on a full pipe never exits.
                            group.kill();
                            return false;
                        }
                    }
                }
                true
            };
            let (out, within) = tokio::join!(read_out, read_err);
            let status = child.wait().await;
            (out, within, status)
        };
        let outcome = tokio::time::timeout_at(self.deadline.into(), work).await;
        let Ok((out, within, status)) = outcome else {
            return Err(format!(
                "the build ran past its time limit of {} s and was stopped",
                self.config.build_timeout_ms / 1000
            ));
        };
        if !within || out.len() > limit || self.log.over_limit() {
            return Err(format!(
                "the build wrote more than its output limit of {limit} bytes and was stopped"
            ));
        }
        let status = status.map_err(|e| format!("waiting for {}: {e}", program.display()))?;
        Ok(RunOutcome {
            status: status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out).into_owned(),
        })
    }

    /// The program, its leading arguments and extra environment for a tool.
    fn program(&self, tool: Tool, args: &[String]) -> Result<Program, String> {
        match tool {
            Tool::Cargo => {
                if args.first().map(String::as_str) != Some("build") {
                    return Err("only `cargo build` may run in a build".into());
                }
                if args.iter().any(|a| {
                    a.starts_with("--target-dir")
                        || a.starts_with("--config")
                        || a.starts_with("-Z")
                }) {
                    return Err(
                        "cargo's target directory and configuration are the node's to choose"
                            .into(),
                    );
                }
                let cargo = find_tool(&self.config.cargo, &[])?;
                Ok((
                    cargo,
                    Vec::new(),
                    vec![(
                        "CARGO_TARGET_DIR".into(),
                        self.cargo_target.display().to_string(),
                    )],
                ))
            }
            Tool::ComponentizePy => {
                let venv = dirs::home_dir().map(|h| h.join(".cache/micro/venv/bin"));
                let tool = find_tool(&self.config.componentize_py, venv.as_slice())?;
                Ok((tool, Vec::new(), Vec::new()))
            }
            Tool::ComponentizeJs => {
                let node = find_tool(&self.config.node, &[])?;
                let project = if self.config.componentize_js.as_os_str().is_empty() {
                    dirs::home_dir()
                        .map(|h| h.join(".cache/micro/js"))
                        .unwrap_or_default()
                } else {
                    self.config.componentize_js.clone()
                };
                for package in ["@bytecodealliance/componentize-js", "esbuild"] {
                    let dir = project.join("node_modules").join(package);
                    if !dir.exists() {
                        return Err(format!(
                            "{package} is not installed ({} is missing; ./scripts/serve installs it)",
                            dir.display()
                        ));
                    }
                }
                let script = self.scratch.join("componentize.mjs");
                std::fs::write(&script, COMPONENTIZE_JS)
                    .map_err(|e| format!("writing {}: {e}", script.display()))?;
                Ok((
                    node,
                    vec![script.display().to_string()],
                    vec![
                        ("MICRO_JS_TOOLS".into(), project.display().to_string()),
                        (
                            "MICRO_SDK_JS".into(),
                            self.kit.sdk_dir().join("js").display().to_string(),
                        ),
                    ],
                ))
            }
        }
    }

    /// A clean environment: a short PATH, a scratch HOME and TMPDIR, and the toolchains' homes.
    fn base_env(&self, program: &Path) -> Vec<(String, String)> {
        let mut path = String::new();
        if let Some(dir) = program.parent() {
            path.push_str(&dir.display().to_string());
            path.push(':');
        }
        path.push_str("/usr/local/bin:/usr/bin:/bin");
        let home = dirs::home_dir().unwrap_or_default();
        let inherited = |var: &str, default: PathBuf| {
            std::env::var(var).unwrap_or_else(|_| default.display().to_string())
        };
        let mut env = vec![
            ("PATH".to_string(), path),
            (
                "HOME".into(),
                self.scratch.join("home").display().to_string(),
            ),
            (
                "TMPDIR".into(),
                self.scratch.join("tmp").display().to_string(),
            ),
            ("LANG".into(), "C.UTF-8".into()),
            (
                "CARGO_HOME".into(),
                inherited("CARGO_HOME", home.join(".cargo")),
            ),
            (
                "RUSTUP_HOME".into(),
                inherited("RUSTUP_HOME", home.join(".rustup")),
            ),
            ("CARGO_TERM_COLOR".into(), "never".into()),
            // A local directory is built where it is: Python's bytecode caches stay out of it.
            ("PYTHONDONTWRITEBYTECODE".into(), "1".into()),
        ];
        if let Ok(toolchain) = std::env::var("RUSTUP_TOOLCHAIN") {
            env.push(("RUSTUP_TOOLCHAIN".into(), toolchain));
        }
        env
    }
}

/// Finds a tool: a path as given, or a bare name in PATH and then in `extra` directories.
fn find_tool(name: &str, extra: &[PathBuf]) -> Result<PathBuf, String> {
    if name.contains('/') {
        let p = PathBuf::from(name);
        return if p.is_file() {
            Ok(p)
        } else {
            Err(format!("{name} is not installed"))
        };
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(extra.iter().cloned())
        .map(|dir| dir.join(name))
        .find(|p| p.is_file())
        .ok_or_else(|| format!("{name} is not installed (not found in PATH)"))
}

/// The process group of one tool run, killed when the run ends.
struct ProcessGroup(Option<u32>);

impl ProcessGroup {
    fn kill(&self) {
        if let Some(pid) = self.0 {
            // SAFETY: killpg only sends a signal; the group exists while any of its members
            // does, and a group that is gone fails harmlessly.
            unsafe { libc::killpg(pid as i32, libc::SIGKILL) };
        }
    }
}

impl Drop for ProcessGroup {
    fn drop(&mut self) {
        self.kill();
    }
}
