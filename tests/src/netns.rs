//! Throwaway network namespaces and veth cables between them, built with
//! iproute2 the way `/work/shared/testing.md` describes.
//!
//! A [`Netns`] is a named namespace (`/run/netns/NAME`, so `ip netns exec`,
//! podman's `--network ns:PATH` and the oracles can all find it) with only
//! `lo`, up. It has no default route, so nothing a test does inside it can
//! reach the machine's uplink. Dropping it kills every process still inside
//! and deletes it; interfaces inside go with it.
//!
//! Code can work inside a namespace three ways: run a program there
//! ([`Netns::run`], [`Netns::spawn`], [`Netns::command`]), or run a closure on
//! a thread that joined it ([`Netns::enter`]): sockets opened there belong to
//! the namespace for their whole life, wherever they are used afterwards.

use std::fs::File;
use std::path::PathBuf;
use std::process::{Command, Output};
use std::sync::Once;

use nix::sched::{CloneFlags, setns};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

use crate::process::{self, ChildGuard, DEFAULT_TIMEOUT};

/// A network namespace owned by the test; deleted on drop.
pub struct Netns {
    name: String,
}

impl Netns {
    /// Creates `nd-{tag}-{pid}-{n}` and brings its `lo` up.
    pub fn new(tag: &str) -> Netns {
        sweep_stale_namespaces();
        let name = crate::unique_name(tag);
        run_ip(&["netns", "add", &name]);
        // Owned from here on, so a failure below still deletes it.
        let ns = Netns { name };
        ns.ip(&["link", "set", "lo", "up"]);
        ns
    }

    /// The namespace's name, for `ip netns exec NAME` and `ip -n NAME`.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// `/run/netns/NAME`: what `setns`, `nsenter --net=` and podman's
    /// `--network ns:` take.
    pub fn path(&self) -> PathBuf {
        PathBuf::from("/run/netns").join(&self.name)
    }

    /// Runs `ip -n NAME args...`, panicking with ip's stderr if it fails;
    /// returns its stdout (useful with `-j`).
    pub fn ip(&self, args: &[&str]) -> String {
        let mut full = vec!["-n", &self.name];
        full.extend_from_slice(args);
        run_ip(&full)
    }

    /// Sets a per-namespace sysctl, e.g. `("net.core.somaxconn", "4")`.
    pub fn sysctl(&self, key: &str, value: &str) {
        // /proc/sys/net shows the namespace of the thread that opens it, so
        // the write happens on a thread inside the namespace.
        let path = PathBuf::from("/proc/sys").join(key.replace('.', "/"));
        self.enter(|| std::fs::write(&path, value))
            .unwrap_or_else(|e| panic!("setting {key}={value} in {}: {e}", self.name));
    }

    /// `ip netns exec NAME program`: add arguments and stdio, then run or
    /// spawn it yourself. Prefer [`run`](Self::run) / [`spawn`](Self::spawn),
    /// which bound the time and guard the process.
    pub fn command(&self, program: &str) -> Command {
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", &self.name, program]);
        cmd
    }

    /// Runs `program args...` inside the namespace and returns its output;
    /// panics with its stderr if it exits non-zero or runs longer than
    /// [`DEFAULT_TIMEOUT`].
    pub fn run(&self, program: &str, args: &[&str]) -> Output {
        process::checked(self.command(program).args(args), DEFAULT_TIMEOUT)
    }

    /// Like [`run`](Self::run) but returns the output whatever the exit
    /// status: for commands expected to fail (`nc -z` to a closed port).
    pub fn output(&self, program: &str, args: &[&str]) -> Output {
        process::output(self.command(program).args(args), DEFAULT_TIMEOUT)
    }

    /// Starts `program args...` inside the namespace in the background; it is
    /// killed when the guard drops (or, at the latest, with the namespace).
    pub fn spawn(&self, program: &str, args: &[&str]) -> ChildGuard {
        // `ip netns exec` execs the program without forking, so the guard's
        // pid is the program's own.
        let what = format!("{program} {} in {}", args.join(" "), self.name);
        ChildGuard::spawn(&what, self.command(program).args(args))
    }

    /// Runs `f` on a fresh thread that has joined this namespace
    /// (`setns(CLONE_NEWNET)`) and returns its result. A panic in `f`
    /// propagates to the caller. Only that thread changes namespace; the
    /// calling thread and the rest of the process stay where they were.
    pub fn enter<F: FnOnce() -> R + Send, R: Send>(&self, f: F) -> R {
        let ns_file = File::open(self.path())
            .unwrap_or_else(|e| panic!("opening {}: {e}", self.path().display()));
        std::thread::scope(|scope| {
            let inside = std::thread::Builder::new()
                .name(format!("in-{}", self.name))
                .spawn_scoped(scope, move || {
                    setns(&ns_file, CloneFlags::CLONE_NEWNET).unwrap_or_else(|e| {
                        panic!("setns into {}: {e}", self.name);
                    });
                    f()
                })
                .expect("spawning a thread");
            match inside.join() {
                Ok(result) => result,
                Err(panic) => std::panic::resume_unwind(panic),
            }
        })
    }

    /// The pids of every process whose network namespace is this one.
    /// Never panics: [`Drop`] uses it; an error reads as "none".
    pub fn pids(&self) -> Vec<i32> {
        let Ok(out) = Command::new("ip")
            .args(["netns", "pids", &self.name])
            .output()
        else {
            return Vec::new();
        };
        String::from_utf8_lossy(&out.stdout)
            .split_whitespace()
            .filter_map(|p| p.parse().ok())
            .collect()
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        // Quiet: this also runs while a failed test unwinds, and must not
        // panic then. Processes left inside would keep the namespace (and
        // their sockets) alive after its name is gone, so they go first.
        let me = std::process::id() as i32;
        for pid in self.pids() {
            if pid != me {
                let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
            }
        }
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status();
    }
}

/// The two ends of a veth pair. Deleting either namespace deletes the pair,
/// so dropping this does nothing.
#[derive(Debug, Clone)]
pub struct Veth {
    a_ns: String,
    a: String,
    b_ns: String,
    b: String,
}

impl Veth {
    /// The interface name on the `a` side.
    pub fn a(&self) -> &str {
        &self.a
    }

    /// The interface name on the `b` side.
    pub fn b(&self) -> &str {
        &self.b
    }

    /// Sets the MTU on both ends (a path MTU of `mtu`).
    pub fn set_mtu(&self, mtu: u32) {
        let mtu = mtu.to_string();
        for (ns, ifname) in [(&self.a_ns, &self.a), (&self.b_ns, &self.b)] {
            run_ip(&["-n", ns, "link", "set", ifname, "mtu", &mtu]);
        }
    }
}

/// Connects `a` and `b` with a veth pair, gives each end its addresses (CIDR
/// form: `"198.51.100.1/24"`, `"fd42::1/64"`; IPv6 ones skip duplicate address
/// detection, so they are usable at once) and brings both ends up.
///
/// The ends are created directly inside their namespaces, never in the
/// machine's own, and named `v{pid}x{n}a`/`b` with pid and counter in base
/// 36, so the name stays within IFNAMSIZ (15 characters) however many
/// objects a long test run creates.
pub fn veth_pair(a: &Netns, a_addrs: &[&str], b: &Netns, b_addrs: &[&str]) -> Veth {
    let stem = format!(
        "v{}x{}",
        base36(u64::from(std::process::id())),
        base36(crate::next_serial())
    );
    let veth = Veth {
        a_ns: a.name.clone(),
        a: format!("{stem}a"),
        b_ns: b.name.clone(),
        b: format!("{stem}b"),
    };
    assert!(
        veth.a.len() <= 15,
        "interface name {} longer than IFNAMSIZ-1",
        veth.a
    );
    run_ip(&[
        "link", "add", &veth.a, "netns", &a.name, "type", "veth", "peer", "name", &veth.b, "netns",
        &b.name,
    ]);
    for (ns, ifname, addrs) in [(a, &veth.a, a_addrs), (b, &veth.b, b_addrs)] {
        for addr in addrs {
            if addr.contains(':') {
                ns.ip(&["addr", "add", addr, "dev", ifname, "nodad"]);
            } else {
                ns.ip(&["addr", "add", addr, "dev", ifname]);
            }
        }
        ns.ip(&["link", "set", ifname, "up"]);
    }
    veth
}

/// `n` in lowercase base 36 (digits, then a-z): short interface names.
fn base36(mut n: u64) -> String {
    let mut digits = Vec::new();
    loop {
        digits.push(char::from_digit((n % 36) as u32, 36).expect("a digit below 36"));
        n /= 36;
        if n == 0 {
            break;
        }
    }
    digits.iter().rev().collect()
}

/// Runs `ip args...` checked and returns stdout.
fn run_ip(args: &[&str]) -> String {
    let out = process::checked(Command::new("ip").args(args), DEFAULT_TIMEOUT);
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Deletes namespaces left by test processes that died without unwinding
/// (SIGKILL, abort): `nd-*-{pid}-{n}` whose pid no longer exists. Once per
/// test process; other live runs' namespaces are left alone.
fn sweep_stale_namespaces() {
    static SWEEP: Once = Once::new();
    SWEEP.call_once(|| {
        let Ok(entries) = std::fs::read_dir("/run/netns") else {
            return;
        };
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            let Some(pid) = owner_pid(&name) else {
                continue;
            };
            if !PathBuf::from(format!("/proc/{pid}")).exists() {
                let _ = Command::new("ip")
                    .args(["netns", "del", &name])
                    .stderr(std::process::Stdio::null())
                    .status();
            }
        }
    });
}

/// The pid in a name made by [`crate::unique_name`]: `nd-{tag}-{pid}-{n}`.
fn owner_pid(name: &str) -> Option<u32> {
    let rest = name.strip_prefix("nd-")?;
    let mut fields = rest.rsplitn(3, '-');
    let _serial: u64 = fields.next()?.parse().ok()?;
    let pid = fields.next()?.parse().ok()?;
    fields.next()?; // the tag must be there too
    Some(pid)
}

#[cfg(test)]
mod tests {
    use super::{base36, owner_pid};

    #[test]
    fn base36_keeps_veth_names_short() {
        assert_eq!(base36(0), "0");
        assert_eq!(base36(35), "z");
        assert_eq!(base36(36), "10");
        // The largest pid Linux hands out, and a counter far beyond any run.
        assert_eq!(base36(4_194_304), "2hwcg");
        assert!(format!("v{}x{}a", base36(4_194_304), base36(36u64.pow(7) - 1)).len() <= 15);
    }

    #[test]
    fn owner_pid_reads_unique_names() {
        assert_eq!(owner_pid("nd-ping-1234-7"), Some(1234));
        assert_eq!(owner_pid("nd-two-part-99-0"), Some(99));
        assert_eq!(
            owner_pid(&crate::unique_name("x")),
            Some(std::process::id())
        );
        assert_eq!(owner_pid("nd-1234-7"), None);
        assert_eq!(owner_pid("other-1-2"), None);
        assert_eq!(owner_pid("nd-x-abc-1"), None);
    }
}
