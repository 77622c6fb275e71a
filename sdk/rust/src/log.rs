//! Logging into the node's log, tagged with this service's name.

pub use crate::bindings::micro::network::logging::Level;
use crate::bindings::micro::network::logging::log;

/// Logs at debug level.
pub fn debug(message: &str) {
    log(Level::Debug, message)
}
/// Logs at info level.
pub fn info(message: &str) {
    log(Level::Info, message)
}
/// Logs at warn level.
pub fn warn(message: &str) {
    log(Level::Warn, message)
}
/// Logs at error level.
pub fn error(message: &str) {
    log(Level::Error, message)
}
