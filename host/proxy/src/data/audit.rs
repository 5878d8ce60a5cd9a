//! The audit trail of the data plane: one record per decision, written off the request
//! path by a background task that batches inserts.
//!
//! A batch is written when it holds [`BATCH`] records, or [`LINGER`] after its first
//! record, or at once when someone waits for it ([`AuditSink::flush`]: the audit query
//! and shutdown). Lingering is what makes the store's cost per record small at low load:
//! each batch is a transaction (and a hand-off to the store's thread per statement), so
//! one record per batch cost more CPU than the rest of the request path.
//!
//! The queue is bounded twice: in records and in bytes (`limits.audit_queue_bytes`); when
//! the store falls behind, requests wait for room rather than lose records. A record
//! holds the run, connector, method, tool, decision, reason and the stamps of every plugin
//! that took part (access included); never a secret, a token or tool arguments. Its text
//! fields are cut to [`FIELD_BYTES`] when it is built, so what a run chose to send cannot
//! make a record large.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use portcullis_model::{Decision, Stamp, Verdict};
use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore, mpsc, watch};

use crate::clock::now_ms;
use crate::store::{AuditRecord, Store};

const BATCH: usize = 512;
/// How long a batch waits for more records after its first, unless hurried.
const LINGER: Duration = Duration::from_millis(20);
const QUEUE: usize = 16_384;
/// The longest text field of a record, in bytes.
pub const FIELD_BYTES: usize = 256;

pub struct AuditSink {
    tx: mpsc::Sender<Queued>,
    bytes: Arc<Semaphore>,
    budget: u32,
    /// Records queued so far, and records the writer has handled so far: a shutdown waits
    /// until the second reaches the first ([`AuditSink::flush`]).
    queued: AtomicU64,
    handled: watch::Receiver<u64>,
    /// Cuts the writer's linger short: someone waits for what is queued.
    hurry: Arc<Notify>,
}

/// A record in the queue, holding its share of the byte budget until it is taken out.
struct Queued {
    record: AuditRecord,
    _bytes: Option<OwnedSemaphorePermit>,
}

/// The writer's end of the queue.
struct Receiver {
    rx: mpsc::Receiver<Queued>,
    handled: watch::Sender<u64>,
    hurry: Arc<Notify>,
    linger: Duration,
}

impl Receiver {
    /// Moves up to `limit` records into `batch`, releasing their bytes; 0 once closed.
    async fn recv_many(&mut self, batch: &mut Vec<AuditRecord>, limit: usize) -> usize {
        let mut queued = Vec::with_capacity(limit.min(BATCH));
        let received = self.rx.recv_many(&mut queued, limit).await;
        batch.extend(queued.into_iter().map(|q| q.record));
        received
    }

    /// The next batch: waits for a first record, then up to `linger` for more, until
    /// `batch` holds [`BATCH`] records or a flush hurries it; 0 once the queue is closed
    /// and empty.
    async fn next_batch(&mut self, batch: &mut Vec<AuditRecord>) -> usize {
        let mut received = self.recv_many(batch, BATCH).await;
        if received == 0 {
            return 0;
        }
        let deadline = tokio::time::Instant::now() + self.linger;
        let hurry = self.hurry.clone();
        while batch.len() < BATCH {
            let room = BATCH - batch.len();
            tokio::select! {
                _ = tokio::time::sleep_until(deadline) => break,
                _ = hurry.notified() => break,
                taken = self.recv_many(batch, room) => match taken {
                    0 => break,
                    taken => received += taken,
                },
            }
        }
        received
    }

    /// Says that `count` more records were written (or failed to be).
    fn handled(&self, count: usize) {
        self.handled.send_modify(|handled| *handled += count as u64);
    }
}

/// A queue of at most `records` records and `bytes` bytes, whose batches wait `linger`.
fn queue(records: usize, bytes: usize, linger: Duration) -> (AuditSink, Receiver) {
    let (tx, rx) = mpsc::channel(records);
    let (handled_tx, handled) = watch::channel(0);
    let hurry = Arc::new(Notify::new());
    let budget = u32::try_from(bytes.max(1)).unwrap_or(u32::MAX);
    let sink = AuditSink {
        tx,
        bytes: Arc::new(Semaphore::new(budget as usize)),
        budget,
        queued: AtomicU64::new(0),
        handled,
        hurry: hurry.clone(),
    };
    let receiver = Receiver {
        rx,
        handled: handled_tx,
        hurry,
        linger,
    };
    (sink, receiver)
}

impl AuditSink {
    /// Starts the writer task with a queue of at most `bytes` bytes; `app::start` calls
    /// it once.
    pub fn spawn(store: Arc<dyn Store>, bytes: usize) -> Self {
        let (sink, mut rx) = queue(QUEUE, bytes, LINGER);
        tokio::spawn(async move {
            let mut batch = Vec::with_capacity(BATCH);
            while rx.next_batch(&mut batch).await > 0 {
                if let Err(error) = store.append_audit(&batch).await {
                    tracing::error!(%error, records = batch.len(), "could not write audit records");
                }
                rx.handled(batch.len());
                batch.clear();
            }
        });
        sink
    }

    /// Queues `record`, waiting for room in records and in bytes.
    pub async fn record(&self, record: AuditRecord) {
        let size = u32::try_from(size_of(&record))
            .unwrap_or(u32::MAX)
            .min(self.budget);
        let bytes = self.bytes.clone().acquire_many_owned(size).await.ok();
        let queued = Queued {
            record,
            _bytes: bytes,
        };
        self.queued.fetch_add(1, Ordering::SeqCst);
        if self.tx.send(queued).await.is_err() {
            tracing::error!("the audit writer has stopped; a decision was not recorded");
        }
    }

    /// Waits, at most `limit`, until every record queued before the call is written,
    /// and has the writer write at once rather than linger: a shutdown calls it before it
    /// closes the store, so that no record is lost, and the audit query, so that it sees
    /// every decision made before it was asked.
    pub async fn flush(&self, limit: Duration) {
        let target = self.queued.load(Ordering::SeqCst);
        let mut handled = self.handled.clone();
        if *handled.borrow() >= target {
            return;
        }
        self.hurry.notify_one();
        let written = handled.wait_for(|handled| *handled >= target);
        if tokio::time::timeout(limit, written).await.is_err() {
            tracing::error!(
                ?limit,
                "the audit writer did not catch up in time: at shutdown records may be lost, a query may miss the newest"
            );
        }
    }
}

/// About how many bytes `record` holds.
fn size_of(record: &AuditRecord) -> usize {
    let text = |s: &Option<String>| s.as_ref().map_or(0, String::len);
    let stamps: usize = record
        .plugins
        .iter()
        .map(|s| s.name.len() + s.version.len() + s.sha256.len() + 64)
        .sum();
    128 + text(&record.run)
        + text(&record.connector)
        + text(&record.method)
        + text(&record.tool)
        + text(&record.reason)
        + record.decision.len()
        + stamps
}

/// `text` cut to at most [`FIELD_BYTES`], on a character boundary.
fn capped(text: &str) -> String {
    if text.len() <= FIELD_BYTES {
        return text.to_owned();
    }
    let mut end = FIELD_BYTES;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text[..end].to_owned()
}

/// The audit record of a request refused because the connector's OAuth grant failed:
/// `reason` is `needs_reauthorization:<why>`.
pub fn reauthorization(
    run: &str,
    connector: &str,
    method: &str,
    tool: Option<&str>,
    why: &str,
) -> AuditRecord {
    AuditRecord {
        at_ms: now_ms(),
        run: Some(run.to_owned()),
        connector: Some(connector.to_owned()),
        method: (!method.is_empty()).then(|| method.to_owned()),
        tool: tool.map(str::to_owned),
        decision: "deny".to_owned(),
        reason: Some(format!("needs_reauthorization:{why}")),
        plugins: Vec::new(),
        ..AuditRecord::default()
    }
}

/// The audit record of a verdict about `method` and `tool`. It names every plugin that
/// took part in the request: those of the access decision that let it through
/// (`access_stamps`, empty when `verdict` is the access decision), then the verdict's,
/// then `extra_stamps` (the provider plugin that wrote the credential).
pub fn record(
    run: &str,
    connector: &str,
    method: &str,
    tool: Option<&str>,
    verdict: &Verdict<Decision>,
    access_stamps: &[Stamp],
    extra_stamps: &[Stamp],
) -> AuditRecord {
    let (decision, reason) = match &verdict.value {
        Decision::Allow => ("allow", None),
        Decision::Deny(denial) => ("deny", Some(capped(&denial.reason))),
    };
    AuditRecord {
        at_ms: now_ms(),
        run: Some(capped(run)),
        connector: Some(capped(connector)),
        method: (!method.is_empty()).then(|| capped(method)),
        tool: tool.map(capped),
        decision: decision.to_owned(),
        reason,
        plugins: access_stamps
            .iter()
            .chain(&verdict.plugins)
            .chain(extra_stamps)
            .cloned()
            .collect(),
        ..AuditRecord::default()
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn verdict() -> Verdict<Decision> {
        Verdict {
            value: Decision::Allow,
            plugins: Vec::new(),
            fault: None,
            generation: 0,
        }
    }

    #[test]
    fn fields_are_capped_on_a_character_boundary() {
        let method = format!("{}é", "m".repeat(FIELD_BYTES - 1));
        let record = record(
            "run",
            "conn",
            &method,
            Some(&"t".repeat(100_000)),
            &verdict(),
            &[],
            &[],
        );
        assert_eq!(
            record.method.as_deref(),
            Some("m".repeat(FIELD_BYTES - 1).as_str())
        );
        assert_eq!(record.tool.as_ref().map(String::len), Some(FIELD_BYTES));
        assert!(size_of(&record) < 2 * 1024);
    }

    #[tokio::test]
    async fn flush_waits_until_what_was_queued_is_written() {
        let (sink, mut rx) = queue(10, 10_000, LINGER);
        sink.record(record("run", "conn", "m", None, &verdict(), &[], &[]))
            .await;
        let early = tokio::time::timeout(
            Duration::from_millis(100),
            sink.flush(Duration::from_secs(60)),
        );
        assert!(
            early.await.is_err(),
            "flush returned before the writer wrote"
        );
        let mut batch = Vec::new();
        let taken = rx.recv_many(&mut batch, 10).await;
        rx.handled(taken);
        let flushed =
            tokio::time::timeout(Duration::from_secs(5), sink.flush(Duration::from_secs(60)));
        assert!(flushed.await.is_ok());
    }

    #[tokio::test]
    async fn the_queue_is_bounded_in_bytes() {
        let (sink, mut rx) = queue(1_000, 1_000, LINGER);
        let one = record("run", "conn", &"m".repeat(200), None, &verdict(), &[], &[]);
        assert!(size_of(&one) > 300);
        for _ in 0..2 {
            sink.record(one.clone()).await;
        }
        // A third record does not fit in 1,000 bytes until the writer takes some out.
        let third = tokio::time::timeout(Duration::from_millis(200), sink.record(one.clone()));
        assert!(
            third.await.is_err(),
            "the queue took more bytes than its budget"
        );
        let mut batch = Vec::new();
        assert_eq!(rx.recv_many(&mut batch, 10).await, 2);
        let third = tokio::time::timeout(Duration::from_secs(5), sink.record(one));
        assert!(third.await.is_ok());
    }

    /// A record that arrives while the batch lingers joins it, and a flush ends the
    /// linger. The linger here is a minute, so the batch can only end by the flush, and
    /// the sleeps only order the events.
    #[tokio::test]
    async fn a_batch_lingers_for_more_records_until_a_flush_hurries_it() {
        let (sink, mut rx) = queue(10, 10_000, Duration::from_secs(60));
        let one = || record("run", "conn", "m", None, &verdict(), &[], &[]);
        sink.record(one()).await;
        let mut batch = Vec::new();
        let later = async {
            tokio::time::sleep(Duration::from_millis(50)).await;
            sink.record(one()).await;
            tokio::time::sleep(Duration::from_millis(50)).await;
            sink.flush(Duration::from_millis(1)).await;
        };
        let (taken, ()) = tokio::time::timeout(Duration::from_secs(20), async {
            tokio::join!(rx.next_batch(&mut batch), later)
        })
        .await
        .expect("the flush did not end the linger");
        assert_eq!(
            taken, 2,
            "the second record did not join the lingering batch"
        );
        assert_eq!(batch.len(), 2);
    }

    /// A flush with nothing queued returns at once and leaves no hurry behind for the
    /// next batch.
    #[tokio::test]
    async fn a_flush_with_nothing_queued_does_not_hurry_the_next_batch() {
        let (sink, mut rx) = queue(10, 10_000, Duration::from_millis(300));
        sink.flush(Duration::from_secs(60)).await;
        sink.record(record("run", "conn", "m", None, &verdict(), &[], &[]))
            .await;
        let started = std::time::Instant::now();
        let mut batch = Vec::new();
        assert_eq!(rx.next_batch(&mut batch).await, 1);
        assert!(
            started.elapsed() >= Duration::from_millis(300),
            "the batch did not linger"
        );
    }
}
