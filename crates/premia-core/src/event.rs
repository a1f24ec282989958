//! The event contract of EVENTS.md as Rust types, and the validation of RULES.md section 10
//! ("Validation": everything that can be judged from the event alone and the active scheme).

use std::sync::Arc;

use rust_decimal::Decimal;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use time::Date;

use crate::calendar::{parse_date, Period};
use crate::json::{self, kind_of, Json};
use crate::money::{parse_plain_amount, AmountTextError};
use crate::reject::{Reason, Rejection};
use crate::scheme::Scheme;

/// Ids are shared between the event, the state and the entries, so they are reference counted.
pub type Id = Arc<str>;

/// The longest id, source or other identifier, in characters.
pub const MAX_ID_CHARS: usize = 256;

/// Every event type premia knows, with its name on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum EventType {
    #[serde(rename = "deal.created")]
    DealCreated,
    #[serde(rename = "payment.received")]
    PaymentReceived,
    #[serde(rename = "payment.late")]
    PaymentLate,
    #[serde(rename = "deal.cancelled")]
    DealCancelled,
    #[serde(rename = "payment.refunded")]
    PaymentRefunded,
    #[serde(rename = "plan.assigned")]
    PlanAssigned,
    #[serde(rename = "period.closed")]
    PeriodClosed,
    #[serde(rename = "scheme.activated")]
    SchemeActivated,
}

impl EventType {
    pub const ALL: [EventType; 8] = [
        EventType::DealCreated,
        EventType::PaymentReceived,
        EventType::PaymentLate,
        EventType::DealCancelled,
        EventType::PaymentRefunded,
        EventType::PlanAssigned,
        EventType::PeriodClosed,
        EventType::SchemeActivated,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            EventType::DealCreated => "deal.created",
            EventType::PaymentReceived => "payment.received",
            EventType::PaymentLate => "payment.late",
            EventType::DealCancelled => "deal.cancelled",
            EventType::PaymentRefunded => "payment.refunded",
            EventType::PlanAssigned => "plan.assigned",
            EventType::PeriodClosed => "period.closed",
            EventType::SchemeActivated => "scheme.activated",
        }
    }

    pub fn parse(text: &str) -> Option<EventType> {
        EventType::ALL.into_iter().find(|t| t.as_str() == text)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
#[schemars(inline)]
pub enum PaymentTerms {
    Prepayment,
    Postpayment,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
#[schemars(inline)]
pub enum Fault {
    Manager,
    Client,
    Other,
}

/// `deal.created`: a deal was signed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[schemars(title = "deal.created data")]
pub struct DealCreated {
    /// Unique across deals.
    #[schemars(schema_with = "crate::schema::id")]
    pub deal_id: Id,
    /// The account manager who owns the deal.
    #[schemars(schema_with = "crate::schema::id")]
    pub manager_id: Id,
    /// The client, for client-level figures.
    #[schemars(schema_with = "crate::schema::id")]
    pub client_id: Id,
    /// Deal value, above 0.
    #[schemars(schema_with = "crate::schema::amount")]
    #[serde(deserialize_with = "rust_decimal::serde::str::deserialize")]
    pub amount: Decimal,
    /// Gross profit of the deal, 0 <= margin <= amount.
    #[schemars(schema_with = "crate::schema::amount")]
    #[serde(deserialize_with = "rust_decimal::serde::str::deserialize")]
    pub margin: Decimal,
    /// Must equal the ledger currency.
    #[schemars(schema_with = "crate::schema::currency")]
    pub currency: String,
    pub payment_terms: PaymentTerms,
    /// The date the payment is due.
    #[schemars(schema_with = "crate::schema::date")]
    pub due_date: Date,
    /// The date the deal was signed.
    #[schemars(schema_with = "crate::schema::date")]
    pub created_on: Date,
}

/// `payment.received`: money arrived on a deal.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[schemars(title = "payment.received data")]
pub struct PaymentReceived {
    /// Unique across payments.
    #[schemars(schema_with = "crate::schema::id")]
    pub payment_id: Id,
    #[schemars(schema_with = "crate::schema::id")]
    pub deal_id: Id,
    /// Above 0, at most what is still owed on the deal.
    #[schemars(schema_with = "crate::schema::amount")]
    #[serde(deserialize_with = "rust_decimal::serde::str::deserialize")]
    pub amount: Decimal,
    #[schemars(schema_with = "crate::schema::currency")]
    pub currency: String,
    /// The date the money arrived: it chooses the period and the timing class.
    #[schemars(schema_with = "crate::schema::date")]
    pub paid_on: Date,
}

/// `payment.late`: the client is overdue. Books no money.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[schemars(title = "payment.late data")]
pub struct PaymentLate {
    #[schemars(schema_with = "crate::schema::id")]
    pub deal_id: Id,
    #[schemars(schema_with = "crate::schema::date")]
    pub as_of: Date,
    /// Optional, informational.
    pub days_overdue: Option<u32>,
}

/// `deal.cancelled`: the deal is lost.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[schemars(title = "deal.cancelled data")]
pub struct DealCancelled {
    #[schemars(schema_with = "crate::schema::id")]
    pub deal_id: Id,
    #[schemars(schema_with = "crate::schema::date")]
    pub cancelled_on: Date,
    /// `manager` books a fine; `client` and `other` book nothing.
    pub fault: Fault,
    /// Optional free text.
    pub reason: Option<String>,
}

/// `payment.refunded`: money went back to the client.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[schemars(title = "payment.refunded data")]
pub struct PaymentRefunded {
    /// Unique across refunds.
    #[schemars(schema_with = "crate::schema::id")]
    pub refund_id: Id,
    #[schemars(schema_with = "crate::schema::id")]
    pub payment_id: Id,
    /// Above 0, at most what is left of the payment.
    #[schemars(schema_with = "crate::schema::amount")]
    #[serde(deserialize_with = "rust_decimal::serde::str::deserialize")]
    pub amount: Decimal,
    #[schemars(schema_with = "crate::schema::currency")]
    pub currency: String,
    #[schemars(schema_with = "crate::schema::date")]
    pub refunded_on: Date,
}

/// `plan.assigned`: a manager's target for a period; replaces an earlier one.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[schemars(title = "plan.assigned data")]
pub struct PlanAssigned {
    #[schemars(schema_with = "crate::schema::id")]
    pub manager_id: Id,
    #[schemars(schema_with = "crate::schema::period")]
    pub period: Period,
    /// Above 0.
    #[schemars(schema_with = "crate::schema::amount")]
    #[serde(deserialize_with = "rust_decimal::serde::str::deserialize")]
    pub target: Decimal,
    /// Optional; the scheme's bonus base when absent.
    #[schemars(schema_with = "crate::schema::optional_amount")]
    #[serde(deserialize_with = "rust_decimal::serde::str_option::deserialize")]
    pub bonus_base: Option<Decimal>,
}

/// `period.closed`: the month is final; plan bonuses are booked.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[schemars(title = "period.closed data")]
pub struct PeriodClosed {
    #[schemars(schema_with = "crate::schema::period")]
    pub period: Period,
}

/// The data of a validated event. A parked event is kept in the state, so it is in the snapshot
/// (bincode): its amounts are written as decimal strings and read back as strings
/// (`rust_decimal::serde::str`), because `Decimal`'s own reader asks the format what comes next,
/// which bincode cannot answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum EventData {
    DealCreated(DealCreated),
    PaymentReceived(PaymentReceived),
    PaymentLate(PaymentLate),
    DealCancelled(DealCancelled),
    PaymentRefunded(PaymentRefunded),
    PlanAssigned(PlanAssigned),
    PeriodClosed(PeriodClosed),
    SchemeActivated(Box<Scheme>),
}

impl EventData {
    pub fn event_type(&self) -> EventType {
        match self {
            EventData::DealCreated(_) => EventType::DealCreated,
            EventData::PaymentReceived(_) => EventType::PaymentReceived,
            EventData::PaymentLate(_) => EventType::PaymentLate,
            EventData::DealCancelled(_) => EventType::DealCancelled,
            EventData::PaymentRefunded(_) => EventType::PaymentRefunded,
            EventData::PlanAssigned(_) => EventType::PlanAssigned,
            EventData::PeriodClosed(_) => EventType::PeriodClosed,
            EventData::SchemeActivated(_) => EventType::SchemeActivated,
        }
    }
}

/// A validated event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    pub source: Id,
    pub id: Id,
    pub data: EventData,
    /// Digest of (`source`, `id`): the idempotency key.
    pub identity: u128,
    /// Digest of (`type`, `data`) as JSON values: equal content, equal fingerprint.
    pub fingerprint: u128,
}

/// Where an event came from decides whether it may change the rules.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    /// Publishers (NATS, HTTP): `scheme.activated` is refused.
    Publisher,
    /// premia's own command line (`ingest` of a file or export, `scheme activate`).
    Operator,
}

/// Parses and validates one input line against the active scheme.
pub fn parse_event(raw: &[u8], scheme: &Scheme, admission: Admission) -> Result<Event, Rejection> {
    let object = json::parse_object(raw)?;
    check_specversion(&object)?;
    let id = envelope_text(&object, "id", Reason::InvalidId)?;
    let source = envelope_text(&object, "source", Reason::InvalidSource)?;
    let (type_text, event_type) = envelope_type(&object, admission)?;
    check_time(&object)?;
    let data_value = envelope_data(&object, type_text)?;
    let data = DataReader { data: data_value, event_type, scheme }.event_data()?;
    Ok(Event {
        identity: json::identity_key(&source, &id),
        fingerprint: json::content_fingerprint(type_text, data_value),
        source: source.into(),
        id: id.into(),
        data,
    })
}

/// Whether [`parse_event`] judges every line alike under the two schemes: of the scheme, it
/// reads only the currency (an amount's currency must be the ledger's). A line parsed under one
/// scheme need not be parsed again under the other (the fold uses this to parse ahead).
pub fn parses_alike(a: &Scheme, b: &Scheme) -> bool {
    a.currency == b.currency
}

fn check_specversion(object: &Json<'_>) -> Result<(), Rejection> {
    let specversion = object.get("specversion");
    if specversion.and_then(Json::as_str) != Some("1.0") {
        return Err(Rejection::new(
            Reason::InvalidSpecversion,
            match specversion {
                None => "the envelope has no \"specversion\"; set it to the string \"1.0\"".to_string(),
                Some(v) => format!("\"specversion\" is {}, but premia speaks CloudEvents \"1.0\" (a string)", short(v)),
            },
        ));
    }
    Ok(())
}

/// The envelope's `type`: its text and the event type, which the admission must allow.
fn envelope_type<'a>(object: &'a Json<'_>, admission: Admission) -> Result<(&'a str, EventType), Rejection> {
    let type_text = match object.get("type") {
        Some(Json::String(s)) => s.as_ref(),
        Some(other) => {
            return Err(Rejection::new(
                Reason::UnknownType,
                format!("\"type\" must be a string naming the event type, got a {}", kind_of(other)),
            ))
        }
        None => {
            return Err(Rejection::new(
                Reason::UnknownType,
                "the envelope has no \"type\"; use one of the types in EVENTS.md, such as \"deal.created\"",
            ))
        }
    };
    let Some(event_type) = EventType::parse(type_text) else {
        return Err(Rejection::new(
            Reason::UnknownType,
            format!(
                "\"type\" {type_text:?} is not an event type premia knows; use one of deal.created, payment.received, payment.late, deal.cancelled, payment.refunded, plan.assigned, period.closed"
            ),
        ));
    };
    if event_type == EventType::SchemeActivated && admission == Admission::Publisher {
        return Err(Rejection::new(
            Reason::TypeNotAccepted,
            "scheme.activated cannot be published: the commission rules change only through `premia scheme activate`",
        ));
    }
    Ok((type_text, event_type))
}

fn check_time(object: &Json<'_>) -> Result<(), Rejection> {
    match object.get("time") {
        None | Some(Json::Null) => {}
        Some(Json::String(t))
            if time::OffsetDateTime::parse(t, &time::format_description::well_known::Rfc3339).is_ok() => {}
        Some(other) => {
            return Err(Rejection::new(
                Reason::InvalidTime,
                format!(
                    "\"time\" must be an RFC 3339 timestamp such as \"2026-11-02T09:15:00+03:00\", got {}",
                    short(other)
                ),
            ))
        }
    }
    Ok(())
}

fn envelope_data<'a, 'j>(object: &'a Json<'j>, type_text: &str) -> Result<&'a Json<'j>, Rejection> {
    let data_value = match object.get("data") {
        Some(v @ Json::Object(_)) => v,
        Some(other) => {
            return Err(Rejection::new(
                Reason::InvalidData,
                format!("\"data\" must be an object with the fields of {type_text}, got a {}", kind_of(other)),
            ))
        }
        None => {
            return Err(Rejection::new(
                Reason::InvalidData,
                format!("the envelope has no \"data\"; a {type_text} event carries its fields there"),
            ))
        }
    };
    Ok(data_value)
}

fn short(value: &Json<'_>) -> String {
    let text = match value {
        Json::Number(n) => n.to_string(),
        other => other.to_value().to_string(),
    };
    if text.chars().count() > 60 {
        format!("{}...", text.chars().take(60).collect::<String>())
    } else {
        text
    }
}

fn envelope_text(object: &Json<'_>, name: &str, reason: Reason) -> Result<String, Rejection> {
    match object.get(name) {
        Some(Json::String(s)) if !s.is_empty() && s.chars().count() <= MAX_ID_CHARS => Ok(s.to_string()),
        Some(Json::String(s)) if s.is_empty() => {
            Err(Rejection::new(reason, format!("\"{name}\" is empty; it must be 1 to {MAX_ID_CHARS} characters")))
        }
        Some(Json::String(_)) => {
            Err(Rejection::new(reason, format!("\"{name}\" is longer than {MAX_ID_CHARS} characters")))
        }
        Some(other) => Err(Rejection::new(reason, format!("\"{name}\" must be a string, got a {}", kind_of(other)))),
        None => Err(Rejection::new(
            reason,
            format!("the envelope has no \"{name}\"; it is required (with \"source\", the idempotency key)"),
        )),
    }
}

struct DataReader<'a> {
    data: &'a Json<'a>,
    event_type: EventType,
    scheme: &'a Scheme,
}

impl<'a> DataReader<'a> {
    /// The data of the event type, read and validated.
    fn event_data(&self) -> Result<EventData, Rejection> {
        let data = match self.event_type {
            EventType::DealCreated => EventData::DealCreated(self.deal_created()?),
            EventType::PaymentReceived => EventData::PaymentReceived(self.payment_received()?),
            EventType::PaymentLate => EventData::PaymentLate(self.payment_late()?),
            EventType::DealCancelled => EventData::DealCancelled(self.deal_cancelled()?),
            EventType::PaymentRefunded => EventData::PaymentRefunded(self.payment_refunded()?),
            EventType::PlanAssigned => EventData::PlanAssigned(self.plan_assigned()?),
            EventType::PeriodClosed => EventData::PeriodClosed(PeriodClosed { period: self.period("period")? }),
            EventType::SchemeActivated => {
                EventData::SchemeActivated(Box::new(Scheme::from_json(&self.data.to_value()).map_err(|p| {
                    Rejection::new(Reason::InvalidScheme, format!("the scheme is not valid: {}", p.0.join("; ")))
                })?))
            }
        };
        Ok(data)
    }

    fn required(&self, name: &str) -> Result<&Json<'a>, Rejection> {
        match self.data.get(name) {
            None | Some(Json::Null) => Err(Rejection::new(
                Reason::MissingField,
                format!("data.{name} is required for {} events but is missing or null", self.event_type.as_str()),
            )),
            Some(v) => Ok(v),
        }
    }

    fn optional(&self, name: &str) -> Option<&Json<'a>> {
        match self.data.get(name) {
            None | Some(Json::Null) => None,
            Some(v) => Some(v),
        }
    }

    fn wrong_type(&self, name: &str, expected: &str, got: &Json<'_>) -> Rejection {
        Rejection::new(Reason::WrongType, format!("data.{name} must be {expected}, got a {}", kind_of(got)))
    }

    fn text<'v>(&self, name: &str, value: &'v Json<'_>, expected: &str) -> Result<&'v str, Rejection> {
        value.as_str().ok_or_else(|| self.wrong_type(name, expected, value))
    }

    fn id(&self, name: &str) -> Result<Id, Rejection> {
        let text = self.text(name, self.required(name)?, "a string id")?;
        if text.is_empty() || text.chars().count() > MAX_ID_CHARS {
            return Err(Rejection::new(
                Reason::InvalidIdField,
                format!("data.{name} must be 1 to {MAX_ID_CHARS} characters, got {}", text.chars().count()),
            ));
        }
        Ok(Id::from(text))
    }

    fn date(&self, name: &str) -> Result<Date, Rejection> {
        let text = self.text(name, self.required(name)?, "a date string \"YYYY-MM-DD\"")?;
        parse_date(text).ok_or_else(|| {
            Rejection::new(
                Reason::InvalidDate,
                format!("data.{name} {text:?} is not a real calendar date written YYYY-MM-DD"),
            )
        })
    }

    fn period(&self, name: &str) -> Result<Period, Rejection> {
        let text = self.text(name, self.required(name)?, "a period string \"YYYY-MM\"")?;
        Period::parse(text).ok_or_else(|| {
            Rejection::new(
                Reason::InvalidPeriod,
                format!("data.{name} {text:?} is not a period written YYYY-MM with month 01-12"),
            )
        })
    }

    /// An amount: a decimal string or a JSON number in plain notation, at most 2 decimals,
    /// `0 < amount <= cap` (or `0 <= amount` when `zero_allowed`).
    fn amount_of(&self, name: &str, value: &Json<'_>, zero_allowed: bool) -> Result<Decimal, Rejection> {
        let text: &str = match value {
            Json::String(s) => s,
            Json::Number(n) => n,
            other => {
                return Err(self.wrong_type(name, "a decimal string such as \"150000.00\" or a JSON number", other))
            }
        };
        let amount = parse_plain_amount(text).map_err(|e| match e {
            AmountTextError::NotPlain => Rejection::new(
                Reason::InvalidAmount,
                format!("data.{name} {} is not an amount in plain notation (digits, optionally a point and two digits, such as \"150000.00\"); signs, exponents and separators are not accepted", short(value)),
            ),
            AmountTextError::TooManyDecimals => Rejection::new(
                Reason::InvalidAmount,
                format!("data.{name} {} has more than 2 decimals; amounts are in kopecks at most", short(value)),
            ),
            AmountTextError::AboveCap => Rejection::new(
                Reason::AmountOutOfRange,
                format!("data.{name} {} is above the cap of 10000000000.00", short(value)),
            ),
        })?;
        if amount.is_zero() && !zero_allowed {
            return Err(Rejection::new(Reason::AmountOutOfRange, format!("data.{name} must be above 0")));
        }
        Ok(amount)
    }

    fn amount(&self, name: &str, zero_allowed: bool) -> Result<Decimal, Rejection> {
        self.amount_of(name, self.required(name)?, zero_allowed)
    }

    fn currency(&self, name: &str) -> Result<String, Rejection> {
        let text = self.text(name, self.required(name)?, "a currency code string such as \"RUB\"")?;
        if text != self.scheme.currency {
            return Err(Rejection::new(
                Reason::CurrencyMismatch,
                format!(
                    "data.{name} is {text:?}, but this ledger keeps {}; convert before publishing",
                    self.scheme.currency
                ),
            ));
        }
        Ok(text.to_owned())
    }

    fn choice<T: Copy>(&self, name: &str, options: &[(&str, T)]) -> Result<T, Rejection> {
        let names: Vec<&str> = options.iter().map(|(n, _)| *n).collect();
        let value = self.required(name)?;
        let text = self.text(name, value, &format!("one of the strings {}", names.join(", ")))?;
        options.iter().find(|(n, _)| *n == text).map(|(_, v)| *v).ok_or_else(|| {
            Rejection::new(
                Reason::InvalidValue,
                format!("data.{name} is {text:?}; it must be one of {}", names.join(", ")),
            )
        })
    }

    fn deal_created(&self) -> Result<DealCreated, Rejection> {
        let deal = DealCreated {
            deal_id: self.id("deal_id")?,
            manager_id: self.id("manager_id")?,
            client_id: self.id("client_id")?,
            amount: self.amount("amount", false)?,
            margin: self.amount("margin", true)?,
            currency: self.currency("currency")?,
            payment_terms: self.choice(
                "payment_terms",
                &[("prepayment", PaymentTerms::Prepayment), ("postpayment", PaymentTerms::Postpayment)],
            )?,
            due_date: self.date("due_date")?,
            created_on: self.date("created_on")?,
        };
        if deal.margin > deal.amount {
            return Err(Rejection::new(
                Reason::MarginExceedsAmount,
                format!("data.margin {} is greater than data.amount {}; the margin is the gross profit within the deal value", deal.margin, deal.amount),
            ));
        }
        Ok(deal)
    }

    fn payment_received(&self) -> Result<PaymentReceived, Rejection> {
        Ok(PaymentReceived {
            payment_id: self.id("payment_id")?,
            deal_id: self.id("deal_id")?,
            amount: self.amount("amount", false)?,
            currency: self.currency("currency")?,
            paid_on: self.date("paid_on")?,
        })
    }

    fn payment_late(&self) -> Result<PaymentLate, Rejection> {
        let deal_id = self.id("deal_id")?;
        let as_of = self.date("as_of")?;
        let days_overdue = match self.optional("days_overdue") {
            None => None,
            Some(v) => Some(
                v.as_u64()
                    .and_then(|n| u32::try_from(n).ok())
                    .ok_or_else(|| self.wrong_type("days_overdue", "a whole number of days >= 0", v))?,
            ),
        };
        Ok(PaymentLate { deal_id, as_of, days_overdue })
    }

    fn deal_cancelled(&self) -> Result<DealCancelled, Rejection> {
        let deal_id = self.id("deal_id")?;
        let cancelled_on = self.date("cancelled_on")?;
        let fault =
            self.choice("fault", &[("manager", Fault::Manager), ("client", Fault::Client), ("other", Fault::Other)])?;
        let reason = match self.optional("reason") {
            None => None,
            Some(v) => Some(self.text("reason", v, "a string")?.to_owned()),
        };
        Ok(DealCancelled { deal_id, cancelled_on, fault, reason })
    }

    fn payment_refunded(&self) -> Result<PaymentRefunded, Rejection> {
        Ok(PaymentRefunded {
            refund_id: self.id("refund_id")?,
            payment_id: self.id("payment_id")?,
            amount: self.amount("amount", false)?,
            currency: self.currency("currency")?,
            refunded_on: self.date("refunded_on")?,
        })
    }

    fn plan_assigned(&self) -> Result<PlanAssigned, Rejection> {
        let manager_id = self.id("manager_id")?;
        let period = self.period("period")?;
        let target = self.amount("target", false)?;
        let bonus_base = match self.optional("bonus_base") {
            None => None,
            Some(v) => Some(self.amount_of("bonus_base", v, true)?),
        };
        Ok(PlanAssigned { manager_id, period, target, bonus_base })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scheme() -> Scheme {
        Scheme::default_scheme()
    }

    fn deal_json(data: &str) -> String {
        format!(r#"{{"specversion":"1.0","id":"e1","source":"crm/t","type":"deal.created","data":{data}}}"#)
    }

    const GOOD_DEAL: &str = r#"{"deal_id":"D-1","manager_id":"M-7","client_id":"C-55","amount":"1000000.00","margin":"100000.00","currency":"RUB","payment_terms":"prepayment","due_date":"2026-11-10","created_on":"2026-11-02"}"#;

    #[test]
    fn the_example_of_events_md_parses() {
        let e = parse_event(deal_json(GOOD_DEAL).as_bytes(), &scheme(), Admission::Publisher).unwrap();
        let EventData::DealCreated(d) = e.data else { panic!("not a deal") };
        assert_eq!(&*d.deal_id, "D-1");
        assert_eq!(d.amount, Decimal::new(100000000, 2));
        assert_eq!(d.payment_terms, PaymentTerms::Prepayment);
    }

    #[test]
    fn numbers_are_exact_amounts() {
        let data = GOOD_DEAL.replace(r#""amount":"1000000.00""#, r#""amount":1000000.10"#);
        let e = parse_event(deal_json(&data).as_bytes(), &scheme(), Admission::Publisher).unwrap();
        let EventData::DealCreated(d) = e.data else { panic!() };
        assert_eq!(d.amount.to_string(), "1000000.10");
    }

    #[test]
    fn the_same_content_in_another_order_has_the_same_fingerprint() {
        let a = parse_event(deal_json(GOOD_DEAL).as_bytes(), &scheme(), Admission::Publisher).unwrap();
        let reordered = r#"{"data":{"created_on":"2026-11-02","due_date":"2026-11-10","payment_terms":"prepayment","currency":"RUB","margin":100000.0,"amount":"1000000.00","client_id":"C-55","manager_id":"M-7","deal_id":"D-1"},"type":"deal.created","source":"crm/t","id":"e1","specversion":"1.0","time":"2026-11-02T09:15:00Z"}"#;
        let b = parse_event(reordered.as_bytes(), &scheme(), Admission::Publisher).unwrap();
        assert_eq!(a.identity, b.identity);
        // 100000.0 (a number) and "100000.00" (a string) are different JSON values.
        assert_ne!(a.fingerprint, b.fingerprint);
        let c =
            parse_event(reordered.replace("100000.0,", "\"100000.00\",").as_bytes(), &scheme(), Admission::Publisher)
                .unwrap();
        assert_eq!(a.fingerprint, c.fingerprint);
    }

    #[test]
    fn scheme_activation_is_for_operators_only() {
        let raw = format!(
            r#"{{"specversion":"1.0","id":"s1","source":"premia/ledger","type":"scheme.activated","data":{}}}"#,
            scheme().to_json()
        );
        assert_eq!(
            parse_event(raw.as_bytes(), &scheme(), Admission::Publisher).unwrap_err().reason,
            Reason::TypeNotAccepted
        );
        assert!(parse_event(raw.as_bytes(), &scheme(), Admission::Operator).is_ok());
    }
}
