//! A command's process group, which never outlives the engine that launched it.
//!
//! The command runs in a group of its own, so that stopping it reaches everything it
//! started. A group still running when its attempt is dropped (the engine shuts down) is
//! killed. An engine that dies cannot kill anything, so three things do it for it:
//! - on Linux the shell gets `PR_SET_PDEATHSIG`: the kernel kills it with the engine;
//! - a watcher (a second `sh`, blocked reading a pipe only the engine can write to) sees
//!   the pipe close when the engine dies and kills the whole group, grandchildren too;
//! - the group is written into the attempt's scratch directory, and the next engine to
//!   open the store ends what is left of it ([`end_orphans`]) before it relaunches the
//!   attempt, in case the watcher died with the engine (a kill of the engine's group).

use std::io;
use std::os::fd::{FromRawFd, OwnedFd};
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};
use tokio::process::{Child, Command};

/// The file of an attempt's scratch directory that names its process group.
const GROUP_FILE: &str = "process-group";
/// How long an engine opening the store waits for an orphaned group to die.
const ORPHAN_WAIT: Duration = Duration::from_secs(5);

/// A running command's process group: killed on drop unless [`Group::ended`] was called.
pub(super) struct Group {
    pgid: libc::pid_t,
    ended: bool,
    // Dropped in this order: the watcher is killed before its pipe closes, so it never
    // sees the pipe close unless the engine died.
    _watcher: Option<Child>,
    _pipe: Option<OwnedFd>,
}

/// Starts `command` in a new process group that dies with the engine, and records the
/// group in `scratch`.
pub(super) fn spawn(mut command: Command, scratch: &Path) -> io::Result<(Child, Group)> {
    command.process_group(0).kill_on_drop(true);
    #[cfg(target_os = "linux")]
    {
        let engine = std::process::id() as libc::pid_t;
        // SAFETY: runs in the forked child before exec and only makes async-signal-safe
        // calls. The signal comes when the engine thread that forked dies; attempts are
        // launched from the runtime's worker threads, which live as long as the engine.
        unsafe {
            command.pre_exec(move || {
                if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                    return Err(io::Error::last_os_error());
                }
                // The engine died between fork and prctl: nothing would kill us later.
                if libc::getppid() != engine {
                    libc::_exit(1);
                }
                Ok(())
            })
        };
    }
    let child = command.spawn()?;
    let pgid = child.id().map_or(0, |pid| pid as libc::pid_t);
    let mut group = Group { pgid, ended: false, _watcher: None, _pipe: None };
    if pgid == 0 {
        return Ok((child, group));
    }
    record(scratch, pgid)?;
    let (watcher, pipe) = watch(pgid)?;
    group._watcher = Some(watcher);
    group._pipe = Some(pipe);
    Ok((child, group))
}

impl Group {
    /// Sends `signal` to every process of the group.
    pub(super) fn signal(&self, signal: libc::c_int) {
        if self.pgid > 0 {
            // SAFETY: killpg only sends a signal, to the command's own group.
            unsafe { libc::killpg(self.pgid, signal) };
        }
    }

    /// The shell was waited for: what it left running in the background is its own, and
    /// its group id may be reused from now on, so it is never signalled again.
    pub(super) fn ended(&mut self) {
        self.ended = true;
    }
}

impl Drop for Group {
    fn drop(&mut self) {
        if !self.ended {
            self.signal(libc::SIGKILL);
        }
    }
}

/// A `sh` that kills group `pgid` when the engine's end of its stdin closes, which happens
/// only when the engine dies: a live engine kills the watcher first.
fn watch(pgid: libc::pid_t) -> io::Result<(Child, OwnedFd)> {
    let mut fds = [0; 2];
    // SAFETY: pipe2 fills `fds` with two new descriptors, owned below. Close-on-exec keeps
    // the engine's end out of every process it launches.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: both descriptors are new and owned by nobody else.
    let (read, write) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
    // `pgid` is a number the engine chose, never a value from outside.
    let watcher = Command::new("sh")
        .arg("-c")
        .arg(format!("trap '' INT TERM HUP QUIT; read -r _; kill -s KILL -- -{pgid}"))
        .stdin(Stdio::from(read))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()?;
    Ok((watcher, write))
}

/// Writes `<pgid> <start time of the group leader>` into the attempt's scratch directory.
fn record(scratch: &Path, pgid: libc::pid_t) -> io::Result<()> {
    let start = start_time(pgid).unwrap_or(0);
    std::fs::write(scratch.join(GROUP_FILE), format!("{pgid} {start}\n"))
}

/// Ends the process groups that attempts of dead engines left running under `scratch` (a
/// store's scratch space, which the caller holds the lock of), and waits a little for them
/// to die, so that no old process runs beside a relaunched attempt.
pub(crate) fn end_orphans(scratch: &Path) {
    let mut groups = Vec::new();
    find_groups(scratch, 0, &mut groups);
    let mut killed = Vec::new();
    for (pgid, start) in groups {
        // The leader is alive but started at another time: its id was reused, and the
        // group is someone else's. A dead leader's group id cannot be reused while any
        // member of the group lives, so those members are the orphans.
        if start_time(pgid).is_some_and(|now| now != start) {
            continue;
        }
        // SAFETY: killpg only sends a signal, to a group established as the orphan's above.
        if unsafe { libc::killpg(pgid, libc::SIGKILL) } == 0 {
            killed.push(pgid);
        }
    }
    let deadline = Instant::now() + ORPHAN_WAIT;
    while !killed.is_empty() {
        killed.retain(|&pgid| group_alive(pgid));
        if killed.is_empty() {
            break;
        }
        if Instant::now() >= deadline {
            tracing::warn!(groups = ?killed, "processes of a dead engine's steps do not die");
            break;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    if !killed.is_empty() {
        tracing::info!("ended the processes of steps a dead engine had left running");
    }
}

/// Scratch space is `<engine>/<run>/<attempt>/`: the group files are three levels down.
fn find_groups(dir: &Path, depth: usize, groups: &mut Vec<(libc::pid_t, u64)>) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    for entry in entries.flatten() {
        let path = entry.path();
        if depth < 3 && path.is_dir() {
            find_groups(&path, depth + 1, groups);
        } else if depth == 3 && entry.file_name() == GROUP_FILE {
            let text = std::fs::read_to_string(&path).unwrap_or_default();
            let mut fields = text.split_whitespace().map(str::parse::<u64>);
            if let (Some(Ok(pgid)), Some(Ok(start))) = (fields.next(), fields.next()) {
                if let Ok(pgid) = libc::pid_t::try_from(pgid) {
                    if pgid > 1 {
                        groups.push((pgid, start));
                    }
                }
            }
        }
    }
}

/// When process `pid` started (clock ticks since boot), from `/proc`; `None` when it does
/// not exist (or there is no `/proc`).
fn start_time(pid: libc::pid_t) -> Option<u64> {
    stat_fields(pid)?.get(19)?.parse().ok()
}

/// The fields of `/proc/<pid>/stat` after the command name, which may hold spaces:
/// state is field 0, process group 2, start time 19.
fn stat_fields(pid: libc::pid_t) -> Option<Vec<String>> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let (_, rest) = stat.rsplit_once(')')?;
    Some(rest.split_whitespace().map(str::to_owned).collect())
}

/// Whether a process of group `pgid` is still alive (zombies wait for their parent to reap
/// them and run nothing).
fn group_alive(pgid: libc::pid_t) -> bool {
    let Ok(procs) = std::fs::read_dir("/proc") else {
        // SAFETY: signal 0 only checks that the group exists.
        return unsafe { libc::killpg(pgid, 0) } == 0;
    };
    procs.flatten().filter_map(|e| e.file_name().to_str()?.parse::<libc::pid_t>().ok()).any(|pid| {
        stat_fields(pid).is_some_and(|f| {
            f.first().is_some_and(|s| s != "Z") && f.get(2) == Some(&pgid.to_string())
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A group running `sleep` in the background of its shell, as a long step does; the
    /// pid of the `sleep` is returned.
    async fn sleeping_group(scratch: &Path) -> (Child, Group, libc::pid_t) {
        let pid_file = scratch.join("sleep.pid");
        let mut command = Command::new("sh");
        command.arg("-c").arg(format!("sleep 300 & echo $! > {}; wait", pid_file.display()));
        let (child, group) = spawn(command, scratch).unwrap();
        let pid = loop {
            if let Some(pid) = std::fs::read_to_string(&pid_file)
                .ok()
                .and_then(|t| t.trim().parse::<libc::pid_t>().ok())
            {
                break pid;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        };
        (child, group, pid)
    }

    fn alive(pid: libc::pid_t) -> bool {
        stat_fields(pid).is_some_and(|f| f.first().is_some_and(|s| s != "Z"))
    }

    /// Real processes die in their own time: wait for it, boundedly.
    async fn dies(pid: libc::pid_t) -> bool {
        for _ in 0..500 {
            if !alive(pid) {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        false
    }

    #[tokio::test]
    async fn a_dropped_attempt_takes_its_whole_group_with_it() {
        let dir = tempfile::tempdir().unwrap();
        let (child, group, sleep) = sleeping_group(dir.path()).await;
        assert!(alive(sleep));
        drop(group);
        drop(child);
        assert!(dies(sleep).await, "the background sleep of a dropped attempt still runs");
    }

    #[tokio::test]
    async fn the_watcher_kills_the_group_when_the_engine_end_of_its_pipe_closes() {
        let dir = tempfile::tempdir().unwrap();
        let (child, mut group, sleep) = sleeping_group(dir.path()).await;
        // What the death of the engine looks like to the watcher.
        drop(group._pipe.take());
        assert!(dies(sleep).await, "the watcher did not kill the group");
        group.ended();
        drop(child);
    }

    #[tokio::test]
    async fn a_group_left_by_a_dead_engine_is_ended_by_the_next() {
        let dir = tempfile::tempdir().unwrap();
        let attempt = dir.path().join("engine").join("run").join("step-1");
        std::fs::create_dir_all(&attempt).unwrap();
        let (child, mut group, sleep) = sleeping_group(&attempt).await;
        // The engine and its watcher died without killing anything.
        group.ended();
        drop(group._watcher.take());
        std::mem::forget(group._pipe.take());
        assert!(alive(sleep));
        end_orphans(dir.path());
        assert!(!alive(sleep), "end_orphans returned with the orphan still running");
        drop(child);
    }

    #[tokio::test]
    async fn a_reused_group_id_is_left_alone() {
        let dir = tempfile::tempdir().unwrap();
        let attempt = dir.path().join("engine").join("run").join("step-1");
        std::fs::create_dir_all(&attempt).unwrap();
        let (child, mut group, sleep) = sleeping_group(&attempt).await;
        // Recorded with another start time: as if the id now belonged to a new process.
        let file = attempt.join(GROUP_FILE);
        std::fs::write(&file, format!("{} 1\n", group.pgid)).unwrap();
        end_orphans(dir.path());
        assert!(alive(sleep), "a group that is not the orphan's was killed");
        group.signal(libc::SIGKILL);
        group.ended();
        drop(child);
        assert!(dies(sleep).await);
    }
}
