//! The payment's commands and a scripted gateway's answers as strategies, and its invariants.

use std::collections::VecDeque;
use std::time::Duration;

use async_trait::async_trait;
use carrot_domain::payment::{
    CaptureOrder, CaptureStatus, GatewayError, Payment, PaymentCommand, PaymentEvent,
    PaymentGateway, PaymentStatus, Receipt, TransferOrder,
};
use carrot_domain::Money;

use super::*;

/// A call the gateway received: `(operation, idempotency key, (party, amount) of a call
/// that moves money, succeeded)`. A resolve moves none, so names neither.
type Call = (&'static str, String, Option<(UserId, Money)>, bool);

/// What the gateway answers to a capture, refund or payout: a receipt, or why not.
type Reply = Result<Receipt, GatewayError>;

/// What the gateway answers when asked what became of a capture.
type Resolution = Result<CaptureStatus, GatewayError>;

/// A gateway answering from two generated scripts, one shared by the operations that move
/// money (a receipt once it runs out), one for the resolves (void once it runs out),
/// remembering each call and whether it succeeded.
pub(crate) struct ScriptedGateway {
    pub(crate) script: Mutex<VecDeque<Reply>>,
    pub(crate) resolutions: Mutex<VecDeque<Resolution>>,
    pub(crate) calls: Mutex<Vec<Call>>,
}

impl ScriptedGateway {
    fn call(&self, op: &'static str, key: String, party: UserId, amount: Money) -> Reply {
        let reply = self.script.lock().unwrap().pop_front();
        let reply = reply.unwrap_or_else(|| Ok(receipt()));
        let call = (op, key, Some((party, amount)), reply.is_ok());
        self.calls.lock().unwrap().push(call);
        reply
    }
}

#[async_trait]
impl PaymentGateway for ScriptedGateway {
    async fn capture(&self, o: CaptureOrder) -> Reply {
        self.call("capture", o.idempotency_key, o.buyer_id, o.amount)
    }

    async fn refund(&self, o: TransferOrder) -> Reply {
        self.call("refund", o.idempotency_key, o.recipient, o.amount)
    }

    async fn payout(&self, o: TransferOrder) -> Reply {
        self.call("payout", o.idempotency_key, o.recipient, o.amount)
    }

    async fn resolve_capture(&self, key: &str) -> Resolution {
        let resolution = self.resolutions.lock().unwrap().pop_front();
        let resolution = resolution.unwrap_or(Ok(CaptureStatus::Voided));
        let call = ("resolve", key.to_owned(), None, resolution.is_ok());
        self.calls.lock().unwrap().push(call);
        resolution
    }
}

fn receipt() -> Receipt {
    Receipt {
        reference: "gw-receipt".into(),
    }
}

/// The gateway's failures to answer at all: down, silent, or its breaker open.
fn unanswered() -> impl Strategy<Value = GatewayError> {
    prop_oneof![
        1 => Just(GatewayError::Unavailable("down".into())),
        2 => Just(GatewayError::Timeout),
        1 => select(vec![0, 1, 30]).prop_map(|secs| GatewayError::CircuitOpen {
            retry_after: Duration::from_secs(secs),
        }),
    ]
}

pub(crate) fn reply() -> impl Strategy<Value = Reply> {
    prop_oneof![
        4 => Just(Ok(receipt())),
        1 => Just(Err(GatewayError::Declined("insufficient funds".into()))),
        4 => unanswered().prop_map(Err),
    ]
}

pub(crate) fn resolution() -> impl Strategy<Value = Resolution> {
    prop_oneof![
        2 => Just(Ok(CaptureStatus::Captured(receipt()))),
        1 => Just(Ok(CaptureStatus::Declined("insufficient funds".into()))),
        1 => Just(Ok(CaptureStatus::Voided)),
        2 => unanswered().prop_map(Err),
    ]
}

pub(crate) fn payment_command() -> impl Strategy<Value = PaymentCommand> {
    let start = (
        select(vec![PAYMENT, PAYMENT, PAYMENT, OTHER_PAYMENT]),
        select(vec![10_000, 10_000, 15_000]),
    )
        .prop_map(|(payment_id, krw)| PaymentCommand::StartCapture {
            payment_id,
            trade: trade_bought_by(BUYER_A),
            amount: Money::krw(krw),
        });
    let capture = (
        select(vec![PAYMENT, PAYMENT, PAYMENT, OTHER_PAYMENT]),
        any::<bool>(),
    )
        .prop_map(
            |(payment_id, first_attempt)| PaymentCommand::CapturePayment {
                payment_id,
                first_attempt,
            },
        );
    prop_oneof![
        2 => start,
        3 => capture,
        2 => Just(PaymentCommand::RefundPayment),
        2 => Just(PaymentCommand::PayOutPayment),
        2 => Just(PaymentCommand::ReconcileCapture),
    ]
}

/// What a payment's run has seen so far, beyond its state.
#[derive(Default)]
pub(crate) struct Ledger {
    /// The id of the recorded payment (the first event's).
    id: Option<PaymentId>,
    /// Gateway calls already checked.
    calls_seen: usize,
    /// Successful refund or payout calls.
    money_moves: usize,
    /// Captures recorded.
    captures: usize,
}

impl Ledger {
    pub(crate) fn check(
        &mut self,
        step: Step<'_, Payment>,
        gateway: &ScriptedGateway,
    ) -> Result<(), TestCaseError> {
        use PaymentStatus::*;
        let (before, after) = (step.before.status(), step.after.status());
        if matches!(before, Refunded | PaidOut) {
            prop_assert_eq!(after, before, "refunded or paid out is final");
        }
        if before != None {
            // The gateway knows the payment by its id: the order recorded under it, the
            // amount and the trade, must never change, captured or not.
            prop_assert_eq!(step.after.amount(), step.before.amount(), "amount changed");
            prop_assert_eq!(step.after.trade(), step.before.trade(), "trade changed");
        }
        if after != before {
            // Nothing is decided before the start is recorded, and only the first call's
            // refusal may abort (it proves nothing moved).
            let allowed: &[PaymentStatus] = match after {
                Started => &[None, Aborted],
                Captured | Failed => &[Started, Unknown],
                Unknown => &[Started],
                Aborted => &[Started],
                Refunded | PaidOut => &[Captured],
                None => &[],
            };
            prop_assert!(allowed.contains(&before), "{:?} -> {:?}", before, after);
        }
        for event in step.events {
            if let PaymentEvent::PaymentCaptured { .. } = event {
                self.captures += 1;
            }
            if let PaymentEvent::PaymentCaptureStarted { payment_id, .. } = event {
                self.id.get_or_insert(*payment_id);
            }
        }
        prop_assert!(self.captures <= 1, "captured twice");
        self.check_calls(&step, gateway)
    }

    fn check_calls(
        &mut self,
        step: &Step<'_, Payment>,
        gateway: &ScriptedGateway,
    ) -> Result<(), TestCaseError> {
        let calls = gateway.calls.lock().unwrap().clone();
        let new = &calls[self.calls_seen..];
        self.calls_seen = calls.len();
        prop_assert!(new.len() <= 1, "one command, several calls: {:?}", new);
        if *step.command == PaymentCommand::ReconcileCapture {
            self.check_reconcile(step, new)?;
        }
        let Some((op, key, order, succeeded)) = new.first() else {
            return Ok(());
        };
        let trade = step.before.trade();
        match (step.command, *op) {
            (
                PaymentCommand::CapturePayment {
                    payment_id,
                    first_attempt,
                },
                "capture",
            ) => {
                prop_assert_eq!(key, &format!("capture:{payment_id}"));
                // Only a recorded start is sent, always the order it recorded.
                let before = step.before.status();
                prop_assert!(
                    matches!(before, PaymentStatus::Started | PaymentStatus::Unknown),
                    "capture called when {:?}",
                    before
                );
                let expected = (step.before.trade().buyer_id, step.before.amount());
                prop_assert_eq!(*order, Some(expected));
                if step.after.status() == PaymentStatus::Aborted {
                    prop_assert!(
                        *first_attempt && before == PaymentStatus::Started && !*succeeded,
                        "aborted on a call that proves nothing"
                    );
                }
            }
            (PaymentCommand::RefundPayment, "refund")
            | (PaymentCommand::PayOutPayment, "payout") => {
                let id = self.id.unwrap_or_default();
                prop_assert_eq!(key, &format!("{op}:{id}"));
                let recipient = if *op == "refund" {
                    trade.buyer_id
                } else {
                    trade.seller_id
                };
                prop_assert_eq!(*order, Some((recipient, step.before.amount())));
                prop_assert_eq!(step.before.status(), PaymentStatus::Captured);
                if *succeeded {
                    self.money_moves += 1;
                    prop_assert_eq!(step.events.len(), 1, "money moved unrecorded");
                } else if step.refused {
                    prop_assert!(step.events.is_empty());
                } else {
                    // A decline is final for its key: recorded, the money still held.
                    prop_assert!(
                        matches!(step.events, [PaymentEvent::PaymentTransferDeclined { .. }]),
                        "a failed transfer was neither refused nor recorded declined"
                    );
                    prop_assert_eq!(step.after.status(), PaymentStatus::Captured);
                }
            }
            (PaymentCommand::ReconcileCapture, "resolve") => {}
            (command, op) => prop_assert!(false, "{:?} called {}", command, op),
        }
        // Refunded and paid out exclude each other: money leaves escrow once, whichever way.
        prop_assert!(self.money_moves <= 1, "money moved twice");
        Ok(())
    }

    /// A reconcile never charges: it only asks, by the capture's key, about an unknown
    /// capture, and records what the gateway says, or nothing when it cannot say.
    fn check_reconcile(
        &self,
        step: &Step<'_, Payment>,
        calls: &[Call],
    ) -> Result<(), TestCaseError> {
        use PaymentStatus::*;
        let before = step.before.status();
        prop_assert!(
            calls.iter().all(|(op, ..)| *op == "resolve"),
            "a reconcile charged or moved money: {:?}",
            calls
        );
        match before {
            None => prop_assert!(step.refused, "reconciled a payment never attempted"),
            Started | Unknown => {
                prop_assert_eq!(
                    calls.len(),
                    1,
                    "an unknown capture reconciled without asking"
                );
                let (_, key, _, answered) = &calls[0];
                prop_assert_eq!(key, &format!("capture:{}", step.before.id()));
                prop_assert_eq!(*answered, !step.refused);
                prop_assert_eq!(step.events.len(), usize::from(*answered));
            }
            _ => {
                prop_assert!(
                    calls.is_empty(),
                    "asked the gateway about a settled payment"
                );
                prop_assert!(
                    !step.refused && step.events.is_empty(),
                    "settled, yet {:?}",
                    before
                );
            }
        }
        Ok(())
    }
}
