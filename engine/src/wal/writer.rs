//! The group-commit writer: one thread owns the open segment. Requests queue on a bounded channel;
//! the thread drains everything queued, writes it as one record, fsyncs once and then answers every
//! request in the group. While one fsync runs the next group gathers, so throughput grows with load.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Instant;

use crossbeam_channel::{Receiver, Sender, TrySendError};
use tokio::sync::oneshot;

use crate::event::Event;
use crate::ids::SegmentId;
use crate::wal::segment::{self, WalRecord};
use crate::wal::WalError;

/// Receives what the writer made durable. Called on the writer thread, before the requests of the
/// group are answered: that ordering is what makes an acknowledged event visible to the next query.
pub trait CommitSink: Send + Sync + 'static {
    fn committed(&self, first_event_id: u64, events: Vec<Event>);
    /// Every event committed so far lies in segments `<= sealed`; later ones go to newer segments.
    fn sealed(&self, sealed: SegmentId);
}

#[derive(Debug, Clone)]
pub struct WalWriterConfig {
    pub dir: PathBuf,
    /// A segment is closed and a new one started past this size, so no segment grows without bound.
    pub segment_max_bytes: u64,
    /// Requests waiting for the writer; beyond it appends fail fast (back-pressure).
    pub queue_capacity: usize,
    /// At most this many events go into one record.
    pub max_group_events: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AppendAck {
    pub first_event_id: u64,
    pub count: usize,
}

enum Command {
    Append { events: Vec<Event>, reply: oneshot::Sender<Result<AppendAck, WalError>> },
    Seal { reply: oneshot::Sender<Result<SegmentId, WalError>> },
    Shutdown,
}

pub struct WalWriter {
    tx: Sender<Command>,
    thread: Mutex<Option<JoinHandle<()>>>,
}

impl WalWriter {
    /// Starts the writer on a fresh segment `first_segment`; event ids continue from `next_event_id`.
    pub fn start(
        config: WalWriterConfig,
        first_segment: SegmentId,
        next_event_id: u64,
        sink: Arc<dyn CommitSink>,
    ) -> Result<Self, WalError> {
        let (tx, rx) = crossbeam_channel::bounded(config.queue_capacity);
        let open = OpenSegment::create(&config.dir, first_segment)?;
        let mut state = WriterState { config, open, next_event_id, sink, failed: false, scratch: Vec::new() };
        let thread = std::thread::Builder::new()
            .name("footfall-wal".into())
            .spawn(move || state.run(rx))
            .map_err(WalError::io("footfall-wal thread"))?;
        Ok(Self { tx, thread: Mutex::new(Some(thread)) })
    }

    /// Appends events; resolves once they are fsynced and handed to the sink.
    pub async fn append(&self, events: Vec<Event>) -> Result<AppendAck, WalError> {
        let (reply, rx) = oneshot::channel();
        match self.tx.try_send(Command::Append { events, reply }) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) => return Err(WalError::QueueFull),
            Err(TrySendError::Disconnected(_)) => return Err(WalError::Stopped),
        }
        rx.await.map_err(|_| WalError::Stopped)?
    }

    /// Closes the current segment and starts a new one; returns the closed segment's id.
    pub async fn seal(&self) -> Result<SegmentId, WalError> {
        let (reply, rx) = oneshot::channel();
        self.tx.send(Command::Seal { reply }).map_err(|_| WalError::Stopped)?;
        rx.await.map_err(|_| WalError::Stopped)?
    }

    /// Finishes queued work and stops the thread.
    pub fn shutdown(&self) {
        let _ = self.tx.send(Command::Shutdown);
        let handle = self.thread.lock().ok().and_then(|mut t| t.take());
        if let Some(handle) = handle {
            let _ = handle.join();
        }
    }
}

impl Drop for WalWriter {
    fn drop(&mut self) {
        self.shutdown();
    }
}

struct OpenSegment {
    id: SegmentId,
    file: File,
    path: PathBuf,
    len: u64,
}

impl OpenSegment {
    fn create(dir: &Path, id: SegmentId) -> Result<Self, WalError> {
        let path = dir.join(segment::file_name(id));
        let mut file = OpenOptions::new().create_new(true).append(true).open(&path).map_err(WalError::io(&path))?;
        let header = segment::encode_header(id)?;
        file.write_all(&header).map_err(WalError::io(&path))?;
        file.sync_all().map_err(WalError::io(&path))?;
        // The directory entry must be durable too, or a crash could lose the whole new file.
        File::open(dir).and_then(|d| d.sync_all()).map_err(WalError::io(dir))?;
        Ok(Self { id, file, path, len: header.len() as u64 })
    }
}

struct WriterState {
    config: WalWriterConfig,
    open: OpenSegment,
    next_event_id: u64,
    sink: Arc<dyn CommitSink>,
    failed: bool,
    scratch: Vec<u8>,
}

type Waiter = (oneshot::Sender<Result<AppendAck, WalError>>, usize);

impl WriterState {
    fn run(&mut self, rx: Receiver<Command>) {
        let mut carried: Option<Command> = None;
        loop {
            let first = match carried.take() {
                Some(cmd) => cmd,
                None => match rx.recv() {
                    Ok(cmd) => cmd,
                    Err(_) => return,
                },
            };
            let mut events: Vec<Event> = Vec::new();
            let mut waiters: Vec<Waiter> = Vec::new();
            let mut after_group: Option<Command> = None;
            let mut next = Some(first);
            while let Some(cmd) = next.take() {
                match cmd {
                    Command::Append { events: mut batch, reply } => {
                        if !events.is_empty() && events.len() + batch.len() > self.config.max_group_events {
                            carried = Some(Command::Append { events: batch, reply });
                            break;
                        }
                        waiters.push((reply, batch.len()));
                        events.append(&mut batch);
                    }
                    other => {
                        after_group = Some(other);
                        break;
                    }
                }
                next = rx.try_recv().ok();
            }
            if !waiters.is_empty() {
                self.commit_group(events, waiters);
            }
            match after_group {
                Some(Command::Seal { reply }) => {
                    let _ = reply.send(self.seal());
                }
                Some(Command::Shutdown) => return,
                Some(Command::Append { .. }) | None => {}
            }
        }
    }

    fn commit_group(&mut self, events: Vec<Event>, waiters: Vec<Waiter>) {
        if self.failed {
            for (reply, _) in waiters {
                let _ = reply.send(Err(WalError::Stopped));
            }
            return;
        }
        let first_event_id = self.next_event_id;
        let count = events.len();
        let record = WalRecord { first_event_id, events };
        if let Err(e) = self.write_durably(&record) {
            tracing::error!(error = %e, "WAL write failed; refusing further writes");
            self.failed = true;
            for (reply, _) in waiters {
                let _ = reply.send(Err(WalError::Stopped));
            }
            return;
        }
        self.next_event_id += count as u64;
        metrics::histogram!("footfall_wal_batch_events").record(count as f64);
        self.sink.committed(first_event_id, record.events);
        let mut id = first_event_id;
        for (reply, n) in waiters {
            let _ = reply.send(Ok(AppendAck { first_event_id: id, count: n }));
            id += n as u64;
        }
        if self.open.len >= self.config.segment_max_bytes {
            if let Err(e) = self.rotate() {
                tracing::error!(error = %e, "WAL segment rotation failed; refusing further writes");
                self.failed = true;
            }
        }
    }

    fn write_durably(&mut self, record: &WalRecord) -> Result<(), WalError> {
        self.scratch.clear();
        segment::encode_record_into(record, &mut self.scratch)?;
        let path = &self.open.path;
        self.open.file.write_all(&self.scratch).map_err(WalError::io(path))?;
        let started = Instant::now();
        self.open.file.sync_data().map_err(WalError::io(path))?;
        metrics::histogram!("footfall_wal_fsync_seconds").record(started.elapsed().as_secs_f64());
        self.open.len += self.scratch.len() as u64;
        Ok(())
    }

    fn rotate(&mut self) -> Result<SegmentId, WalError> {
        let closed = self.open.id;
        self.open = OpenSegment::create(&self.config.dir, closed.next())?;
        Ok(closed)
    }

    fn seal(&mut self) -> Result<SegmentId, WalError> {
        if self.failed {
            return Err(WalError::Stopped);
        }
        let closed = self.rotate().inspect_err(|_| self.failed = true)?;
        self.sink.sealed(closed);
        Ok(closed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::sample;
    use crate::wal::segment::SegmentReader;

    #[derive(Default)]
    struct Recorder {
        committed: Mutex<Vec<(u64, usize)>>,
        sealed: Mutex<Vec<SegmentId>>,
    }

    impl CommitSink for Recorder {
        fn committed(&self, first: u64, events: Vec<Event>) {
            self.committed.lock().unwrap().push((first, events.len()));
        }
        fn sealed(&self, sealed: SegmentId) {
            self.sealed.lock().unwrap().push(sealed);
        }
    }

    fn config(dir: &Path) -> WalWriterConfig {
        WalWriterConfig {
            dir: dir.to_path_buf(),
            segment_max_bytes: 1 << 30,
            queue_capacity: 1024,
            max_group_events: 10_000,
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_appends_get_distinct_ids_and_are_on_disk() {
        let dir = tempfile::tempdir().unwrap();
        let sink = Arc::new(Recorder::default());
        let wal = Arc::new(WalWriter::start(config(dir.path()), SegmentId(1), 100, sink.clone()).unwrap());
        let mut tasks = Vec::new();
        for t in 0..8 {
            let wal = wal.clone();
            tasks.push(tokio::spawn(async move {
                let mut acks = Vec::new();
                for i in 0..20 {
                    let events = vec![sample("p", t * 1000 + i, "s"); 3];
                    acks.push(wal.append(events).await.unwrap());
                }
                acks
            }));
        }
        let mut ids = Vec::new();
        for t in tasks {
            for ack in t.await.unwrap() {
                ids.extend(ack.first_event_id..ack.first_event_id + ack.count as u64);
            }
        }
        ids.sort_unstable();
        assert_eq!(ids, (100..100 + 8 * 20 * 3).collect::<Vec<_>>());
        let sealed = wal.seal().await.unwrap();
        assert_eq!(sealed, SegmentId(1));
        assert_eq!(*sink.sealed.lock().unwrap(), vec![SegmentId(1)]);

        let mut reader = SegmentReader::open(&dir.path().join(segment::file_name(SegmentId(1)))).unwrap();
        let mut on_disk = 0;
        while let Some(r) = reader.next_record().unwrap() {
            on_disk += r.events.len();
        }
        assert_eq!(on_disk, 8 * 20 * 3);
        assert!(dir.path().join(segment::file_name(SegmentId(2))).exists());
    }

    #[tokio::test]
    async fn full_queue_is_back_pressure_not_a_hang() {
        let dir = tempfile::tempdir().unwrap();
        let mut cfg = config(dir.path());
        cfg.queue_capacity = 1;
        let wal = WalWriter::start(cfg, SegmentId(1), 0, Arc::new(Recorder::default())).unwrap();
        // Whatever the timing, each append either succeeds or reports QueueFull.
        for _ in 0..50 {
            match wal.append(vec![sample("p", 1, "s")]).await {
                Ok(_) | Err(WalError::QueueFull) => {}
                Err(e) => panic!("unexpected {e}"),
            }
        }
    }
}
