//! Turning a user's type into the exported `handler` and `subscriber` interfaces.

use crate::bindings::exports::micro::network::{handler, subscriber};
use crate::bindings::micro::network::broker::Message;
use crate::bindings::micro::network::types::{Caller, Request, Response};
use crate::{Context, Error, Result, Subscription};
use serde::{Serialize, de::DeserializeOwned};

/// What a service may add beyond its methods: subscriptions and message handling.
pub trait Service {
    /// The topics this service subscribes to, asked once when it is deployed.
    fn subscriptions() -> Vec<Subscription> {
        Vec::new()
    }
    /// Receives one message of a subscribed topic.
    fn on_message(_message: Message) -> core::result::Result<(), String> {
        Ok(())
    }
}

/// The method table the [`service!`](crate::service) macro generates.
pub trait Dispatch {
    /// The methods the service answers.
    const METHODS: &'static [&'static str];
    /// Runs `method`, or `None` if there is no such method.
    fn dispatch(ctx: &Context, method: &str) -> Option<Result<Response>>;
}

/// Bridges a user's service type to the generated `Guest` traits.
pub struct Adapter<T>(core::marker::PhantomData<T>);

impl<T: Dispatch + Service> handler::Guest for Adapter<T> {
    fn describe() -> handler::Description {
        handler::Description {
            methods: T::METHODS.iter().map(|m| m.to_string()).collect(),
            subscriptions: T::subscriptions(),
        }
    }

    fn handle(caller: Caller, request: Request) -> Result<Response> {
        let method = request.method.clone();
        let ctx = Context::new(caller, request);
        T::dispatch(&ctx, &method).unwrap_or_else(|| {
            Err(Error::not_found(format!(
                "no method {method:?}; this service answers {}",
                T::METHODS.join(", ")
            )))
        })
    }
}

impl<T: Dispatch + Service> subscriber::Guest for Adapter<T> {
    fn on_message(message: Message) -> core::result::Result<(), String> {
        T::on_message(message)
    }
}

/// Decodes the JSON request, runs `f`, encodes its JSON answer. An empty body decodes as `null`,
/// and so does `{}` when the input does not take an object (a method of `()` accepts it).
pub fn invoke<In: DeserializeOwned, Out: Serialize>(
    ctx: &Context,
    f: fn(&Context, In) -> Result<Out>,
) -> Result<Response> {
    let body = ctx.payload();
    let body = if body.iter().all(u8::is_ascii_whitespace) {
        b"null".as_slice()
    } else {
        body
    };
    let input: In = serde_json::from_slice(body)
        .or_else(|e| {
            let empty_object = body
                .iter()
                .filter(|b| !b.is_ascii_whitespace())
                .eq(b"{}".iter());
            if empty_object {
                serde_json::from_slice(b"null").map_err(|_| e)
            } else {
                Err(e)
            }
        })
        .map_err(|e| {
            Error::bad_request(format!("invalid JSON request for {}: {e}", ctx.method()))
        })?;
    let output = f(ctx, input)?;
    let payload = serde_json::to_vec(&output)
        .map_err(|e| Error::failed(format!("encoding the answer of {}: {e}", ctx.method())))?;
    Ok(Response {
        payload,
        content_type: "application/json".to_string(),
        metadata: Vec::new(),
    })
}

/// Declares a service: its type and the functions that answer its methods.
///
/// Each function is `fn(&Context, In) -> Result<Out>` with `In: Deserialize` and `Out: Serialize`.
/// `service!(Type { ... })` gives the type a default [`Service`]; `service!(Type: Service { ... })`
/// expects your own `impl Service for Type` (subscriptions, message handling).
#[macro_export]
macro_rules! service {
    ($ty:ident { $($method:literal => $func:path),* $(,)? }) => {
        impl $crate::Service for $ty {}
        $crate::service!($ty: Service { $($method => $func),* });
    };
    ($ty:ident: Service { $($method:literal => $func:path),* $(,)? }) => {
        impl $crate::__private::Dispatch for $ty {
            const METHODS: &'static [&'static str] = &[$($method),*];
            fn dispatch(
                ctx: &$crate::Context,
                method: &str,
            ) -> ::core::option::Option<$crate::Result<$crate::bindings::micro::network::types::Response>> {
                match method {
                    $($method => ::core::option::Option::Some($crate::__private::invoke(ctx, $func)),)*
                    _ => ::core::option::Option::None,
                }
            }
        }
        type __MicroServiceExport = $crate::__private::Adapter<$ty>;
        $crate::bindings::export_bindings!(__MicroServiceExport with_types_in $crate::bindings);
    };
}
