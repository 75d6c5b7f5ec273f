//! What the engine asks the operating system about other processes.

/// Whether process `pid` no longer exists (a process that exists but is not ours to signal
/// is alive).
pub(crate) fn gone(pid: libc::pid_t) -> bool {
    // SAFETY: signal 0 only asks whether the process exists.
    pid > 0
        && unsafe { libc::kill(pid, 0) } != 0
        && std::io::Error::last_os_error().raw_os_error() == Some(libc::ESRCH)
}
