//! Group commit for call records: one dedicated thread (`voxgate-cdr`) takes call-record
//! operations from a bounded queue, applies everything queued (up to `max_batch`) in one
//! transaction, commits once (one fsync), then acknowledges each operation. Under load
//! many calls share one fsync; idle, a single operation commits as soon as it arrives.
//! Durability is unchanged: nothing is acknowledged before its batch committed.
//!
//! The queue is a bounded tokio channel: `submit` waits (async back-pressure) when it is
//! full and counts that as a queue-full event, rather than dropping a record.

use std::sync::Arc;

use tokio::sync::{mpsc, oneshot};

use super::{
    CallEnd, CallOp, CallOpOutput, CallOpResult, CallRecordId, CallStart, Store, StoreError,
    UnixMillis,
};
use crate::metrics::metrics;

type Job = (CallOp, oneshot::Sender<CallOpResult>);

/// Handle to the group-commit thread; cheap to clone. The thread ends when every handle
/// is dropped, after committing what is queued.
#[derive(Debug, Clone)]
pub struct CallRecordWriter {
    tx: mpsc::Sender<Job>,
}

impl CallRecordWriter {
    /// Starts the writer thread over `store`: queue of `queue` operations, batches of at
    /// most `max_batch`.
    pub fn spawn(store: Arc<dyn Store>, queue: usize, max_batch: usize) -> std::io::Result<Self> {
        let (tx, mut rx) = mpsc::channel::<Job>(queue.max(1));
        let max_batch = max_batch.max(1);
        std::thread::Builder::new()
            .name("voxgate-cdr".into())
            .spawn(move || {
                let mut jobs: Vec<Job> = Vec::with_capacity(max_batch);
                while let Some(first) = rx.blocking_recv() {
                    jobs.push(first);
                    while jobs.len() < max_batch {
                        match rx.try_recv() {
                            Ok(j) => jobs.push(j),
                            Err(_) => break,
                        }
                    }
                    let (ops, replies): (Vec<CallOp>, Vec<_>) = jobs.drain(..).unzip();
                    match store.apply_call_ops(&ops) {
                        Ok(results) => {
                            for (reply, r) in replies.into_iter().zip(results) {
                                let _ = reply.send(r);
                            }
                        }
                        Err(e) => {
                            metrics().store_errors.inc();
                            let msg = e.to_string();
                            tracing::error!(error = %msg, batch = ops.len(), "call-record batch failed");
                            for reply in replies {
                                let _ = reply.send(Err(StoreError::Task(msg.clone())));
                            }
                        }
                    }
                }
            })?;
        Ok(Self { tx })
    }

    /// Queues `op` and waits for its commit.
    pub async fn submit(&self, op: CallOp) -> CallOpResult {
        let (reply, rx) = oneshot::channel();
        let job = match self.tx.try_send((op, reply)) {
            Ok(()) => None,
            Err(mpsc::error::TrySendError::Full(job)) => {
                metrics().store_queue_full.inc();
                Some(job)
            }
            Err(mpsc::error::TrySendError::Closed(_)) => {
                return Err(StoreError::Task("call-record writer stopped".into()))
            }
        };
        if let Some(job) = job {
            self.tx
                .send(job)
                .await
                .map_err(|_| StoreError::Task("call-record writer stopped".into()))?;
        }
        rx.await
            .map_err(|_| StoreError::Task("call-record writer dropped the reply".into()))?
    }

    /// Records a call start; returns its id once committed.
    pub async fn start(
        &self,
        start: CallStart,
        store_number: bool,
        count_usage: bool,
    ) -> Result<CallRecordId, StoreError> {
        match self
            .submit(CallOp::Start {
                start,
                store_number,
                count_usage,
            })
            .await?
        {
            CallOpOutput::Started(id) => Ok(id),
            CallOpOutput::Done => Err(StoreError::Task("start returned no id".into())),
        }
    }

    /// Records the answer time.
    pub async fn answer(&self, id: CallRecordId, at: UnixMillis) -> Result<(), StoreError> {
        self.submit(CallOp::Answer { id, at }).await.map(|_| ())
    }

    /// Completes a record.
    pub async fn end(&self, id: CallRecordId, end: CallEnd) -> Result<(), StoreError> {
        self.submit(CallOp::End { id, end }).await.map(|_| ())
    }
}
