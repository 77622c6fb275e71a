//! A well-formed service of the right world that imports `acme:missing/oracle`, which no node has.

wit_bindgen::generate!({
    inline: "
        package acme:missing@1.0.0;
        interface oracle { ask: func() -> string; }
        world unlinkable {
            include micro:network/service@0.1.0;
            import oracle;
        }
    ",
    path: "../../../wit",
    world: "acme:missing/unlinkable",
    generate_all,
});

use exports::micro::network::handler::{Description, Guest};
use micro::network::types::{CallError, Caller, Request, Response};

struct Unlinkable;

impl Guest for Unlinkable {
    fn describe() -> Description {
        Description {
            methods: vec!["ask".into()],
            subscriptions: vec![],
        }
    }

    fn handle(_caller: Caller, _request: Request) -> Result<Response, CallError> {
        let answer = acme::missing::oracle::ask();
        Ok(Response {
            payload: answer.into_bytes(),
            content_type: "text/plain".into(),
            metadata: vec![],
        })
    }
}

export!(Unlinkable);
