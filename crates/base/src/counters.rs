//! Counters of what happened (frames refused, decisions taken): atomics that any thread bumps,
//! and a plain snapshot of them for the API to serialize, so no domain type builds JSON.

/// Declares a struct of `AtomicU64` counters and its serializable snapshot:
/// `counters!(pub struct Stats => StatsNow { /// doc\n frames, calls })`.
#[macro_export]
macro_rules! counters {
    (
        $(#[$meta:meta])*
        $vis:vis struct $name:ident => $snap:ident {
            $( $(#[$fmeta:meta])* $field:ident ),* $(,)?
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Default)]
        $vis struct $name {
            $( $(#[$fmeta])* pub $field: ::std::sync::atomic::AtomicU64, )*
        }

        #[doc = concat!("What [`", stringify!($name), "`] counted, at one moment.")]
        #[derive(Debug, Clone, Copy, Default, PartialEq, Eq, ::serde::Serialize)]
        $vis struct $snap {
            $( $(#[$fmeta])* pub $field: u64, )*
        }

        impl $name {
            /// The counters now.
            pub fn snapshot(&self) -> $snap {
                $snap {
                    $( $field: self.$field.load(::std::sync::atomic::Ordering::Relaxed), )*
                }
            }
        }
    };
}

#[cfg(test)]
mod tests {
    crate::counters!(
        /// Two counters.
        struct Two => TwoNow {
            /// One.
            one,
            /// Other.
            other,
        }
    );

    #[test]
    fn a_snapshot_reads_every_counter() {
        let two = Two::default();
        two.one.fetch_add(2, std::sync::atomic::Ordering::Relaxed);
        assert_eq!(two.snapshot(), TwoNow { one: 2, other: 0 });
    }
}
