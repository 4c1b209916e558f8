//! The payment gateway over HTTP: the protocol `carrot payment-sim` serves, and the one an
//! external gateway's adapter would speak.
//!
//! `POST /captures`, `/refunds`, `/payouts` with the idempotency key; `POST /captures/resolve`
//! to resolve a capture whose answer was lost. 201 is done, 402 declined, 5xx failed with
//! nothing moved. A failure to connect also means nothing moved; any other transport
//! failure after the request may have left is an unknown outcome (`Timeout`), resolved
//! later with the same key.

use std::time::Duration;

use async_trait::async_trait;
use carrot_domain::payment::{
    CaptureOrder, CaptureStatus, GatewayError, PaymentGateway, Receipt, TransferOrder,
};
use reqwest::{Client, StatusCode};
use serde::{Deserialize, Serialize};
use serde_json::json;

/// A gateway reached over HTTP.
#[derive(Debug, Clone)]
pub struct HttpGateway {
    client: Client,
    base: String,
}

/// A money movement as the protocol carries it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Transfer {
    /// The same for every attempt at this operation.
    pub idempotency_key: String,
    /// Who pays (captures) or receives (refunds, payouts).
    pub party: uuid::Uuid,
    /// KRW.
    pub amount: i64,
}

/// The answer to a money movement.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Answer {
    /// The gateway's reference, when it moved money.
    #[serde(default)]
    pub reference: Option<String>,
    /// Why not, when it declined.
    #[serde(default)]
    pub reason: Option<String>,
    /// For `GET /captures/{key}`: `captured`, `declined` or `voided`.
    #[serde(default)]
    pub status: Option<String>,
}

impl HttpGateway {
    /// A client of the gateway at `base` (`http://payment-sim:9090`). The caller adds the
    /// time limit (`WithTimeout`); this client's own is a backstop.
    pub fn new(base: &str) -> Result<Self, reqwest::Error> {
        Ok(HttpGateway {
            client: Client::builder()
                .connect_timeout(Duration::from_secs(2))
                .timeout(Duration::from_secs(60))
                .build()?,
            base: base.trim_end_matches('/').to_owned(),
        })
    }

    async fn send(
        &self,
        request: reqwest::RequestBuilder,
    ) -> Result<(StatusCode, Answer), GatewayError> {
        let response = request.send().await.map_err(|e| {
            if e.is_connect() {
                GatewayError::Unavailable(format!("cannot reach the payment gateway: {e}"))
            } else {
                GatewayError::Timeout
            }
        })?;
        let status = response.status();
        let answer = response.json::<Answer>().await.unwrap_or_default();
        Ok((status, answer))
    }

    async fn transfer(&self, path: &str, transfer: Transfer) -> Result<Receipt, GatewayError> {
        let (status, answer) = self
            .send(
                self.client
                    .post(format!("{}{path}", self.base))
                    .json(&transfer),
            )
            .await?;
        match status {
            StatusCode::CREATED | StatusCode::OK => Ok(Receipt {
                reference: answer.reference.unwrap_or_default(),
            }),
            StatusCode::PAYMENT_REQUIRED => Err(GatewayError::Declined(
                answer.reason.unwrap_or_else(|| "declined".into()),
            )),
            other => Err(GatewayError::Unavailable(format!(
                "the payment gateway answered {other}"
            ))),
        }
    }
}

#[async_trait]
impl PaymentGateway for HttpGateway {
    async fn capture(&self, order: CaptureOrder) -> Result<Receipt, GatewayError> {
        let transfer = Transfer {
            idempotency_key: order.idempotency_key,
            party: order.buyer_id.as_uuid(),
            amount: order.amount.as_krw(),
        };
        self.transfer("/captures", transfer).await
    }

    async fn refund(&self, order: TransferOrder) -> Result<Receipt, GatewayError> {
        self.transfer("/refunds", transfer_of(order)).await
    }

    async fn payout(&self, order: TransferOrder) -> Result<Receipt, GatewayError> {
        self.transfer("/payouts", transfer_of(order)).await
    }

    async fn resolve_capture(&self, key: &str) -> Result<CaptureStatus, GatewayError> {
        let url = format!("{}/captures/resolve", self.base);
        let (status, answer) = self
            .send(
                self.client
                    .post(url)
                    .json(&json!({ "idempotency_key": key })),
            )
            .await?;
        if status != StatusCode::OK {
            return Err(GatewayError::Unavailable(format!(
                "the payment gateway answered {status}"
            )));
        }
        match answer.status.as_deref() {
            Some("captured") => Ok(CaptureStatus::Captured(Receipt {
                reference: answer.reference.unwrap_or_default(),
            })),
            Some("declined") => Ok(CaptureStatus::Declined(answer.reason.unwrap_or_default())),
            Some("voided") => Ok(CaptureStatus::Voided),
            other => Err(GatewayError::Unavailable(format!(
                "unexpected capture status {other:?}"
            ))),
        }
    }
}

fn transfer_of(order: TransferOrder) -> Transfer {
    Transfer {
        idempotency_key: order.idempotency_key,
        party: order.recipient.as_uuid(),
        amount: order.amount.as_krw(),
    }
}
