//! A stock `wasi:http/incoming-handler` component: it knows nothing of micro. It greets the
//! path it was asked for; a request with a body hears its method and body back, and an
//! `x-echo` header comes back as it went in.

use std::io::{Read as _, Write as _};
use wasip2::http::types::{
    Fields, IncomingBody, IncomingRequest, Method, OutgoingBody, OutgoingResponse, ResponseOutparam,
};

wasip2::http::proxy::export!(HttpHello);

struct HttpHello;

fn method_name(method: &Method) -> &str {
    match method {
        Method::Get => "GET",
        Method::Head => "HEAD",
        Method::Post => "POST",
        Method::Put => "PUT",
        Method::Delete => "DELETE",
        Method::Connect => "CONNECT",
        Method::Options => "OPTIONS",
        Method::Trace => "TRACE",
        Method::Patch => "PATCH",
        Method::Other(other) => other,
    }
}

/// The request's body, whole.
fn body_of(request: &IncomingRequest) -> Vec<u8> {
    let mut body = Vec::new();
    if let Ok(incoming) = request.consume() {
        if let Ok(mut stream) = incoming.stream() {
            let _ = stream.read_to_end(&mut body);
        }
        let _ = IncomingBody::finish(incoming);
    }
    body
}

impl wasip2::exports::http::incoming_handler::Guest for HttpHello {
    fn handle(request: IncomingRequest, response_out: ResponseOutparam) {
        let path = request.path_with_query().unwrap_or_default();
        let method = request.method();
        let echo = request.headers().get("x-echo");
        let body = body_of(&request);
        let headers = Fields::new();
        let _ = headers.set("content-type", &[b"text/plain".to_vec()]);
        if !echo.is_empty() {
            let _ = headers.set("x-echo", &echo);
        }
        let response = OutgoingResponse::new(headers);
        let Ok(out_body) = response.body() else {
            return;
        };
        ResponseOutparam::set(response_out, Ok(response));
        let Ok(mut out) = out_body.write() else {
            return;
        };
        let _ = write!(out, "Hello from wasi:http at {path}");
        if !body.is_empty() {
            let _ = write!(
                out,
                ": {} of {} bytes: {}",
                method_name(&method),
                body.len(),
                String::from_utf8_lossy(&body)
            );
        }
        let _ = out.flush();
        drop(out);
        let _ = OutgoingBody::finish(out_body, None);
    }
}
