//! Beyond one PostgreSQL (issue 21), against real clusters the tests start themselves (a
//! primary, and a standby made from it with `pg_basebackup`, as the `postgres` user):
//!
//! - reads from a replica, with read-your-writes through the consistency token, and the
//!   replica bypassed while it is too far behind (`replica_reads.rs`);
//! - a primary killed under a trade load, its synchronous standby promoted and put behind
//!   the same address: nothing acknowledged is lost, and the service carries on by itself
//!   (`failover.rs`; `CARROT_FAULT_SECONDS` lengthens the load, as for the fault suite);
//! - the log streamed out by logical decoding, in commit order, each event once
//!   (`logical.rs`).

mod common;
#[path = "replication/failover.rs"]
mod failover;
#[path = "replication/logical.rs"]
mod logical;
#[path = "replication/pair.rs"]
mod pair;
#[path = "replication/replica_reads.rs"]
mod replica_reads;
