//! The end-to-end suites: one module per area, all sharing the harness in
//! `netdiag_tests` (network namespaces, veth pairs, the built agent).

mod attached;
mod container;
mod dig;
mod harness;
mod nc;
mod nstat;
mod paping;
mod plugin;
mod release;
mod sandbox;
mod ss;
mod tcpdump;
