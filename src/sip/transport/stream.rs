//! SIP over TCP and TLS: one task per connection reads and frames messages, a writer
//! task drains the connection's queue.

use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::mpsc;

use super::framing::{next_frame, Frame, FrameLimits};
use super::{Inbound, TransportCounters};
use crate::sip::ua::{ConnId, Flow, Transport};

/// Idle connections are closed after this long (keep-alives reset it).
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(600);
/// Most TCP plus TLS connections served at once; more are closed on accept (counted).
pub const MAX_CONNECTIONS: usize = 8192;
/// Messages queued for one connection before sends to it are dropped.
pub const WRITE_QUEUE: usize = 256;

/// Serves one accepted connection until it closes.
#[allow(clippy::too_many_arguments)]
pub async fn serve<S>(
    stream: S,
    transport: Transport,
    remote: SocketAddr,
    conn: ConnId,
    tx: mpsc::Sender<Inbound>,
    counters: Arc<TransportCounters>,
    limits: FrameLimits,
) where
    S: AsyncRead + AsyncWrite + Send + Unpin + 'static,
{
    let (mut rd, mut wr) = tokio::io::split(stream);
    let (wtx, mut wrx) = mpsc::channel::<Bytes>(WRITE_QUEUE);
    let flow = Flow {
        transport,
        remote,
        conn: Some(conn),
    };
    if tx
        .send(Inbound::Opened {
            conn,
            writer: wtx.clone(),
        })
        .await
        .is_err()
    {
        return;
    }
    let writer = tokio::spawn(async move {
        while let Some(b) = wrx.recv().await {
            if wr.write_all(&b).await.is_err() {
                break;
            }
        }
        let _ = wr.shutdown().await;
    });
    let mut buf = BytesMut::with_capacity(4096);
    let cap = limits.max_header + limits.max_body + 4;
    'conn: loop {
        // Take every whole frame in the buffer.
        for _ in 0..1024 {
            match next_frame(&buf, limits) {
                Ok(Frame::Incomplete) => break,
                Ok(Frame::KeepAlive { consumed, pong }) => {
                    let _ = buf.split_to(consumed);
                    counters.keepalives.fetch_add(1, Ordering::Relaxed);
                    if pong {
                        let _ = wtx.try_send(Bytes::from_static(b"\r\n"));
                    }
                }
                Ok(Frame::Message { len }) => {
                    let bytes = buf.split_to(len).freeze();
                    if tx.send(Inbound::Message { flow, bytes }).await.is_err() {
                        break 'conn;
                    }
                }
                Err(e) => {
                    counters.framing_errors.fetch_add(1, Ordering::Relaxed);
                    tracing::info!(%remote, "closing {} connection: {e}", transport.token());
                    let head = buf.split().freeze();
                    let _ = tx
                        .send(Inbound::Unframeable {
                            flow,
                            head,
                            status: e.status(),
                        })
                        .await;
                    break 'conn;
                }
            }
        }
        if buf.len() >= cap {
            counters.oversize.fetch_add(1, Ordering::Relaxed);
            break;
        }
        buf.reserve(4096);
        match tokio::time::timeout(IDLE_TIMEOUT, rd.read_buf(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) | Err(_) => break,
            Ok(Ok(_)) => {}
        }
    }
    let _ = tx.send(Inbound::Closed { conn }).await;
    drop(wtx);
    // Let queued responses (e.g. the 400 for an unframeable message) go out.
    let _ = tokio::time::timeout(Duration::from_secs(2), writer).await;
}
