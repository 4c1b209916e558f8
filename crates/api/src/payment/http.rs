//! The payment gateway over HTTP: the protocol `carrot payment-sim` serves, and the one an
//! external gateway's adapter would speak.
//!
//! `POST /captures`, `/refunds`, `/payouts` with the idempotency key; `POST /captures/resolve`
//! to resolve a capture whose answer was lost; `GET /movements?since=&limit=` for the money
//! it moved. 201 with a readable answer is done, 402 declined. Only what proves that
//! nothing moved is taken for "nothing moved": a failure to connect (nothing was sent), a
//! 4xx refusal, or a 5xx carrying the gateway's own `{"processed": false}`. Anything else
//! (a timeout or reset after the request left, a 5xx from a proxy, a success whose body
//! never fully arrived) is an unknown outcome (`Timeout`), resolved later with the same key.

use std::time::Duration;

use async_trait::async_trait;
use carrot_domain::payment::{
    CaptureOrder, CaptureStatus, GatewayError, Movement, PaymentGateway, Receipt, TransferOrder,
};
use chrono::{DateTime, Utc};
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
    /// `false` on a failure the gateway answers itself: nothing was processed.
    #[serde(default)]
    pub processed: Option<bool>,
}

/// `GET /movements`'s answer.
#[derive(Debug, Clone, Deserialize)]
struct Movements {
    movements: Vec<Movement>,
}

impl HttpGateway {
    /// A client of the gateway at `base` (`http://payment-sim:9090`). The caller adds the
    /// time limit (`WithTimeout`); this client's own is a backstop.
    pub fn new(base: &str) -> Result<Self, reqwest::Error> {
        Self::trusting(base, None)
    }

    /// A client of the gateway at `base` that, over `https://`, trusts the system's roots
    /// and, if given, the certificates in `ca_pem` (a private CA's).
    pub fn trusting(base: &str, ca_pem: Option<&[u8]>) -> Result<Self, reqwest::Error> {
        let mut builder = Client::builder()
            .connect_timeout(Duration::from_secs(2))
            .timeout(Duration::from_secs(60));
        if let Some(pem) = ca_pem {
            for certificate in reqwest::Certificate::from_pem_bundle(pem)? {
                builder = builder.add_root_certificate(certificate);
            }
        }
        Ok(HttpGateway {
            client: builder.build()?,
            base: base.trim_end_matches('/').to_owned(),
        })
    }

    /// Sends `request`; the status and the answer, or an error that says what the failure
    /// proves.
    async fn send(
        &self,
        request: reqwest::RequestBuilder,
    ) -> Result<(StatusCode, Option<Answer>), GatewayError> {
        let response = request.send().await.map_err(|e| {
            if e.is_connect() {
                GatewayError::Unavailable(format!("cannot reach the payment gateway: {e}"))
            } else {
                GatewayError::Timeout
            }
        })?;
        let status = response.status();
        // A body cut off or not the gateway's JSON: `None`, never a default answer.
        let answer = response.json::<Answer>().await.ok();
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
        judge(status, answer)
    }
}

/// What an answer to a money movement proves.
fn judge(status: StatusCode, answer: Option<Answer>) -> Result<Receipt, GatewayError> {
    match (status, answer) {
        (
            StatusCode::CREATED | StatusCode::OK,
            Some(Answer {
                reference: Some(reference),
                ..
            }),
        ) => Ok(Receipt { reference }),
        // Done, but the proof (the reference) never arrived whole.
        (StatusCode::CREATED | StatusCode::OK, _) => Err(GatewayError::Timeout),
        (StatusCode::PAYMENT_REQUIRED, answer) => Err(GatewayError::Declined(
            answer
                .and_then(|a| a.reason)
                .unwrap_or_else(|| "declined".into()),
        )),
        (
            status,
            Some(Answer {
                processed: Some(false),
                ..
            }),
        ) if status.is_server_error() => Err(GatewayError::Unavailable(format!(
            "the payment gateway answered {status} and processed nothing"
        ))),
        (status, _) if status.is_client_error() => Err(GatewayError::Unavailable(format!(
            "the payment gateway refused the call with {status}"
        ))),
        // A 5xx that is not the gateway's own word, or anything stranger: unknown.
        _ => Err(GatewayError::Timeout),
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
        let answer = match (status, answer) {
            (StatusCode::OK, Some(answer)) => answer,
            (status, _) => {
                return Err(GatewayError::Unavailable(format!(
                    "the payment gateway answered {status} to a question"
                )))
            }
        };
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

    async fn movements(
        &self,
        since: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<Movement>, GatewayError> {
        let url = format!("{}/movements", self.base);
        let response = self
            .client
            .get(url)
            .query(&[("since", since.to_rfc3339()), ("limit", limit.to_string())])
            .send()
            .await
            .map_err(|e| GatewayError::Unavailable(format!("movements: {e}")))?;
        if !response.status().is_success() {
            return Err(GatewayError::Unavailable(format!(
                "the payment gateway answered {} to a list of movements",
                response.status()
            )));
        }
        response
            .json::<Movements>()
            .await
            .map(|m| m.movements)
            .map_err(|e| GatewayError::Unavailable(format!("movements: {e}")))
    }
}

fn transfer_of(order: TransferOrder) -> Transfer {
    Transfer {
        idempotency_key: order.idempotency_key,
        party: order.recipient.as_uuid(),
        amount: order.amount.as_krw(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn said(reference: Option<&str>, processed: Option<bool>) -> Option<Answer> {
        Some(Answer {
            reference: reference.map(str::to_owned),
            processed,
            ..Answer::default()
        })
    }

    #[test]
    fn only_what_proves_nothing_moved_is_taken_for_nothing_moved() {
        let unavailable =
            |r: &Result<Receipt, GatewayError>| matches!(r, Err(GatewayError::Unavailable(_)));
        let unknown = |r: &Result<Receipt, GatewayError>| matches!(r, Err(GatewayError::Timeout));
        // The gateway's own refusals.
        assert!(unavailable(&judge(
            StatusCode::SERVICE_UNAVAILABLE,
            said(None, Some(false))
        )));
        assert!(unavailable(&judge(StatusCode::TOO_MANY_REQUESTS, None)));
        // A proxy's 502 page, a 500 with no word on processing, a 503 that says it did.
        assert!(unknown(&judge(StatusCode::BAD_GATEWAY, None)));
        assert!(unknown(&judge(
            StatusCode::INTERNAL_SERVER_ERROR,
            said(None, None)
        )));
        assert!(unknown(&judge(
            StatusCode::SERVICE_UNAVAILABLE,
            said(None, Some(true))
        )));
        // A success whose answer was cut off proves nothing either.
        assert!(unknown(&judge(StatusCode::CREATED, None)));
        assert!(unknown(&judge(StatusCode::CREATED, said(None, None))));
        assert_eq!(
            judge(StatusCode::CREATED, said(Some("ref-1"), None)),
            Ok(Receipt {
                reference: "ref-1".into()
            })
        );
        assert!(matches!(
            judge(StatusCode::PAYMENT_REQUIRED, None),
            Err(GatewayError::Declined(_))
        ));
    }
}
