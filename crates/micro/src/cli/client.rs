//! The CLI's HTTP client for a node's API.

use super::{CliError, EXIT_FAILED, EXIT_NO_NODE};
use std::io::Read;
use ureq::Agent;
use ureq::http::Response;

/// Largest answer the CLI reads (a node's own limits are far below).
const MAX_ANSWER: u64 = 256 << 20;

/// Talks to one node.
pub struct Client {
    base: String,
    agent: Agent,
}

/// A node's answer: status, content type, body.
pub struct Answer {
    pub status: u16,
    pub content_type: String,
    pub body: Vec<u8>,
}

impl Answer {
    /// The body as JSON.
    pub fn json(&self) -> Result<serde_json::Value, CliError> {
        serde_json::from_slice(&self.body).map_err(|e| {
            CliError::failed(format!("the node answered something that is not JSON: {e}"))
        })
    }

    /// Turns an error status into a [`CliError`] with the node's message.
    pub fn ok(self) -> Result<Self, CliError> {
        if (200..300).contains(&self.status) {
            return Ok(self);
        }
        let message = match serde_json::from_slice::<serde_json::Value>(&self.body) {
            Ok(v) if v.get("error").is_some() => format!(
                "{} ({}): {}",
                v["error"].as_str().unwrap_or("error"),
                self.status,
                v["message"].as_str().unwrap_or("")
            ),
            _ => format!(
                "HTTP {}: {}",
                self.status,
                String::from_utf8_lossy(&self.body)
            ),
        };
        Err(CliError {
            message,
            code: EXIT_FAILED,
        })
    }
}

impl Client {
    /// A client for the node at `base` (e.g. `http://127.0.0.1:8080`).
    pub fn new(base: &str) -> Self {
        let agent: Agent = Agent::config_builder()
            .http_status_as_error(false)
            .build()
            .into();
        Self {
            base: base.trim_end_matches('/').to_string(),
            agent,
        }
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    fn unreachable(&self, e: ureq::Error) -> CliError {
        match e {
            ureq::Error::Io(_) | ureq::Error::ConnectionFailed | ureq::Error::HostNotFound => {
                CliError {
                    message: format!(
                        "no node answers at {} ({e}); start one with `micro server`, or point --node / MICRO_NODE at one",
                        self.base
                    ),
                    code: EXIT_NO_NODE,
                }
            }
            e => CliError {
                message: format!("talking to the node at {}: {e}", self.base),
                code: EXIT_NO_NODE,
            },
        }
    }

    fn answer(
        &self,
        response: Result<Response<ureq::Body>, ureq::Error>,
    ) -> Result<Answer, CliError> {
        let mut response = response.map_err(|e| self.unreachable(e))?;
        let status = response.status().as_u16();
        let content_type = response
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string();
        let body = response
            .body_mut()
            .with_config()
            .limit(MAX_ANSWER)
            .read_to_vec()
            .map_err(|e| self.unreachable(e))?;
        Ok(Answer {
            status,
            content_type,
            body,
        })
    }

    /// GET `path`.
    pub fn get(&self, path: &str) -> Result<Answer, CliError> {
        self.answer(self.agent.get(self.url(path)).call())
    }

    /// GETs `path` and reads a successful answer as JSON (an error status is the node's
    /// message).
    pub fn get_json(&self, path: &str) -> Result<serde_json::Value, CliError> {
        self.get(path)?.ok()?.json()
    }

    /// DELETE `path`.
    pub fn delete(&self, path: &str) -> Result<Answer, CliError> {
        self.answer(self.agent.delete(self.url(path)).call())
    }

    /// POST `body` to `path`.
    pub fn post(&self, path: &str, content_type: &str, body: &[u8]) -> Result<Answer, CliError> {
        self.answer(
            self.agent
                .post(self.url(path))
                .header("content-type", content_type)
                .send(body),
        )
    }

    /// PUT `body` to `path`.
    pub fn put(&self, path: &str, content_type: &str, body: &[u8]) -> Result<Answer, CliError> {
        self.answer(
            self.agent
                .put(self.url(path))
                .header("content-type", content_type)
                .send(body),
        )
    }

    /// GET a server-sent event stream; returns a reader of its raw text.
    pub fn stream(&self, path: &str) -> Result<impl Read, CliError> {
        self.streaming(self.agent.get(self.url(path)).call())
    }

    /// POST a JSON body and read the answer as a stream (JSON lines of a build's progress).
    pub fn post_stream(
        &self,
        path: &str,
        body: &serde_json::Value,
    ) -> Result<impl Read + use<>, CliError> {
        let body = serde_json::to_vec(body).unwrap_or_default();
        self.streaming(
            self.agent
                .post(self.url(path))
                .header("content-type", "application/json")
                .send(&body[..]),
        )
    }

    fn streaming(
        &self,
        response: Result<Response<ureq::Body>, ureq::Error>,
    ) -> Result<impl Read + use<>, CliError> {
        let response = response.map_err(|e| self.unreachable(e))?;
        if !response.status().is_success() {
            let status = response.status().as_u16();
            let body = response.into_body().read_to_vec().unwrap_or_default();
            let answer = Answer {
                status,
                content_type: String::new(),
                body,
            };
            return Err(answer
                .ok()
                .err()
                .unwrap_or_else(|| CliError::failed(format!("HTTP {status}"))));
        }
        Ok(response.into_body().into_reader())
    }
}
