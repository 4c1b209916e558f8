//! A payment's outcome and the purchase request it decides go into the log in one append
//! (`write_side/follow_up.rs`): both in one transaction, the request after the payment. A
//! follow-up that cannot be appended never costs the payment's outcome its place in the log.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use carrot_domain::payment::{
    CaptureOrder, CaptureStatus, GatewayError, Payment, PaymentCommand, PaymentError,
    PaymentGateway, PaymentStatus, Receipt, TransferOrder,
};
use carrot_domain::purchase_request::{PurchaseRequest, PurchaseRequestCommand, RequestStatus};
use carrot_domain::{FixedClock, ListingId, PaymentId, Price, RequestId, Trade, UserId};
use carrot_projections::testing::{append_raw, test_database, TestDatabase};
use carrot_projections::write_side::{CommandError, Executed, WriteSide};
use chrono::{TimeZone, Utc};
use serde_json::json;

/// What the gateway answers a capture.
#[derive(Clone, Copy, PartialEq)]
enum Answer {
    Capture,
    Decline,
    /// Charges on the first call; refuses every later one "before charging" (a gateway
    /// behind a proxy that answers 502 once its upstream is gone).
    ChargeThenRefuse,
}

/// Answers every capture as told; counts the calls.
struct Gateway {
    answer: Answer,
    captures: AtomicUsize,
}

#[async_trait::async_trait]
impl PaymentGateway for Gateway {
    async fn capture(&self, order: CaptureOrder) -> Result<Receipt, GatewayError> {
        let earlier = self.captures.fetch_add(1, Ordering::SeqCst);
        match self.answer {
            Answer::Decline => Err(GatewayError::Declined("insufficient funds".into())),
            Answer::ChargeThenRefuse if earlier > 0 => {
                Err(GatewayError::Unavailable("bad gateway".into()))
            }
            _ => Ok(Receipt {
                reference: order.idempotency_key,
            }),
        }
    }
    async fn refund(&self, _: TransferOrder) -> Result<Receipt, GatewayError> {
        Err(GatewayError::Unavailable("not in this test".into()))
    }
    async fn payout(&self, _: TransferOrder) -> Result<Receipt, GatewayError> {
        Err(GatewayError::Unavailable("not in this test".into()))
    }
    async fn resolve_capture(&self, _: &str) -> Result<CaptureStatus, GatewayError> {
        Err(GatewayError::Unavailable("not in this test".into()))
    }
}

struct Case {
    db: TestDatabase,
    gateway: Arc<Gateway>,
    write: WriteSide,
    trade: Trade,
    payment_id: PaymentId,
}

/// A payment started for a fresh trade, its capture not yet sent.
async fn started(answer: Answer) -> Case {
    let db = test_database().await;
    let gateway = Arc::new(Gateway {
        answer,
        captures: AtomicUsize::new(0),
    });
    let clock = Arc::new(FixedClock::at(
        Utc.with_ymd_and_hms(2026, 5, 1, 12, 0, 0).unwrap(),
    ));
    let write = WriteSide::new(db.pool.clone(), clock, gateway.clone());
    let trade = Trade {
        request_id: RequestId::new(),
        listing_id: ListingId::new(),
        buyer_id: UserId::new(),
        seller_id: UserId::new(),
    };
    let payment_id = PaymentId::new();
    let start = PaymentCommand::StartCapture {
        payment_id,
        trade,
        amount: Price::parse(30_000).unwrap().money(),
    };
    write
        .execute_reporting::<Payment>(&payment_id.to_string(), start, Default::default(), true)
        .await
        .unwrap();
    Case {
        db,
        gateway,
        write,
        trade,
        payment_id,
    }
}

/// What `capture_then_request` returns.
type Decided =
    Result<(Executed<Payment>, Option<Executed<PurchaseRequest>>), CommandError<PaymentError>>;

impl Case {
    /// Sends the capture, the flow's own first call, with `then` deciding the request.
    async fn decide(
        &self,
        then: impl Fn(&Payment) -> Option<PurchaseRequestCommand> + Send + Sync + 'static,
    ) -> Decided {
        let capture = PaymentCommand::CapturePayment {
            payment_id: self.payment_id,
            first_attempt: true,
        };
        self.write
            .capture_then_request(
                &self.payment_id.to_string(),
                capture,
                Default::default(),
                &self.trade.request_id.to_string(),
                then,
            )
            .await
    }

    async fn capture(
        &self,
        then: impl Fn(&Payment) -> Option<PurchaseRequestCommand> + Send + Sync + 'static,
    ) -> (PaymentStatus, Option<(RequestStatus, String)>) {
        let (paid, request) = self.decide(then).await.unwrap();
        let request = request.map(|r| (r.aggregate.status(), r.token.to_string()));
        (paid.aggregate.status(), request)
    }

    /// Something holds the request's id: the joint append conflicts.
    async fn take_request_id(&self) {
        let mut conn = self.db.pool.acquire().await.unwrap();
        let taken = self.trade.request_id.to_string();
        append_raw(
            &mut conn,
            "purchase_request",
            &taken,
            1,
            json!({"Other": {}}),
        )
        .await
        .unwrap();
    }

    /// Every event of the payment and the request: type, transaction, place (log order).
    async fn log(&self) -> Vec<(String, String, String)> {
        sqlx::query_as(
            "SELECT event_type, transaction_id::text,
                    transaction_id::text || '.' || global_position
               FROM events WHERE aggregate_id IN ($1, $2)
              ORDER BY transaction_id, global_position",
        )
        .bind(self.payment_id.to_string())
        .bind(self.trade.request_id.to_string())
        .fetch_all(&self.db.pool)
        .await
        .unwrap()
    }
}

#[tokio::test]
async fn a_captured_payment_and_its_request_are_appended_in_one_transaction() {
    let case = started(Answer::Capture).await;
    let (paid, request) = case.capture(PurchaseRequestCommand::after_payment).await;
    assert_eq!(paid, PaymentStatus::Captured);
    let (status, token) = request.expect("the request was appended with the outcome");
    assert_eq!(status, RequestStatus::Requested);

    let log = case.log().await;
    let types: Vec<&str> = log.iter().map(|(t, _, _)| t.as_str()).collect();
    assert_eq!(
        types,
        [
            "PaymentCaptureStarted",
            "PaymentCaptured",
            "PurchaseRequested"
        ]
    );
    assert_eq!(
        log[1].1, log[2].1,
        "the outcome and the request: one transaction"
    );
    assert_ne!(
        log[0].1, log[1].1,
        "the start was committed before the call"
    );
    assert_eq!(
        token, log[2].2,
        "the request's token is its own event's place"
    );
}

#[tokio::test]
async fn a_declined_payment_and_its_failed_request_are_appended_together() {
    let case = started(Answer::Decline).await;
    let (paid, request) = case.capture(PurchaseRequestCommand::after_payment).await;
    assert_eq!(paid, PaymentStatus::Failed);
    assert_eq!(request.map(|(s, _)| s), Some(RequestStatus::PaymentFailed));
    let log = case.log().await;
    assert_eq!(log.len(), 3);
    assert_eq!(log[1].1, log[2].1);
}

#[tokio::test]
async fn an_outcome_that_decides_no_request_is_appended_alone() {
    let case = started(Answer::Capture).await;
    let (paid, request) = case.capture(|_| None).await;
    assert_eq!(paid, PaymentStatus::Captured);
    assert!(request.is_none());
    let types: Vec<String> = case.log().await.into_iter().map(|(t, _, _)| t).collect();
    assert_eq!(types, ["PaymentCaptureStarted", "PaymentCaptured"]);
}

#[tokio::test]
async fn a_request_id_already_taken_costs_the_outcome_nothing() {
    let case = started(Answer::Capture).await;
    case.take_request_id().await;
    let (paid, request) = case.capture(PurchaseRequestCommand::after_payment).await;
    assert_eq!(
        paid,
        PaymentStatus::Captured,
        "the outcome is recorded alone"
    );
    assert!(request.is_none(), "the caller records the request itself");
    let types: Vec<String> = case.log().await.into_iter().map(|(t, _, _)| t).collect();
    assert_eq!(types, ["PaymentCaptureStarted", "Other", "PaymentCaptured"]);
    // The second attempt asked the gateway again, under the same key (it never charges twice).
    assert_eq!(case.gateway.captures.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn a_refusal_after_the_joint_append_lost_its_race_is_no_proof_that_nothing_moved() {
    let case = started(Answer::ChargeThenRefuse).await;
    case.take_request_id().await;
    let decided = case.decide(PurchaseRequestCommand::after_payment).await;
    // The first call charged; the second, decided again after the conflict, was refused.
    // That refusal says nothing of the first call: recorded as aborted, the buyer's money
    // would be held with no request and the slot freed. Nothing is recorded; the
    // reconciler asks the gateway what became of the key.
    assert!(decided.is_err(), "the outcome is left to the reconciler");
    assert_eq!(case.gateway.captures.load(Ordering::SeqCst), 2);
    let types: Vec<String> = case.log().await.into_iter().map(|(t, _, _)| t).collect();
    assert_eq!(types, ["PaymentCaptureStarted", "Other"]);
}
