//! The write side, shared by the HTTP handlers and the settlement saga's dispatcher: one
//! cqrs-es framework per aggregate over Carrot's event store (`event_store.rs`), and command
//! execution that retries a lost optimistic-concurrency race inside the server and answers
//! with the consistency token of the aggregate's last event; and the purchase-request slot a
//! buyer claims before any money moves (`slots.rs`).

pub mod event_store;
pub mod follow_up;
pub mod scope;
pub mod slots;

use std::any::Any;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use carrot_domain::account::{Account, AccountServices};
use carrot_domain::dead_letter::{DeadLetter, DeadLetterServices};
use carrot_domain::listing::{Listing, ListingServices};
use carrot_domain::payment::{
    Payment, PaymentCommand, PaymentError, PaymentGateway, PaymentServices,
};
use carrot_domain::purchase_request::{
    Deadlines, PurchaseRequest, PurchaseRequestCommand, PurchaseRequestServices,
};
use carrot_domain::schema::StateVersion;
use carrot_domain::Clock;
use cqrs_es::{Aggregate, AggregateError, CqrsFramework, EventStore};

use crate::log::notify::Notifier;
use crate::log::Checkpoint;
use crate::personal::SealingKeys;
use crate::postgres::Db;
use event_store::{with_follow_up, Store};
use follow_up::{Follow, Followed};
use scope::Receipt;

/// How many times a command is tried when another writer got to the aggregate first.
const ATTEMPTS: u32 = 8;

/// A failure that is ours, not the caller's.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Why a command did not happen.
#[derive(Debug, thiserror::Error)]
pub enum CommandError<E: std::error::Error + 'static> {
    /// The aggregate refused it (a business rule).
    #[error(transparent)]
    Refused(E),
    /// Other writers kept winning the race for the aggregate, retries included.
    #[error("too many concurrent changes to the same aggregate")]
    Contended,
    /// The database or the stored events failed us.
    #[error("command failed: {0}")]
    Failed(BoxError),
}

/// What an executed command left.
#[derive(Debug)]
pub struct Executed<A> {
    /// The checkpoint of the aggregate's last event (the consistency token).
    pub token: Checkpoint,
    /// The aggregate as the command left it.
    pub aggregate: A,
    /// Whether the command appended events (false: it had been done already).
    pub appended: bool,
}

/// A cqrs-es framework over Carrot's event store.
pub type Framework<A> = CqrsFramework<A, Store<A>>;

/// The aggregates' command frameworks over one pool.
pub struct WriteSide {
    pool: Db,
    listings: Framework<Listing>,
    requests: Framework<PurchaseRequest>,
    payments: Framework<Payment>,
    accounts: Framework<Account>,
    dead_letters: Framework<DeadLetter>,
    keys: Arc<SealingKeys>,
    request_services: PurchaseRequestServices,
}

/// An aggregate the write side can route a command to.
pub trait Routed: Aggregate<Command: Clone + std::fmt::Debug> + StateVersion + 'static {
    /// Its framework.
    fn framework(write: &WriteSide) -> &Framework<Self>;
    /// The command to decide again after a conflict (the domain's rule, when it has one).
    fn again(command: &Self::Command) -> Self::Command {
        command.clone()
    }
}

impl Routed for Listing {
    fn framework(write: &WriteSide) -> &Framework<Self> {
        &write.listings
    }
}

impl Routed for PurchaseRequest {
    fn framework(write: &WriteSide) -> &Framework<Self> {
        &write.requests
    }
}

impl Routed for Payment {
    fn framework(write: &WriteSide) -> &Framework<Self> {
        &write.payments
    }
    fn again(command: &PaymentCommand) -> PaymentCommand {
        command.again()
    }
}

impl Routed for Account {
    fn framework(write: &WriteSide) -> &Framework<Self> {
        &write.accounts
    }
}

impl Routed for DeadLetter {
    fn framework(write: &WriteSide) -> &Framework<Self> {
        &write.dead_letters
    }
}

impl WriteSide {
    /// The frameworks over `pool`, with the default deadlines; `gateway` is used as given
    /// (wrap it first).
    pub fn new(pool: Db, clock: Arc<dyn Clock>, gateway: Arc<dyn PaymentGateway>) -> Self {
        Self::with_deadlines(pool, clock, gateway, Deadlines::default())
    }

    /// The frameworks over `pool`, purchase requests keeping `deadlines`.
    pub fn with_deadlines(
        pool: Db,
        clock: Arc<dyn Clock>,
        gateway: Arc<dyn PaymentGateway>,
        deadlines: Deadlines,
    ) -> Self {
        let notifier = Notifier::start(&pool);
        let keys = Arc::new(SealingKeys::default());
        let request_services = PurchaseRequestServices {
            clock: clock.clone(),
            deadlines,
        };
        WriteSide {
            listings: CqrsFramework::new(
                Store::new(pool.clone(), notifier.clone(), keys.clone()),
                vec![],
                ListingServices {
                    clock: clock.clone(),
                },
            ),
            requests: CqrsFramework::new(
                Store::new(pool.clone(), notifier.clone(), keys.clone()),
                vec![],
                request_services.clone(),
            ),
            payments: CqrsFramework::new(
                Store::new(pool.clone(), notifier.clone(), keys.clone()),
                vec![],
                PaymentServices {
                    gateway,
                    clock: clock.clone(),
                },
            ),
            accounts: CqrsFramework::new(
                Store::new(pool.clone(), notifier.clone(), keys.clone()),
                vec![],
                AccountServices {
                    clock: clock.clone(),
                },
            ),
            dead_letters: CqrsFramework::new(
                Store::new(pool.clone(), notifier.clone(), keys.clone()),
                vec![],
                DeadLetterServices { clock },
            ),
            keys,
            pool,
            request_services,
        }
    }

    /// Forgets the key this process seals `owner`'s text with (their account is closing).
    pub fn forget_sealing_key(&self, owner: uuid::Uuid) {
        self.keys.forget(owner);
    }

    /// What purchase requests decide with (their clock and deadlines): for checking a
    /// command before touching another aggregate for it.
    pub fn request_services(&self) -> &PurchaseRequestServices {
        &self.request_services
    }

    /// Executes `command` on aggregate `id`; returns the checkpoint of the aggregate's last
    /// event (the consistency token), which is an earlier one when the command was a no-op.
    pub async fn execute<A>(
        &self,
        id: &str,
        command: A::Command,
        metadata: HashMap<String, String>,
    ) -> Result<Checkpoint, CommandError<A::Error>>
    where
        A: Routed,
        A::Error: 'static,
    {
        self.execute_for::<A>(id, command, metadata)
            .await
            .map(|(token, _)| token)
    }

    /// Executes `command` and also returns the aggregate as the command left it.
    pub async fn execute_for<A>(
        &self,
        id: &str,
        command: A::Command,
        metadata: HashMap<String, String>,
    ) -> Result<(Checkpoint, A), CommandError<A::Error>>
    where
        A: Routed,
        A::Error: 'static,
    {
        self.run::<A>(id, command, metadata, false)
            .await
            .map(|done| (done.token, done.aggregate))
    }

    /// Executes a command that creates its aggregate under an id fresh from this request:
    /// no load first (if the id exists after all, a retry under an idempotency key, the
    /// append conflicts and the command runs again the usual way).
    pub async fn create<A>(
        &self,
        id: &str,
        command: A::Command,
        metadata: HashMap<String, String>,
    ) -> Result<(Checkpoint, A), CommandError<A::Error>>
    where
        A: Routed,
        A::Error: 'static,
    {
        self.run::<A>(id, command, metadata, true)
            .await
            .map(|done| (done.token, done.aggregate))
    }

    /// Executes `command` (`fresh`: under an id fresh from this request, as [`Self::create`])
    /// and also tells whether it appended anything.
    pub async fn execute_reporting<A>(
        &self,
        id: &str,
        command: A::Command,
        metadata: HashMap<String, String>,
        fresh: bool,
    ) -> Result<Executed<A>, CommandError<A::Error>>
    where
        A: Routed,
        A::Error: 'static,
    {
        self.run::<A>(id, command, metadata, fresh).await
    }

    /// Executes `capture` on the payment `id` and, in the same append as its outcome,
    /// creates the purchase request `request_id` with the command `then` decides from the
    /// payment as the capture left it (`follow_up.rs`): both or neither are in the log. The
    /// request is `None` when `then` decided nothing, the request refused the command, or
    /// the first append conflicted; the caller then records it the usual way.
    pub async fn capture_then_request(
        &self,
        id: &str,
        capture: PaymentCommand,
        metadata: HashMap<String, String>,
        request_id: &str,
        then: impl Fn(&Payment) -> Option<PurchaseRequestCommand> + Send + Sync + 'static,
    ) -> Result<(Executed<Payment>, Option<Executed<PurchaseRequest>>), CommandError<PaymentError>>
    {
        let services = self.request_services.clone();
        let request_id = request_id.to_owned();
        let follow: Follow = Arc::new(move |payment: &dyn Any| {
            let command = payment.downcast_ref::<Payment>().and_then(&then);
            let (services, request_id) = (services.clone(), request_id.clone());
            Box::pin(async move {
                let Some(command) = command else {
                    return Ok(None);
                };
                follow_up::create::<PurchaseRequest>(request_id, command, &services).await
            })
        });
        let (paid, followed) = self
            .run_following::<Payment>(id, capture, metadata, false, Some(follow))
            .await?;
        let request = match followed {
            Some(followed) => {
                let aggregate = followed
                    .aggregate
                    .downcast::<PurchaseRequest>()
                    .map_err(|_| CommandError::Failed("a follow-up of another aggregate".into()))?;
                Some(Executed {
                    token: followed.token,
                    aggregate: *aggregate,
                    appended: true,
                })
            }
            None => None,
        };
        Ok((paid, request))
    }

    async fn run<A>(
        &self,
        id: &str,
        command: A::Command,
        metadata: HashMap<String, String>,
        fresh: bool,
    ) -> Result<Executed<A>, CommandError<A::Error>>
    where
        A: Routed,
        A::Error: 'static,
    {
        self.run_following::<A>(id, command, metadata, fresh, None)
            .await
            .map(|(done, _)| done)
    }

    /// Runs a command, its first attempt's commit also appending what `follow` decides;
    /// counts its outcome.
    async fn run_following<A>(
        &self,
        id: &str,
        command: A::Command,
        metadata: HashMap<String, String>,
        fresh: bool,
        follow: Option<Follow>,
    ) -> Outcome<A>
    where
        A: Routed,
        A::Error: 'static,
    {
        let name = crate::metrics::variant_name(&command);
        let outcome = async {
            let (mut attempt, mut command) = (0, command);
            loop {
                attempt += 1;
                if attempt > 1 {
                    command = A::again(&command);
                }
                // Only the first attempt carries the follow-up (`follow_up.rs`).
                let (outcome, receipt, followed) = with_follow_up(
                    fresh && attempt == 1,
                    follow.clone().filter(|_| attempt == 1),
                    A::framework(self).execute_with_metadata(id, command.clone(), metadata.clone()),
                )
                .await;
                match outcome {
                    Ok(()) => return Ok((executed(receipt)?, followed)),
                    // Assumed fresh, but the id exists: decide again on what is there, at once.
                    Err(AggregateError::AggregateConflict) if fresh && attempt == 1 => {}
                    Err(AggregateError::AggregateConflict) if attempt < ATTEMPTS => {
                        // Another command appended first: reload and decide again, after a
                        // jittered pause so the racers spread out.
                        let ceiling = 1u64 << attempt.min(6);
                        let pause = rand::random::<u64>() % (ceiling + 1);
                        tokio::time::sleep(Duration::from_millis(pause)).await;
                    }
                    Err(AggregateError::AggregateConflict) => return Err(CommandError::Contended),
                    Err(AggregateError::UserError(e)) => return Err(CommandError::Refused(e)),
                    Err(AggregateError::DatabaseConnectionError(e))
                    | Err(AggregateError::DeserializationError(e))
                    | Err(AggregateError::UnexpectedError(e)) => {
                        return Err(CommandError::Failed(e))
                    }
                }
            }
        }
        .await;
        count_outcome::<A>(&name, &outcome);
        outcome
    }

    /// The current state of one aggregate, from its snapshot and the events after it. For
    /// decisions on the write side only: reads go to views.
    pub async fn load<A: Aggregate + StateVersion + 'static>(
        &self,
        id: &str,
    ) -> Result<A, BoxError> {
        match Store::<A>::new(self.pool.clone(), Notifier::silent(), Arc::default())
            .load_aggregate(id)
            .await
        {
            Ok(mut context) => Ok(std::mem::take(cqrs_es::AggregateContext::aggregate(
                &mut context,
            ))),
            Err(AggregateError::DatabaseConnectionError(e))
            | Err(AggregateError::DeserializationError(e))
            | Err(AggregateError::UnexpectedError(e)) => Err(e),
            Err(other) => Err(other.to_string().into()),
        }
    }
}

/// What a command's run ends in: the command's result and its follow-up's, or why not.
type Outcome<A> = Result<(Executed<A>, Option<Followed>), CommandError<<A as Aggregate>::Error>>;

/// Counts a command's outcome, and its follow-up's, in `carrot_commands_total`.
fn count_outcome<A: Routed>(name: &str, outcome: &Outcome<A>)
where
    A::Error: 'static,
{
    let (label, code) = match outcome {
        Ok(_) => ("ok", String::new()),
        Err(CommandError::Refused(e)) => ("refused", crate::metrics::variant_name(e)),
        Err(CommandError::Contended) => ("contended", String::new()),
        Err(CommandError::Failed(_)) => ("failed", String::new()),
    };
    let metrics = crate::metrics::global();
    metrics.inc(
        "carrot_commands_total",
        &[
            ("aggregate", A::TYPE),
            ("command", name),
            ("outcome", label),
            ("refusal", &code),
        ],
    );
    if let Ok((_, Some(followed))) = outcome {
        metrics.inc(
            "carrot_commands_total",
            &[
                ("aggregate", followed.aggregate_type),
                ("command", followed.command.as_str()),
                ("outcome", "ok"),
                ("refusal", ""),
            ],
        );
    }
}

/// A command's result from the receipt its commit left.
fn executed<A: Routed>(receipt: Option<Receipt>) -> Result<Executed<A>, CommandError<A::Error>>
where
    A::Error: 'static,
{
    let receipt =
        receipt.ok_or_else(|| CommandError::Failed("a command left no receipt".into()))?;
    let aggregate = receipt
        .aggregate
        .downcast::<A>()
        .map_err(|_| CommandError::Failed("a receipt of another aggregate".into()))?;
    // A no-op on an aggregate with no events: any view satisfies it.
    Ok(Executed {
        token: receipt.token.unwrap_or(Checkpoint::ORIGIN),
        aggregate: *aggregate,
        appended: receipt.appended,
    })
}
