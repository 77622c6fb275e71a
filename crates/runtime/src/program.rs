//! A deployed version's code: compiled, checked against the worlds the node serves, and
//! pre-instantiated once so each call only has to create a fresh instance.

use super::validate::{self, DeployError};
use crate::wit::exports::micro::network::{handler, subscriber};
use wasmtime::Engine;
use wasmtime::component::{Component, InstancePre, Linker};
use wasmtime_wasi_http::p2::bindings::ProxyPre;

const HANDLER: &str = "micro:network/handler@0.1.0";
const SUBSCRIBER: &str = "micro:network/subscriber@0.1.0";
const HTTP_PREFIX: &str = "wasi:http/incoming-handler@0.2";

/// How the node calls into a program.
pub enum Entry<T: 'static> {
    /// A `micro:network` service: calls go to `handler`, messages to `subscriber` if exported.
    Service {
        /// Where `handler`'s functions are.
        handler: handler::GuestIndices,
        /// Where `subscriber`'s functions are, if the component exports it.
        subscriber: Option<subscriber::GuestIndices>,
    },
    /// A stock `wasi:http` component, served under its path prefix.
    Http(ProxyPre<T>),
}

/// A compiled, linked, pre-instantiated component.
pub struct Program<T: 'static> {
    pub(super) pre: InstancePre<T>,
    pub(super) entry: Entry<T>,
    /// The WIT of the component's world, printed from the component itself.
    pub wit: String,
    /// The time a call may take, for the error that says it ran past it.
    pub(super) timeout_ms: u64,
    /// Held while an instance of it runs, so the epoch advances.
    pub(super) ticker: crate::Ticker,
}

impl<T: 'static> Program<T> {
    /// Checks the component's world and imports and pre-instantiates it; a call into it may
    /// take `timeout_ms`.
    pub fn new(
        engine: &Engine,
        linker: &Linker<T>,
        component: Component,
        wasm: &[u8],
        timeout_ms: u64,
        ticker: crate::Ticker,
    ) -> Result<Self, DeployError> {
        let exports: Vec<String> = component
            .component_type()
            .exports(engine)
            .map(|(name, _)| name.to_string())
            .collect();
        let is_service = exports.iter().any(|e| e == HANDLER);
        let is_http = exports.iter().any(|e| e.starts_with(HTTP_PREFIX));
        if !is_service && !is_http {
            return Err(DeployError::WrongWorld { exports });
        }
        let pre = linker
            .instantiate_pre(&component)
            .map_err(|e| validate::missing_import(&e))?;
        let entry = if is_service {
            let handler = handler::GuestIndices::new(&pre)
                .map_err(|e| DeployError::Invalid(format!("its {HANDLER} export: {e:#}")))?;
            let subscriber =
                if exports.iter().any(|e| e == SUBSCRIBER) {
                    Some(subscriber::GuestIndices::new(&pre).map_err(|e| {
                        DeployError::Invalid(format!("its {SUBSCRIBER} export: {e:#}"))
                    })?)
                } else {
                    None
                };
            Entry::Service {
                handler,
                subscriber,
            }
        } else {
            Entry::Http(
                ProxyPre::new(pre.clone())
                    .map_err(|e| DeployError::Invalid(format!("its wasi:http export: {e:#}")))?,
            )
        };
        Ok(Self {
            pre,
            entry,
            wit: print_wit(wasm),
            timeout_ms,
            ticker,
        })
    }

    /// Whether this is a stock `wasi:http` component.
    pub fn is_http(&self) -> bool {
        matches!(self.entry, Entry::Http(_))
    }

    /// Whether the component can receive broker messages.
    pub fn has_subscriber(&self) -> bool {
        matches!(
            self.entry,
            Entry::Service {
                subscriber: Some(_),
                ..
            }
        )
    }
}

/// The component's world as WIT text; a component whose types cannot be printed still runs.
fn print_wit(wasm: &[u8]) -> String {
    let printed = wit_component::decode(wasm).and_then(|decoded| {
        let resolve = decoded.resolve();
        let package = decoded.package();
        // The interfaces the world uses are printed as nested packages, so the text describes
        // the service on its own.
        let nested: Vec<_> = resolve
            .packages
            .iter()
            .map(|(id, _)| id)
            .filter(|id| *id != package)
            .collect();
        let mut printer = wit_component::WitPrinter::default();
        printer.print(resolve, package, &nested)?;
        Ok(printer.output.to_string())
    });
    printed.unwrap_or_else(|e| format!("// the component's WIT could not be printed: {e:#}\n"))
}
