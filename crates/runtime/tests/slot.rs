//! The one host of system components, alone: a real component (written in WAT) in a live slot
//! keeps its state between questions, loses it when it traps or overruns, and a fresh slot
//! question starts from nothing.

#![allow(clippy::unwrap_used, reason = "a test: a failed step is the failure")]

use micro_base::config::Config;
use micro_runtime::slot::{Component, Host, Live, SlotState};
use micro_runtime::{CallData, CallScope, OutgoingHttp, Runtime};
use std::time::{Duration, Instant};
use wasmtime::component::ResourceTable;
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};
use wasmtime_wasi_http::{WasiHttpCtx, WasiHttpCtxView, WasiHttpView};

#[allow(missing_docs, reason = "generated from tests/slot.wit")]
mod bindings {
    wasmtime::component::bindgen!({
        path: "tests/slot.wit",
        exports: { default: async },
    });
}
use bindings::{Counter, CounterPre};

micro_runtime::slot_world!(Counter, CounterPre<SlotState<()>>, ());

/// A counter in a global; `spin` never returns, `crash` traps.
const COUNTER: &str = r#"
(component
  (core module $m
    (global $n (mut i32) (i32.const 0))
    (func (export "next") (result i32)
      (global.set $n (i32.add (global.get $n) (i32.const 1)))
      (global.get $n))
    (func (export "spin") (loop $l (br $l)))
    (func (export "crash") unreachable))
  (core instance $i (instantiate $m))
  (func (export "next") (result u32) (canon lift (core func $i "next")))
  (func (export "spin") (canon lift (core func $i "spin")))
  (func (export "crash") (canon lift (core func $i "crash"))))
"#;

/// The runtime's own store data is not used here; the slot has its own.
struct Unused {
    scope: CallScope,
    wasi: WasiCtx,
    http: WasiHttpCtx,
    hooks: OutgoingHttp,
    table: ResourceTable,
}

impl CallData for Unused {
    fn scope(&self) -> &CallScope {
        &self.scope
    }
}

impl WasiView for Unused {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl WasiHttpView for Unused {
    fn http(&mut self) -> WasiHttpCtxView<'_> {
        WasiHttpCtxView {
            ctx: &mut self.http,
            table: &mut self.table,
            hooks: &mut self.hooks,
        }
    }
}

fn counter(dir: &std::path::Path) -> (Runtime<Unused>, Component<(), Counter>) {
    let config = Config::default();
    let runtime = Runtime::<Unused>::new(&config.limits, dir, |_| Ok(())).unwrap();
    let host: Host<()> = Host::new(&runtime, "a counter", "only WASI", "next", |_| Ok(())).unwrap();
    let wasm = wat::parse_str(COUNTER).unwrap();
    let component = host.load(&runtime, &wasm).unwrap();
    (runtime, component)
}

async fn next(
    live: &Live<(), Counter>,
    component: &Component<(), Counter>,
) -> Result<u32, micro_runtime::slot::SlotError> {
    live.ask(
        component,
        || (),
        "next",
        Duration::from_secs(5),
        async |c, store| c.call_next(store).await,
    )
    .await
}

#[tokio::test(flavor = "multi_thread")]
async fn a_live_instance_keeps_its_state_until_it_traps_or_overruns() {
    let dir = tempfile::tempdir().unwrap();
    let (_runtime, component) = counter(dir.path());
    let live = Live::default();
    assert_eq!(next(&live, &component).await, Ok(1));
    assert_eq!(next(&live, &component).await, Ok(2));
    let crashed = live
        .ask(
            &component,
            || (),
            "crash",
            Duration::from_secs(5),
            async |c, store| c.call_crash(store).await,
        )
        .await
        .unwrap_err();
    assert!(
        matches!(&crashed, micro_runtime::slot::SlotError::Trapped { what, .. } if what == "crash"),
        "{crashed}"
    );
    assert!(
        crashed.to_string().starts_with("crash trapped"),
        "{crashed}"
    );
    assert_eq!(next(&live, &component).await, Ok(1), "a fresh instance");
    let spun = live
        .ask(
            &component,
            || (),
            "spin",
            Duration::from_millis(200),
            async |c, store| c.call_spin(store).await,
        )
        .await
        .unwrap_err();
    assert_eq!(
        spun.to_string(),
        "spin ran past its time limit and was stopped"
    );
    assert_eq!(next(&live, &component).await, Ok(1), "a fresh instance");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_fresh_question_starts_from_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let (_runtime, component) = counter(dir.path());
    for _ in 0..2 {
        let deadline = Instant::now() + Duration::from_secs(5);
        let n = component
            .ask_fresh(
                (),
                deadline,
                Duration::from_millis(100),
                "next",
                async |c, store| c.call_next(store).await,
            )
            .await;
        assert_eq!(n, Ok(1));
    }
}

#[test]
fn a_component_of_another_world_is_refused_with_what_it_lacks() {
    let dir = tempfile::tempdir().unwrap();
    let config = Config::default();
    let runtime = Runtime::<Unused>::new(&config.limits, dir.path(), |_| Ok(())).unwrap();
    let host: Host<()> = Host::new(&runtime, "a counter", "only WASI", "next", |_| Ok(())).unwrap();
    let empty = wat::parse_str("(component)").unwrap();
    let err = host
        .load::<_, Counter>(&runtime, &empty)
        .err()
        .unwrap()
        .to_string();
    assert!(
        err.starts_with("not a counter (it must export next)"),
        "{err}"
    );
    let err = host
        .load::<_, Counter>(&runtime, b"garbage")
        .err()
        .unwrap()
        .to_string();
    assert!(err.contains("not a WebAssembly binary"), "{err}");
}
