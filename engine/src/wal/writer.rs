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
    ///
    /// A disk too full to hold even the new segment's header does not stop the start: appends are
    /// refused ([`WalError::NoSpace`]) until the segment can be made. Any other failure to create it
    /// (permissions, a missing folder) is an error here, so a misconfigured server stops at once.
    pub fn start(
        config: WalWriterConfig,
        first_segment: SegmentId,
        next_event_id: u64,
        sink: Arc<dyn CommitSink>,
    ) -> Result<Self, WalError> {
        Self::start_with(config, first_segment, next_event_id, sink, Faults::default())
    }

    fn start_with(
        config: WalWriterConfig,
        first_segment: SegmentId,
        next_event_id: u64,
        sink: Arc<dyn CommitSink>,
        faults: Faults,
    ) -> Result<Self, WalError> {
        let (tx, rx) = crossbeam_channel::bounded(config.queue_capacity);
        let mut state = WriterState {
            config,
            open: None,
            next_segment: first_segment,
            abandoned: None,
            next_event_id,
            sink,
            scratch: Vec::new(),
            unavailable_since: None,
            faults,
        };
        if let Err(e) = state.start_segment() {
            if !e.is_no_space() {
                return Err(e);
            }
            tracing::error!(error = %e, "no space to start a WAL segment; ingest is refused until there is");
            state.unavailable_since = Some(Instant::now());
        }
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

    /// Closes the current segment and starts a new one; returns the closed segment's id: every
    /// event committed so far lies in segments up to it. Succeeds even when no new segment can be
    /// started (a full disk): the next append starts it.
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
    /// Creates segment `id` with its header, durably. On failure nothing of it is left behind: a
    /// file without a whole header would read as a damaged segment at the next start.
    fn create(dir: &Path, id: SegmentId, faults: &Faults) -> Result<Self, WalError> {
        let path = dir.join(segment::file_name(id));
        let mut file = OpenOptions::new().create_new(true).append(true).open(&path).map_err(WalError::io(&path))?;
        let written = segment::encode_header(id).and_then(|header| {
            faults.write(&mut file, &header, FaultPoint::Create).map_err(WalError::io(&path))?;
            file.sync_all().map_err(WalError::io(&path))?;
            // The directory entry must be durable too, or a crash could lose the whole new file.
            File::open(dir).and_then(|d| d.sync_all()).map_err(WalError::io(dir))?;
            Ok(header.len() as u64)
        });
        match written {
            Ok(len) => Ok(Self { id, file, path, len }),
            Err(e) => {
                drop(file);
                if let Err(remove) = std::fs::remove_file(&path) {
                    // Start-up removes a newest segment shorter than its header (replay.rs).
                    tracing::warn!(error = %remove, path = %path.display(), "removing a half-made WAL segment");
                }
                Err(e)
            }
        }
    }
}

/// A segment given up after a failed write or fsync. Its first `len` bytes were fsynced by earlier
/// group commits; whatever follows is an unacknowledged record in an unknown state (after a failed
/// fsync the page cache no longer tells what is on disk). The tail is cut off, durably, before any
/// newer segment is started: replay treats a bad record followed by more segments as corruption.
struct Abandoned {
    id: SegmentId,
    path: PathBuf,
    len: u64,
}

struct WriterState {
    config: WalWriterConfig,
    /// `None` after a failure, until the next group commit (or seal) starts a fresh segment.
    open: Option<OpenSegment>,
    /// The id the next segment gets: one past every segment this writer made or tried to make.
    next_segment: SegmentId,
    abandoned: Option<Abandoned>,
    next_event_id: u64,
    sink: Arc<dyn CommitSink>,
    scratch: Vec<u8>,
    /// Since when writes fail (logged once at the start and once at the end of an outage).
    unavailable_since: Option<Instant>,
    faults: Faults,
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
                    let _ = reply.send(Ok(self.seal()));
                }
                Some(Command::Shutdown) => return,
                Some(Command::Append { .. }) | None => {}
            }
        }
    }

    fn commit_group(&mut self, events: Vec<Event>, waiters: Vec<Waiter>) {
        let first_event_id = self.next_event_id;
        let count = events.len();
        let record = WalRecord { first_event_id, events };
        if let Err(e) = self.write_durably(&record) {
            metrics::counter!("footfall_wal_write_failures_total").increment(1);
            if self.unavailable_since.is_none() {
                self.unavailable_since = Some(Instant::now());
                tracing::error!(error = %e, "WAL write failed; refusing ingest until a write succeeds");
            } else {
                tracing::debug!(error = %e, "WAL write failed again");
            }
            for (reply, _) in waiters {
                let _ = reply.send(Err(e.refusal()));
            }
            return;
        }
        if let Some(since) = self.unavailable_since.take() {
            tracing::info!(unavailable_ms = since.elapsed().as_millis() as u64, "WAL writes succeed again");
        }
        self.next_event_id += count as u64;
        metrics::histogram!("footfall_wal_batch_events").record(count as f64);
        self.sink.committed(first_event_id, record.events);
        let mut id = first_event_id;
        for (reply, n) in waiters {
            let _ = reply.send(Ok(AppendAck { first_event_id: id, count: n }));
            id += n as u64;
        }
        if self.open.as_ref().is_some_and(|open| open.len >= self.config.segment_max_bytes) {
            // The full segment holds only durable records: closing it needs no cut. A new one that
            // cannot be started yet is started by the next group commit.
            self.open = None;
            if let Err(e) = self.start_segment() {
                tracing::warn!(error = %e, "starting the next WAL segment failed; retried on the next write");
            }
        }
    }

    /// Writes and fsyncs one record. On failure nothing of it stays: a failed write is cut off the
    /// segment, a failed fsync abandons the segment (see [`Abandoned`]) and the next call starts a
    /// fresh one.
    fn write_durably(&mut self, record: &WalRecord) -> Result<(), WalError> {
        self.scratch.clear();
        segment::encode_record_into(record, &mut self.scratch)?;
        if self.open.is_none() {
            self.start_segment()?;
        }
        let Some(open) = self.open.as_mut() else {
            return Err(WalError::Stopped);
        };
        if let Err(source) = self.faults.write(&mut open.file, &self.scratch, FaultPoint::Record) {
            // A failed write (ENOSPC above all) leaves a known state: the file holds some prefix of
            // the record past `len`. Cut it off and keep the segment; without a durable cut it is
            // abandoned like a failed fsync below.
            let error = WalError::Io { path: open.path.clone(), source };
            let cut = self.faults.truncate(&open.file, open.len).and_then(|()| open.file.sync_all());
            if let Err(e) = cut {
                tracing::warn!(error = %e, "cutting a failed write off the WAL segment; the segment is abandoned");
                self.abandon();
            }
            return Err(error);
        }
        let started = Instant::now();
        match self.faults.sync(&open.file) {
            Ok(()) => {
                metrics::histogram!("footfall_wal_fsync_seconds").record(started.elapsed().as_secs_f64());
                open.len += self.scratch.len() as u64;
                Ok(())
            }
            Err(source) => {
                // After a failed fsync the page cache no longer tells what is on disk, and a later
                // fsync of the same file may report success for pages that were dropped: this
                // segment takes no more records.
                let error = WalError::Io { path: open.path.clone(), source };
                self.abandon();
                Err(error)
            }
        }
    }

    /// Gives up the open segment after a failure (see [`Abandoned`]) and cuts its tail if it can.
    fn abandon(&mut self) {
        if let Some(open) = self.open.take() {
            self.abandoned = Some(Abandoned { id: open.id, path: open.path, len: open.len });
        }
        // Right away if it can be: the cut also frees the space the partial record took.
        if let Err(e) = self.cut_abandoned() {
            tracing::warn!(error = %e, "cutting the failed write off the WAL segment; retried before the next write");
        }
    }

    /// Cuts the unacknowledged tail off the abandoned segment and makes the cut durable. Through a
    /// new descriptor: the old one may carry the failed fsync's error state.
    fn cut_abandoned(&mut self) -> Result<(), WalError> {
        let Some(abandoned) = &self.abandoned else { return Ok(()) };
        let path = &abandoned.path;
        let file = OpenOptions::new().write(true).open(path).map_err(WalError::io(path))?;
        self.faults.truncate(&file, abandoned.len).map_err(WalError::io(path))?;
        file.sync_all().map_err(WalError::io(path))?;
        tracing::info!(segment = %abandoned.id, len = abandoned.len, "WAL segment abandoned after a failed write; its unacknowledged tail is cut off");
        self.abandoned = None;
        Ok(())
    }

    /// Starts the next segment, once the abandoned one (if any) is cut.
    fn start_segment(&mut self) -> Result<(), WalError> {
        self.cut_abandoned()?;
        let open = OpenSegment::create(&self.config.dir, self.next_segment, &self.faults)?;
        self.next_segment = open.id.next();
        self.open = Some(open);
        Ok(())
    }

    /// Closes the open segment and tries to start the next one. The closed id is the newest
    /// segment that can hold a committed event; it is the same whether or not a segment is open
    /// now, so a flush works while the disk is full.
    fn seal(&mut self) -> SegmentId {
        let closed = SegmentId(self.next_segment.0.saturating_sub(1));
        self.open = None;
        if let Err(e) = self.start_segment() {
            tracing::warn!(error = %e, "starting a WAL segment after a seal failed; retried on the next write");
        }
        self.sink.sealed(closed);
        closed
    }
}

/// Where an injected fault strikes (unit tests only; every other build runs the plain calls).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum FaultPoint {
    Create,
    Record,
}

/// Fault injection for the unit tests: a write that stops halfway with ENOSPC, an fsync that fails,
/// a truncation that fails. Without the `test` cfg it is a zero-sized pass-through.
#[derive(Default, Clone)]
struct Faults {
    #[cfg(test)]
    plan: Arc<Mutex<tests::FaultPlan>>,
}

impl Faults {
    fn write(&self, file: &mut File, bytes: &[u8], _at: FaultPoint) -> std::io::Result<()> {
        #[cfg(test)]
        if self.plan.lock().unwrap_or_else(|p| p.into_inner()).torn_write(_at) {
            file.write_all(&bytes[..bytes.len() / 2])?;
            return Err(std::io::Error::from(std::io::ErrorKind::StorageFull));
        }
        file.write_all(bytes)
    }

    fn sync(&self, file: &File) -> std::io::Result<()> {
        #[cfg(test)]
        if self.plan.lock().unwrap_or_else(|p| p.into_inner()).fsync_fails {
            return Err(std::io::Error::other("injected fsync failure"));
        }
        file.sync_data()
    }

    fn truncate(&self, file: &File, len: u64) -> std::io::Result<()> {
        #[cfg(test)]
        if self.plan.lock().unwrap_or_else(|p| p.into_inner()).truncate_fails {
            return Err(std::io::Error::other("injected truncate failure"));
        }
        file.set_len(len)
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

    /// What the injected faults do; see [`Faults`].
    #[derive(Default)]
    pub(super) struct FaultPlan {
        pub torn_records: bool,
        pub torn_creates: bool,
        pub fsync_fails: bool,
        pub truncate_fails: bool,
    }

    impl FaultPlan {
        pub(super) fn torn_write(&self, at: FaultPoint) -> bool {
            match at {
                FaultPoint::Record => self.torn_records,
                FaultPoint::Create => self.torn_creates,
            }
        }
    }

    fn start_faulty(dir: &Path, sink: Arc<Recorder>) -> (WalWriter, Arc<Mutex<FaultPlan>>) {
        let faults = Faults::default();
        let plan = faults.plan.clone();
        let wal = WalWriter::start_with(config(dir), SegmentId(1), 0, sink, faults).unwrap();
        (wal, plan)
    }

    /// Every event id replayed from `dir`, in order, and whether replay saw only clean ends.
    fn replayed_ids(dir: &Path) -> Vec<u64> {
        let mut ids = Vec::new();
        crate::wal::replay::replay::<()>(dir, None, |_, r| {
            ids.extend(r.first_event_id..r.first_event_id + r.events.len() as u64);
            Ok(())
        })
        .expect("replay finds no corruption")
        .unwrap();
        ids
    }

    fn segment_files(dir: &Path) -> Vec<(SegmentId, u64)> {
        crate::wal::replay::list_segments(dir)
            .unwrap()
            .into_iter()
            .map(|(id, path)| (id, std::fs::metadata(path).unwrap().len()))
            .collect()
    }

    #[tokio::test]
    async fn torn_write_is_cut_off_and_writing_resumes() {
        let dir = tempfile::tempdir().unwrap();
        let sink = Arc::new(Recorder::default());
        let (wal, plan) = start_faulty(dir.path(), sink.clone());
        wal.append(vec![sample("p", 1, "s"); 2]).await.unwrap();
        let good_len = segment_files(dir.path())[0].1;

        plan.lock().unwrap().torn_records = true;
        for _ in 0..3 {
            match wal.append(vec![sample("p", 2, "s"); 3]).await {
                Err(WalError::NoSpace(_)) => {}
                other => panic!("expected NoSpace, got {other:?}"),
            }
        }
        // The half-written record is cut off again; the segment stays in use (a failed write,
        // unlike a failed fsync, leaves the file in a known state).
        assert_eq!(segment_files(dir.path()), vec![(SegmentId(1), good_len)]);
        assert_eq!(sink.committed.lock().unwrap().len(), 1, "nothing failed reached the buffer");

        plan.lock().unwrap().torn_records = false;
        let ack = wal.append(vec![sample("p", 3, "s"); 4]).await.unwrap();
        assert_eq!(ack.first_event_id, 2, "the refused events took no ids");
        assert_eq!(segment_files(dir.path()).len(), 1);
        wal.shutdown();
        assert_eq!(replayed_ids(dir.path()), (0..6).collect::<Vec<_>>());
    }

    #[tokio::test]
    async fn failed_fsync_abandons_the_segment_and_its_record_never_replays() {
        let dir = tempfile::tempdir().unwrap();
        let (wal, plan) = start_faulty(dir.path(), Arc::new(Recorder::default()));
        wal.append(vec![sample("p", 1, "s")]).await.unwrap();
        plan.lock().unwrap().fsync_fails = true;
        // The whole record reached the file before the fsync failed: it must still not replay.
        assert!(matches!(wal.append(vec![sample("p", 2, "s"); 5]).await, Err(WalError::Unavailable(_))));
        plan.lock().unwrap().fsync_fails = false;
        wal.append(vec![sample("p", 3, "s"); 2]).await.unwrap();
        let segments: Vec<_> = segment_files(dir.path()).iter().map(|(id, _)| *id).collect();
        assert_eq!(segments, [SegmentId(1), SegmentId(2)], "writing went on in a new segment");
        wal.shutdown();
        assert_eq!(replayed_ids(dir.path()), vec![0, 1, 2]);
    }

    #[tokio::test]
    async fn no_newer_segment_starts_before_the_torn_tail_is_cut() {
        let dir = tempfile::tempdir().unwrap();
        let sink = Arc::new(Recorder::default());
        let (wal, plan) = start_faulty(dir.path(), sink.clone());
        wal.append(vec![sample("p", 1, "s")]).await.unwrap();
        {
            let mut plan = plan.lock().unwrap();
            plan.torn_records = true;
            plan.truncate_fails = true;
        }
        assert!(wal.append(vec![sample("p", 2, "s"); 8]).await.is_err());
        plan.lock().unwrap().torn_records = false;
        // Writes could succeed again, but the torn record is still in segment 1: starting
        // segment 2 now would leave a bad record in the middle of the log.
        assert!(wal.append(vec![sample("p", 3, "s")]).await.is_err());
        // A seal still answers (a flush must work while the disk is full) and covers segment 1.
        assert_eq!(wal.seal().await.unwrap(), SegmentId(1));
        assert_eq!(*sink.sealed.lock().unwrap(), vec![SegmentId(1)]);
        assert_eq!(segment_files(dir.path()).len(), 1);

        plan.lock().unwrap().truncate_fails = false;
        let ack = wal.append(vec![sample("p", 4, "s")]).await.unwrap();
        assert_eq!(ack.first_event_id, 1);
        wal.shutdown();
        assert_eq!(replayed_ids(dir.path()), vec![0, 1]);
    }

    #[tokio::test]
    async fn a_segment_that_cannot_be_started_leaves_no_file_and_is_retried() {
        let dir = tempfile::tempdir().unwrap();
        let faults = Faults::default();
        faults.plan.lock().unwrap().torn_creates = true;
        let plan = faults.plan.clone();
        // No space for the first segment's header: the writer starts anyway and refuses appends.
        let wal =
            WalWriter::start_with(config(dir.path()), SegmentId(7), 40, Arc::new(Recorder::default()), faults).unwrap();
        assert!(matches!(wal.append(vec![sample("p", 1, "s")]).await, Err(WalError::NoSpace(_))));
        assert!(segment_files(dir.path()).is_empty(), "a half-made segment was left behind");
        // Nothing is in any segment yet: the seal covers what came before this writer.
        assert_eq!(wal.seal().await.unwrap(), SegmentId(6));

        plan.lock().unwrap().torn_creates = false;
        let ack = wal.append(vec![sample("p", 2, "s")]).await.unwrap();
        assert_eq!(ack.first_event_id, 40);
        assert_eq!(segment_files(dir.path()).iter().map(|(id, _)| *id).collect::<Vec<_>>(), [SegmentId(7)]);
        wal.shutdown();
        assert_eq!(replayed_ids(dir.path()), vec![40]);
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
