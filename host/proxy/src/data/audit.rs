//! The audit trail of the data plane: one record per decision, written off the request
//! path by a background task that batches inserts.
//!
//! The channel is bounded; when the store falls behind, requests wait for room rather
//! than lose records. A record holds the run, connector, method, tool, decision, reason
//! and the stamps of the plugins that decided; never a secret, a token or tool arguments.

use std::sync::Arc;

use portcullis_model::{Decision, Stamp, Verdict};
use tokio::sync::mpsc;

use crate::clock::now_ms;
use crate::store::{AuditRecord, Store};

const BATCH: usize = 512;
const QUEUE: usize = 16_384;

pub struct AuditSink {
    tx: mpsc::Sender<AuditRecord>,
}

impl AuditSink {
    /// Starts the writer task; `app::start` calls it once.
    pub fn spawn(store: Arc<dyn Store>) -> Self {
        let (tx, mut rx) = mpsc::channel::<AuditRecord>(QUEUE);
        tokio::spawn(async move {
            let mut batch = Vec::with_capacity(BATCH);
            while rx.recv_many(&mut batch, BATCH).await > 0 {
                if let Err(error) = store.append_audit(&batch).await {
                    tracing::error!(%error, records = batch.len(), "could not write audit records");
                }
                batch.clear();
            }
        });
        Self { tx }
    }

    pub async fn record(&self, record: AuditRecord) {
        if self.tx.send(record).await.is_err() {
            tracing::error!("the audit writer has stopped; a decision was not recorded");
        }
    }
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
    }
}

/// The audit record of a verdict about `method` and `tool`.
pub fn record(
    run: &str,
    connector: &str,
    method: &str,
    tool: Option<&str>,
    verdict: &Verdict<Decision>,
    extra_stamps: &[Stamp],
) -> AuditRecord {
    let (decision, reason) = match &verdict.value {
        Decision::Allow => ("allow", None),
        Decision::Deny(denial) => ("deny", Some(denial.reason.clone())),
    };
    AuditRecord {
        at_ms: now_ms(),
        run: Some(run.to_owned()),
        connector: Some(connector.to_owned()),
        method: (!method.is_empty()).then(|| method.to_owned()),
        tool: tool.map(str::to_owned),
        decision: decision.to_owned(),
        reason,
        plugins: verdict
            .plugins
            .iter()
            .chain(extra_stamps)
            .cloned()
            .collect(),
    }
}
