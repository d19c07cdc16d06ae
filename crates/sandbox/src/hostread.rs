//! The supervisor's own reads of files it must not show the program (its `/proc/self/maps`,
//! `smaps`, `status`, another process's `stat`), through a thread with a descriptor table of
//! its own.
//!
//! The program and the runtime share one descriptor table, and every descriptor the kernel
//! creates lands at the lowest free number, which is the program's. A file the supervisor
//! opened there for a moment could be duplicated by another program thread (`dup` in a loop)
//! and read through the copy: the supervisor's whole memory layout, for `/proc/self/maps`.
//! So such files are opened and read by one helper thread per process (`sandbox-reader`)
//! that left the shared table at start (`unshare(CLONE_FILES)`) and closed everything it
//! copied: its descriptors exist in no table the program can name.
//!
//! A forked child (whose copy of the process has no such thread) starts its own at its first
//! read; [`lock`] is held across `fork` so the child never inherits the reader's lock held.

use std::io;
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::sync::{Mutex, MutexGuard};

/// One request: the file to read whole, and where the answer goes.
struct Request {
    path: PathBuf,
    reply: mpsc::SyncSender<io::Result<Vec<u8>>>,
}

/// The reader of the process `pid`.
struct Reader {
    pid: u32,
    tx: mpsc::Sender<Request>,
}

/// The reader of this process (None until the first read, or a parent's after `fork`).
#[derive(Default)]
pub struct Slot(Option<Reader>);

impl std::fmt::Debug for Slot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("hostread::Slot")
    }
}

static READER: Mutex<Slot> = Mutex::new(Slot(None));

/// Holds the reader's lock (across `fork`, so the child never inherits it held).
pub fn lock() -> MutexGuard<'static, Slot> {
    READER.lock().unwrap_or_else(|e| e.into_inner())
}

/// Reads the whole file at `path` without its descriptor ever being in the program's table.
pub fn read(path: &Path) -> io::Result<Vec<u8>> {
    let tx = {
        let mut slot = lock();
        let pid = std::process::id();
        if slot.0.as_ref().is_none_or(|r| r.pid != pid) {
            // A parent's reader (we are its forked child): its thread is not here. Its channel
            // is the parent's business; forget it without touching it.
            if let Some(old) = slot.0.take() {
                std::mem::forget(old);
            }
            slot.0 = Some(spawn(pid)?);
        }
        slot.0.as_ref().map(|r| r.tx.clone()).ok_or_else(|| io::Error::other("no reader"))?
    };
    let (reply, answer) = mpsc::sync_channel(1);
    tx.send(Request { path: path.to_owned(), reply })
        .map_err(|_| io::Error::other("the reader thread is gone"))?;
    answer.recv().map_err(|_| io::Error::other("the reader thread is gone"))?
}

/// Starts the reader thread of process `pid`, with every host signal blocked (signals are the
/// program threads' business) and a private, empty descriptor table.
fn spawn(pid: u32) -> io::Result<Reader> {
    let (tx, rx) = mpsc::channel::<Request>();
    let (ready_tx, ready_rx) = mpsc::sync_channel::<io::Result<()>>(1);
    crate::sys::with_signals_blocked(|_| {
        std::thread::Builder::new().name("sandbox-reader".into()).stack_size(256 << 10).spawn(
            move || {
                let ok = crate::sys::private_descriptor_table();
                let failed = ok.is_err();
                let _ = ready_tx.send(ok);
                if failed {
                    return;
                }
                for req in rx {
                    let _ = req.reply.send(std::fs::read(&req.path));
                }
            },
        )
    })?;
    match ready_rx.recv() {
        Ok(Ok(())) => Ok(Reader { pid, tx }),
        Ok(Err(e)) => Err(e),
        Err(_) => Err(io::Error::other("the reader thread did not start")),
    }
}
