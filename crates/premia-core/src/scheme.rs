//! The commission scheme: every parameter of RULES.md, with the default scheme built in.
//!
//! A scheme is plain data. It is read from TOML (by people) or from the `data` of a
//! `scheme.activated` event (by the ledger), and checked by [`Scheme::check`] before use.

use std::fmt;
use std::str::FromStr;

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use crate::calendar::{parse_date, Calendar, MonthDay};

/// The default scheme, as RULES.md states it. Kept as TOML so `premia scheme show` prints
/// exactly what a user would write.
pub const DEFAULT_SCHEME_TOML: &str = include_str!("default-scheme.toml");

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scheme {
    /// A human name for this version of the rules, shown on statements.
    pub name: String,
    /// The one ledger currency (ISO 4217 code).
    pub currency: String,
    pub commission: CommissionRules,
    pub fines: FineRules,
    pub plan: PlanRules,
    pub calendar: CalendarRules,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CommissionRules {
    #[serde(with = "rust_decimal::serde::str")]
    pub prepaid_rate: Decimal,
    #[serde(with = "rust_decimal::serde::str")]
    pub on_time_rate: Decimal,
    #[serde(with = "rust_decimal::serde::str")]
    pub late_rate: Decimal,
    /// A payment up to this many working days after the due date is still on time.
    pub grace_working_days: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FineRules {
    /// Booked as a negative entry when a deal is cancelled through the manager's fault.
    #[serde(with = "rust_decimal::serde::str")]
    pub manager_fault: Decimal,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PlanMetric {
    /// Payments booked into the period minus refunds booked into it.
    Received,
    /// The margin share of each payment (and refund), each rounded to 0.01.
    MarginReceived,
    /// Amounts of deals created in the period.
    Booked,
}

impl PlanMetric {
    pub fn as_str(self) -> &'static str {
        match self {
            PlanMetric::Received => "received",
            PlanMetric::MarginReceived => "margin_received",
            PlanMetric::Booked => "booked",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PlanRules {
    pub metric: PlanMetric,
    /// The bonus base when a `plan.assigned` carries none.
    #[serde(with = "rust_decimal::serde::str")]
    pub bonus_base: Decimal,
    /// The highest coefficient, whatever the tier says.
    #[serde(with = "rust_decimal::serde::str")]
    pub cap: Decimal,
    pub tiers: Vec<Tier>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Tier {
    /// Inclusive lower bound of achievement (actual / target).
    #[serde(with = "rust_decimal::serde::str")]
    pub from: Decimal,
    pub coefficient: Coefficient,
}

/// A tier's coefficient: a fixed number, or the achievement itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum Coefficient {
    Fixed(Decimal),
    Proportional,
}

impl TryFrom<String> for Coefficient {
    type Error = String;
    fn try_from(text: String) -> Result<Self, String> {
        if text == "proportional" {
            return Ok(Coefficient::Proportional);
        }
        Decimal::from_str(&text)
            .map(Coefficient::Fixed)
            .map_err(|_| format!("coefficient {text:?} is neither a decimal such as \"0.85\" nor \"proportional\""))
    }
}

impl From<Coefficient> for String {
    fn from(c: Coefficient) -> String {
        match c {
            Coefficient::Fixed(d) => d.to_string(),
            Coefficient::Proportional => "proportional".to_string(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CalendarRules {
    /// `MM-DD` holidays that move to the next working day when they fall on a weekend.
    pub holidays: Vec<String>,
    /// `MM-DD` holidays that do not move (the New Year holidays).
    pub holidays_without_transfer: Vec<String>,
    /// `YYYY-MM-DD` days off decreed for one year.
    #[serde(default)]
    pub extra_holidays: Vec<String>,
    /// `YYYY-MM-DD` working days decreed for one year; they win over everything else.
    #[serde(default)]
    pub extra_workdays: Vec<String>,
}

impl CommissionRules {
    fn check(&self, problems: &mut Vec<String>) {
        for (name, rate) in [
            ("commission.prepaid_rate", self.prepaid_rate),
            ("commission.on_time_rate", self.on_time_rate),
            ("commission.late_rate", self.late_rate),
        ] {
            if rate < Decimal::ZERO || rate > Decimal::ONE || rate.scale() > MAX_RATE_DECIMALS {
                problems.push(format!(
                    "{name}: {rate} must be between 0 and 1 with at most {MAX_RATE_DECIMALS} decimals (0.008 is 0.8 %)"
                ));
            }
        }
        if self.grace_working_days > 366 {
            problems.push(format!("commission.grace_working_days: {} is more than a year", self.grace_working_days));
        }
    }
}

impl PlanRules {
    fn check(&self, problems: &mut Vec<String>) {
        if self.bonus_base < Decimal::ZERO || self.bonus_base.scale() > 2 || self.bonus_base > crate::money::AMOUNT_CAP
        {
            problems
                .push(format!("plan.bonus_base: {} must be an amount >= 0 with at most 2 decimals", self.bonus_base));
        }
        if self.cap <= Decimal::ZERO || self.cap > Decimal::ONE_HUNDRED || self.cap.scale() > MAX_RATE_DECIMALS {
            problems.push(format!(
                "plan.cap: {} must be above 0 and at most 100, with at most {MAX_RATE_DECIMALS} decimals",
                self.cap
            ));
        }
        if self.tiers.is_empty() {
            problems.push("plan.tiers: at least one tier is needed, starting at from = \"0\"".into());
        }
        for (i, tier) in self.tiers.iter().enumerate() {
            let previous = i.checked_sub(1).map(|p| &self.tiers[p]);
            tier.check(i, previous, problems);
        }
    }
}

impl Tier {
    /// Checks tier `i`, which comes after `previous`.
    fn check(&self, i: usize, previous: Option<&Tier>, problems: &mut Vec<String>) {
        if i == 0 && !self.from.is_zero() {
            problems.push(format!("plan.tiers[0].from: the first tier must start at \"0\", not {}", self.from));
        }
        if self.from < Decimal::ZERO || self.from > Decimal::ONE_HUNDRED || self.from.scale() > MAX_RATE_DECIMALS {
            problems.push(format!(
                "plan.tiers[{i}].from: {} must be between 0 and 100 with at most {MAX_RATE_DECIMALS} decimals",
                self.from
            ));
        }
        if let Some(previous) = previous.filter(|p| self.from <= p.from) {
            problems.push(format!(
                "plan.tiers[{i}].from: {} must be greater than the previous tier's from ({})",
                self.from, previous.from
            ));
        }
        if let Coefficient::Fixed(k) = self.coefficient {
            if k < Decimal::ZERO || k > Decimal::ONE_HUNDRED || k.scale() > MAX_RATE_DECIMALS {
                problems.push(format!("plan.tiers[{i}].coefficient: {k} must be between 0 and 100 with at most {MAX_RATE_DECIMALS} decimals, or \"proportional\""));
            }
        }
    }
}

impl CalendarRules {
    fn check(&self, problems: &mut Vec<String>) {
        for (name, list) in [
            ("calendar.holidays", &self.holidays),
            ("calendar.holidays_without_transfer", &self.holidays_without_transfer),
        ] {
            for (i, md) in list.iter().enumerate() {
                if MonthDay::parse(md).is_none() {
                    problems
                        .push(format!("{name}[{i}]: {md:?} is not a day of the year written MM-DD, such as \"11-04\""));
                }
            }
        }
        for (name, list) in
            [("calendar.extra_holidays", &self.extra_holidays), ("calendar.extra_workdays", &self.extra_workdays)]
        {
            for (i, d) in list.iter().enumerate() {
                if parse_date(d).is_none() {
                    problems
                        .push(format!("{name}[{i}]: {d:?} is not a date written YYYY-MM-DD, such as \"2026-12-31\""));
                }
            }
        }
    }
}

/// Everything wrong with a scheme, one sentence each, naming the parameter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SchemeProblems(pub Vec<String>);

impl fmt::Display for SchemeProblems {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, p) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{p}")?;
        }
        Ok(())
    }
}

impl std::error::Error for SchemeProblems {}

const MAX_RATE_DECIMALS: u32 = 6;

impl Scheme {
    pub fn default_scheme() -> Scheme {
        // The embedded default is checked by a unit test, so this cannot fail at run time.
        match Scheme::from_toml(DEFAULT_SCHEME_TOML) {
            Ok(s) => s,
            Err(e) => panic!("the built-in default scheme is invalid: {e}"),
        }
    }

    /// Parses and checks a scheme written in TOML.
    pub fn from_toml(text: &str) -> Result<Scheme, SchemeProblems> {
        let scheme: Scheme =
            toml::from_str(text).map_err(|e| SchemeProblems(vec![e.to_string().trim().to_string()]))?;
        scheme.check()?;
        Ok(scheme)
    }

    /// Parses and checks a scheme carried as JSON (the data of `scheme.activated`).
    pub fn from_json(value: &serde_json::Value) -> Result<Scheme, SchemeProblems> {
        let scheme: Scheme = serde_json::from_value(value.clone()).map_err(|e| SchemeProblems(vec![e.to_string()]))?;
        scheme.check()?;
        Ok(scheme)
    }

    pub fn to_toml(&self) -> String {
        toml::to_string(self).unwrap_or_else(|e| format!("# cannot print scheme: {e}"))
    }

    pub fn to_json(&self) -> serde_json::Value {
        match serde_json::to_value(self) {
            Ok(value) => value,
            Err(e) => unreachable!("a scheme is plain data with string keys, so it always serializes: {e}"),
        }
    }

    /// Checks every parameter; all problems are reported at once.
    pub fn check(&self) -> Result<(), SchemeProblems> {
        let mut problems = Vec::new();
        if self.name.trim().is_empty() || self.name.len() > 256 {
            problems.push("name: must be 1 to 256 characters".into());
        }
        if self.currency.len() != 3 || !self.currency.bytes().all(|b| b.is_ascii_uppercase()) {
            problems.push(format!("currency: {:?} is not a three-letter ISO 4217 code such as \"RUB\"", self.currency));
        }
        self.commission.check(&mut problems);
        let fine = self.fines.manager_fault;
        if fine < Decimal::ZERO || fine.scale() > 2 || fine > crate::money::AMOUNT_CAP {
            problems.push(format!(
                "fines.manager_fault: {fine} must be an amount >= 0 with at most 2 decimals (it is booked as a negative entry)"
            ));
        }
        self.plan.check(&mut problems);
        self.calendar.check(&mut problems);
        if problems.is_empty() {
            Ok(())
        } else {
            Err(SchemeProblems(problems))
        }
    }

    /// The working-day calendar this scheme describes. Call only on a checked scheme.
    pub fn calendar(&self) -> Calendar {
        let cal = &self.calendar;
        Calendar::new(
            cal.holidays.iter().filter_map(|s| MonthDay::parse(s)).collect(),
            cal.holidays_without_transfer.iter().filter_map(|s| MonthDay::parse(s)).collect(),
            cal.extra_holidays.iter().filter_map(|s| parse_date(s)),
            cal.extra_workdays.iter().filter_map(|s| parse_date(s)),
        )
    }

    /// The coefficient for an achievement of `actual / target` (target > 0), capped, exactly.
    /// `Proportional` means "the achievement itself", left unevaluated so that it stays exact.
    pub fn coefficient(&self, actual: Decimal, target: Decimal) -> Coefficient {
        let tier = self
            .plan
            .tiers
            .iter()
            .rev()
            .find(|t| actual >= t.from * target)
            .map(|t| t.coefficient)
            .unwrap_or(Coefficient::Fixed(Decimal::ZERO));
        match tier {
            Coefficient::Fixed(k) => Coefficient::Fixed(k.min(self.plan.cap)),
            Coefficient::Proportional if actual >= self.plan.cap * target => Coefficient::Fixed(self.plan.cap),
            Coefficient::Proportional => Coefficient::Proportional,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_scheme_is_valid_and_says_what_rules_md_says() {
        let s = Scheme::default_scheme();
        assert_eq!(s.currency, "RUB");
        assert_eq!(s.commission.prepaid_rate, Decimal::new(10, 3));
        assert_eq!(s.commission.on_time_rate, Decimal::new(8, 3));
        assert_eq!(s.commission.late_rate, Decimal::new(5, 3));
        assert_eq!(s.commission.grace_working_days, 10);
        assert_eq!(s.fines.manager_fault, Decimal::new(200000, 2));
        assert_eq!(s.plan.bonus_base, Decimal::new(2000000, 2));
        assert_eq!(s.plan.cap, Decimal::new(150, 2));
        assert_eq!(s.plan.metric, PlanMetric::Received);
        assert_eq!(s.plan.tiers.len(), 4);
        assert_eq!(s.calendar.holidays_without_transfer.len(), 8);
    }

    #[test]
    fn toml_round_trip() {
        let s = Scheme::default_scheme();
        assert_eq!(Scheme::from_toml(&s.to_toml()), Ok(s.clone()));
        assert_eq!(Scheme::from_json(&s.to_json()), Ok(s));
    }

    #[test]
    fn tiers_match_the_article_table() {
        let s = Scheme::default_scheme();
        let t = Decimal::new(100, 0);
        let coef = |a: i64| s.coefficient(Decimal::new(a, 0), t);
        assert_eq!(coef(49), Coefficient::Fixed(Decimal::ZERO));
        assert_eq!(coef(-5), Coefficient::Fixed(Decimal::ZERO));
        assert_eq!(coef(50), Coefficient::Fixed(Decimal::new(85, 2)));
        assert_eq!(coef(74), Coefficient::Fixed(Decimal::new(85, 2)));
        assert_eq!(coef(75), Coefficient::Fixed(Decimal::new(90, 2)));
        assert_eq!(coef(99), Coefficient::Fixed(Decimal::new(90, 2)));
        assert_eq!(coef(100), Coefficient::Proportional);
        assert_eq!(coef(149), Coefficient::Proportional);
        assert_eq!(coef(150), Coefficient::Fixed(Decimal::new(150, 2)));
        assert_eq!(coef(400), Coefficient::Fixed(Decimal::new(150, 2)));
    }

    #[test]
    fn check_names_every_problem() {
        let text = DEFAULT_SCHEME_TOML
            .replace("currency = \"RUB\"", "currency = \"rubles\"")
            .replace("late_rate = \"0.005\"", "late_rate = \"1.5\"")
            .replace("from = \"0.75\"", "from = \"0.40\"");
        let problems = Scheme::from_toml(&text).unwrap_err().0;
        assert_eq!(problems.len(), 3, "{problems:?}");
        assert!(problems[0].starts_with("currency:"));
        assert!(problems[1].starts_with("commission.late_rate:"));
        assert!(problems[2].starts_with("plan.tiers[2].from:"));
    }

    #[test]
    fn unknown_keys_and_bad_syntax_are_reported_with_their_place() {
        let err = Scheme::from_toml(&DEFAULT_SCHEME_TOML.replace("grace_working_days", "grace_days")).unwrap_err();
        assert!(err.to_string().contains("grace_days"), "{err}");
    }
}
