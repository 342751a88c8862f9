//! Who runs a run: the host, its boot, the process and when it started.
//! A run left `running` by a process that died (SIGKILL, power loss) is
//! told apart from one still going by the next process that opens the
//! state, which marks it `interrupted` (its work resumes from the outbox
//! and the checkpoint). Only what can be proven dead is marked: a run of
//! another host, or with no owner recorded, is left alone.

use std::sync::OnceLock;

fn host() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname").or_else(|_| std::fs::read_to_string("/etc/hostname")).map(|h| h.trim().to_string()).unwrap_or_default()
}

fn boot() -> String {
    std::fs::read_to_string("/proc/sys/kernel/random/boot_id").map(|b| b.trim().to_string()).unwrap_or_default()
}

/// The start time of process `pid` in clock ticks since boot (field 22 of
/// `/proc/PID/stat`), which tells a reused pid from the one recorded.
fn started(pid: &str) -> Option<String> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may hold spaces: count from its closing ')'.
    stat.rsplit_once(')')?.1.split_whitespace().nth(19).map(String::from)
}

/// This process, as recorded with the runs it starts: `host|boot|pid|start`.
pub fn this_process() -> &'static str {
    static ME: OnceLock<String> = OnceLock::new();
    ME.get_or_init(|| {
        let pid = std::process::id().to_string();
        format!("{}|{}|{pid}|{}", host(), boot(), started(&pid).unwrap_or_default())
    })
}

/// Whether the process recorded as `owner` is provably gone: same host, and
/// either another boot or no process with that pid and start time.
pub fn is_dead(owner: &str) -> bool {
    let parts: Vec<&str> = owner.split('|').collect();
    let [host_was, boot_was, pid, start] = parts[..] else { return false };
    let me: Vec<&str> = this_process().split('|').collect();
    if host_was.is_empty() || host_was != me[0] || boot_was.is_empty() || me[1].is_empty() {
        return false;
    }
    boot_was != me[1] || started(pid).is_none_or(|s| s != start)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_process_is_alive_and_a_gone_one_is_dead() {
        let me = this_process();
        assert!(!is_dead(me), "{me}");
        let parts: Vec<&str> = me.split('|').collect();
        if parts[1].is_empty() {
            return; // no /proc: nothing can be proven
        }
        // The same pid with another start time: reused, so the owner is gone.
        assert!(is_dead(&format!("{}|{}|{}|1", parts[0], parts[1], parts[2])));
        // Another boot of this host.
        assert!(is_dead(&format!("{}|another-boot|{}|{}", parts[0], parts[2], parts[3])));
        // Another host, or nothing recorded: not provable.
        assert!(!is_dead(&format!("elsewhere|{}|{}|1", parts[1], parts[2])));
        assert!(!is_dead(""));
    }
}
