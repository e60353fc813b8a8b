//! `ss -p`: which processes hold each socket, found by walking
//! /proc/PID/fd and matching `socket:[INODE]` links, as iproute2 does.
//!
//! Inside a pod this only sees processes that share our PID namespace
//! (the ephemeral container's `targetContainerName`) and whose fds we may
//! read (uid 0 plus CAP_SYS_PTRACE for other users' processes). When none
//! can be read we say so once instead of printing an empty column.

use std::collections::HashMap;
use std::fs;

use super::model::ProcessRef;

/// Inode → processes holding it, plus how many processes we could not
/// inspect (for the one-line notice).
pub struct ProcessTable {
    pub by_inode: HashMap<u32, Vec<ProcessRef>>,
    pub unreadable: usize,
    pub readable: usize,
}

pub fn scan() -> ProcessTable {
    let mut table = ProcessTable {
        by_inode: HashMap::new(),
        unreadable: 0,
        readable: 0,
    };
    let Ok(proc_dir) = fs::read_dir("/proc") else {
        return table;
    };
    let own_pid = std::process::id();
    for entry in proc_dir.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<u32>().ok())
        else {
            continue;
        };
        if pid == own_pid {
            continue;
        }
        let fd_dir = match fs::read_dir(format!("/proc/{pid}/fd")) {
            Ok(dir) => dir,
            Err(_) => {
                table.unreadable += 1;
                continue;
            }
        };
        table.readable += 1;
        let mut name: Option<String> = None;
        for fd_entry in fd_dir.flatten() {
            let Some(fd) = fd_entry
                .file_name()
                .to_str()
                .and_then(|n| n.parse::<u32>().ok())
            else {
                continue;
            };
            let Ok(target) = fs::read_link(fd_entry.path()) else {
                continue;
            };
            let Some(inode) = target
                .to_str()
                .and_then(|t| t.strip_prefix("socket:["))
                .and_then(|t| t.strip_suffix(']'))
                .and_then(|t| t.parse::<u32>().ok())
            else {
                continue;
            };
            let name = name.get_or_insert_with(|| command_name(pid)).clone();
            table
                .by_inode
                .entry(inode)
                .or_default()
                .push(ProcessRef { name, pid, fd });
        }
    }
    // iproute2 prepends each find to a hash chain, so the last process and
    // fd found (highest pid, highest fd) print first; do the same.
    for refs in table.by_inode.values_mut() {
        refs.sort_by_key(|r| std::cmp::Reverse((r.pid, r.fd)));
    }
    table
}

/// The command name from /proc/PID/stat: the text between the first '('
/// and the last ')', which may itself contain spaces and parentheses.
fn command_name(pid: u32) -> String {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    match (stat.find('('), stat.rfind(')')) {
        (Some(a), Some(b)) if b > a => stat[a + 1..b].to_owned(),
        _ => String::new(),
    }
}
