//! A builder that misbehaves when the tree asks it to: `hostile.txt` names the fault
//! (`trap-detect`, `memory-detect`, `loop-build`). Any other tree it leaves to the others.

use micro_builder_kit::{Detection, Guest, Info, Plan, read_text};

struct Hostile;

impl Guest for Hostile {
    fn info() -> Info {
        Info {
            name: "hostile".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            looks_for: "hostile.txt naming a fault".into(),
        }
    }

    fn detect(files: Vec<String>) -> Detection {
        if !files.iter().any(|f| f == "hostile.txt") {
            return Detection::NotRecognised("no hostile.txt".into());
        }
        let fault = read_text("hostile.txt").unwrap_or_default();
        match fault.trim() {
            "trap-detect" => panic!("the hostile builder traps on purpose"),
            "memory-detect" => {
                let mut hoard: Vec<Vec<u8>> = Vec::new();
                loop {
                    hoard.push(vec![1; 1 << 20]);
                    std::hint::black_box(&hoard);
                }
            }
            "loop-build" => Detection::Recognised(Plan {
                language: "hostile".into(),
                entry: "hostile.txt".into(),
                name: None,
                priority: 255,
            }),
            other => Detection::NotRecognised(format!("unknown fault {other:?}")),
        }
    }

    fn build(_plan: Plan) -> Result<String, String> {
        let mut n: u64 = 0;
        loop {
            n = std::hint::black_box(n.wrapping_add(1));
        }
    }
}

micro_builder_kit::builder!(Hostile);
