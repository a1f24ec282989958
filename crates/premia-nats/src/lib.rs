//! premia-nats: the JetStream edge.
//!
//! - [`connect`]: a client from the settings NATS users expect (URL, user/password, token, NKey
//!   seed, `.creds` file, TLS with a custom CA).
//! - [`ensure_stream`] / [`reset_consumer`]: the file-backed events stream (created when
//!   missing) and premia's durable pull consumer, recreated at each start from the ledger's cursor.
//! - [`serve`]: receive a batch, offer every message to the ledger, commit (the stream sequence
//!   is written in the same sled batch), and only then ack the batch; rejections are published
//!   to `premia.rejected.<reason>`, the accrual feed to `premia.accruals.<manager>`. Batches are
//!   pipelined (the next is folded while the last is flushed), and NATS restarts are ridden out.
//! - [`publish_lines`]: JSON Lines to the stream, pipelined, with `Nats-Msg-Id` from each event's
//!   source and id.

mod announce;
mod connect;
mod feed;
mod gather;
mod publish;
mod receive;
mod serve;
mod streams;

pub use connect::{connect, NatsError, NatsSettings};
pub use feed::{feed_schema, record_feed, FeedMessage};
pub use publish::{publish_lines, PublishReport, RETRY_FOR};
pub use serve::{serve, Readers, ServeOptions};
pub use streams::{
    cursor_name, delete_consumer, ensure_feed_stream, ensure_stream, message_id, reset_consumer, subject_prefix,
    subject_token, StreamSettings, FEED_STREAM, FEED_SUBJECT_PREFIX,
};
// The serving loop shares these with its readers (the HTTP API); they live in premia-ledger and
// are named here too, where its users have always found them.
pub use premia_ledger::serving::{
    Histogram, Query, ReasonCounts, ServeReport, ServeTimings, BATCH_SIZE_BOUNDS, COMMIT_SECONDS_BOUNDS,
};
