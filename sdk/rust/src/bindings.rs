//! Bindings generated from the `micro:network` WIT package (world `event-service`).
//!
//! Every service built with this SDK exports both `handler` and `subscriber`; a service without
//! subscriptions simply declares none in `describe`, and the node never delivers to it.

wit_bindgen::generate!({
    path: "../../wit",
    world: "event-service",
    pub_export_macro: true,
    export_macro_name: "export_bindings",
    default_bindings_module: "micro_sdk::bindings",
    generate_all,
});
