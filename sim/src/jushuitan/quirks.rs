//! Answers as they really come (`../shared/jushuitan-api.md`, "Answers as
//! they really come"): each a named mode, applied to a page after the
//! query ran, deterministic from the simulator's seed.
//!
//! Two kinds:
//! - **Spellings** change how a true answer is written, never what it says
//!   (`has_next` as 0/1 or text or absent, numbers as text, `null` texts and
//!   items, 64-bit `ts`, a 30 MB page). A client must read every one.
//! - **Lies** make an answer contradict itself or the request (a `null` or
//!   missing list, a short or empty page that says `has_next`, the previous
//!   page again, rows from another window, an HTML maintenance page). A
//!   client must notice and read again, never take one as the end.
//!
//! A rule's `rate` is the chance each answer is affected (1.0: every one);
//! spellings ignore it and apply to every answer.

use serde_json::{Map, Value, json};

/// The offset added to every `ts` by [`Quirk::BigTs`]: past 2^53, where a
/// double can no longer hold a row version exactly.
pub const BIG_TS_OFFSET: u64 = 1 << 60;

/// One way an answer can come.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, clap::ValueEnum)]
pub enum Quirk {
    /// `datas: null` on a page that has rows.
    NullList,
    /// No `datas` key at all.
    MissingList,
    /// `datas` as a string.
    WrongTypeList,
    /// The page's second half is dropped while `has_next` says true.
    ShortPage,
    /// An empty list with `has_next` true.
    EmptyPage,
    /// `has_next` true on every page.
    HasNextForever,
    /// The previous answer served again instead of this one.
    RepeatPage,
    /// The rows of another (earlier) window instead of this one's.
    OtherWindow,
    /// The page's last row replaced by one modified outside the window.
    OutsideRows,
    /// An HTML maintenance page with HTTP 200.
    Html,
    /// `has_next` as 0/1, "true"/"false", "1"/"0" or absent, in turn.
    HasNextSpellings,
    /// `qty`, `sale_price`, `sale_amount`, `pay_amount` as text, `freight`
    /// as text with two decimals.
    NumbersAsStrings,
    /// `receiver_name` and `shop_name` null on every third order, `items`
    /// null on every seventh.
    NullTexts,
    /// Every `ts` past 2^53 (the cursor is read back the same way).
    BigTs,
    /// The sync's first page with rows is 30 MB: each row carries a long
    /// `remark`.
    HugePage,
    /// Every fourth order ships as two outbound orders: one `o_id`, two
    /// `io_id`s, the same `modified` (the simulator's data, from the start).
    SplitShipments,
}

impl Quirk {
    /// The mode's name, as on the command line.
    pub fn name(self) -> String {
        clap::ValueEnum::to_possible_value(&self).map(|v| v.get_name().to_string()).unwrap_or_default()
    }

    /// Whether the mode only changes how a true answer is spelled.
    pub fn is_spelling(self) -> bool {
        matches!(self, Quirk::HasNextSpellings | Quirk::NumbersAsStrings | Quirk::NullTexts | Quirk::BigTs | Quirk::HugePage | Quirk::SplitShipments)
    }
}

/// A mode and how often it strikes.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct QuirkRule {
    /// The mode.
    pub quirk: Quirk,
    /// Chance per answer (lies only; spellings always apply).
    pub rate: f64,
}

impl std::str::FromStr for QuirkRule {
    type Err = String;
    /// `name` or `name:rate`, e.g. `null-list:0.2`.
    fn from_str(s: &str) -> Result<Self, String> {
        let (name, rate) = s.split_once(':').map_or((s, None), |(n, r)| (n, Some(r)));
        let quirk = <Quirk as clap::ValueEnum>::from_str(name.trim(), true).map_err(|_| {
            let known: Vec<String> = <Quirk as clap::ValueEnum>::value_variants().iter().map(|q| q.name()).collect();
            format!("unknown quirk `{name}`; known: {}", known.join(", "))
        })?;
        let rate = match rate {
            None => 1.0,
            Some(r) => {
                r.trim().parse::<f64>().ok().filter(|r| (0.0..=1.0).contains(r)).ok_or_else(|| format!("quirk rate `{r}` must be a number from 0 to 1"))?
            }
        };
        Ok(QuirkRule { quirk, rate })
    }
}

/// What the server needs from outside a page to apply a lie.
pub struct Context<'a> {
    /// The answer before this one (for [`Quirk::RepeatPage`]).
    pub previous: Option<&'a Value>,
    /// Rows of an earlier window, as JSON (for [`Quirk::OtherWindow`] and
    /// [`Quirk::OutsideRows`]).
    pub elsewhere: &'a [Value],
    /// How many answers came before (to turn `has_next`'s spelling).
    pub answer_no: u64,
    /// Whether this is the simulator's first page with rows.
    pub first_rows: bool,
}

fn rows(data: &mut Value) -> Option<&mut Vec<Value>> {
    data.get_mut("datas").and_then(Value::as_array_mut)
}

/// Applies a lie to `data` (a page's `data` object). Returns whether it
/// changed anything; [`Quirk::Html`] is the server's to apply.
pub fn lie(quirk: Quirk, data: &mut Value, cx: &Context<'_>) -> bool {
    let has_rows = rows(data).is_some_and(|r| !r.is_empty());
    match quirk {
        Quirk::NullList if has_rows => data["datas"] = Value::Null,
        Quirk::MissingList if has_rows => {
            data.as_object_mut().map(|m| m.remove("datas"));
        }
        Quirk::WrongTypeList if has_rows => data["datas"] = json!(""),
        Quirk::ShortPage if rows(data).is_some_and(|r| r.len() >= 2) => {
            let r = rows(data).expect("checked");
            r.truncate(r.len() / 2);
            data["has_next"] = json!(true);
        }
        Quirk::EmptyPage if has_rows => {
            data["datas"] = json!([]);
            data["has_next"] = json!(true);
        }
        Quirk::HasNextForever => data["has_next"] = json!(true),
        Quirk::RepeatPage => match cx.previous {
            Some(p) if p != data => *data = p.clone(),
            _ => return false,
        },
        Quirk::OtherWindow if has_rows && !cx.elsewhere.is_empty() => {
            let n = rows(data).map_or(0, |r| r.len());
            data["datas"] = Value::Array(cx.elsewhere.iter().take(n).cloned().collect());
        }
        Quirk::OutsideRows if has_rows && !cx.elsewhere.is_empty() => {
            let r = rows(data).expect("checked");
            *r.last_mut().expect("has rows") = cx.elsewhere[0].clone();
        }
        _ => return false,
    }
    true
}

/// Applies a spelling to `data`; `items`/texts stay the same order.
pub fn spell(quirk: Quirk, data: &mut Value, cx: &Context<'_>) {
    match quirk {
        Quirk::HasNextSpellings => {
            let next = data.get("has_next").and_then(Value::as_bool).unwrap_or(false);
            match cx.answer_no % 4 {
                0 => data["has_next"] = json!(u8::from(next)),
                1 => data["has_next"] = json!(next.to_string()),
                2 => data["has_next"] = json!(if next { "1" } else { "0" }),
                _ => {
                    data.as_object_mut().map(|m| m.remove("has_next"));
                }
            }
        }
        Quirk::BigTs | Quirk::SplitShipments => {}
        Quirk::HugePage if cx.first_rows => {
            let r = rows(data).expect("a page with rows");
            let each = 30 * 1024 * 1024 / r.len().max(1);
            for row in r {
                row["remark"] = Value::String("备注".repeat(each / 6));
            }
        }
        _ => {
            for row in rows(data).into_iter().flatten() {
                if let Some(order) = row.as_object_mut() {
                    spell_order(quirk, order);
                }
            }
        }
    }
}

fn as_text(v: &mut Value, places: Option<usize>) {
    if let Some(n) = v.as_f64().filter(|_| v.is_number()) {
        *v = Value::String(match places {
            Some(p) => format!("{n:.p$}"),
            None => v.to_string(),
        });
    }
}

fn spell_order(quirk: Quirk, order: &mut Map<String, Value>) {
    let o_id = order.get("o_id").and_then(Value::as_u64).unwrap_or(0);
    match quirk {
        Quirk::NumbersAsStrings => {
            if let Some(v) = order.get_mut("pay_amount") {
                as_text(v, None);
            }
            if let Some(v) = order.get_mut("freight") {
                as_text(v, Some(2));
            }
            for item in order.get_mut("items").and_then(Value::as_array_mut).into_iter().flatten() {
                for key in ["qty", "sale_price", "sale_amount"] {
                    if let Some(v) = item.get_mut(key) {
                        as_text(v, None);
                    }
                }
            }
        }
        Quirk::NullTexts => {
            if o_id.is_multiple_of(3) {
                order.insert("receiver_name".into(), Value::Null);
                order.insert("shop_name".into(), Value::Null);
            }
            if o_id.is_multiple_of(7) {
                order.insert("items".into(), Value::Null);
            }
        }
        _ => {}
    }
}

/// Adds [`BIG_TS_OFFSET`] to every row's `ts`.
pub fn big_ts(data: &mut Value) {
    for row in rows(data).into_iter().flatten() {
        if let Some(ts) = row.get("ts").and_then(Value::as_u64) {
            row["ts"] = json!(ts + BIG_TS_OFFSET);
        }
    }
}

/// The maintenance page a gateway answers with HTTP 200.
pub const MAINTENANCE_PAGE: &str =
    "<!DOCTYPE html><html><head><title>系统维护</title></head><body><h1>系统维护中，请稍后再试</h1><p>The service is under maintenance.</p></body></html>";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules_parse_with_and_without_a_rate() {
        assert_eq!("null-list".parse::<QuirkRule>().unwrap(), QuirkRule { quirk: Quirk::NullList, rate: 1.0 });
        assert_eq!("short-page:0.25".parse::<QuirkRule>().unwrap(), QuirkRule { quirk: Quirk::ShortPage, rate: 0.25 });
        assert!("nope".parse::<QuirkRule>().unwrap_err().contains("known: null-list"));
        assert!("html:2".parse::<QuirkRule>().unwrap_err().contains("from 0 to 1"));
    }

    #[test]
    fn lies_change_what_the_page_says_and_spellings_only_how() {
        let page = json!({"has_next": true, "datas": [{"o_id": 21, "qty": 1, "ts": 5, "pay_amount": 1.5, "freight": 8.0, "items": [{"qty": 2, "sale_price": 0.1}]}, {"o_id": 22, "ts": 6}]});
        let cx = Context { previous: None, elsewhere: &[json!({"o_id": 1})], answer_no: 0, first_rows: false };
        let mut short = page.clone();
        assert!(lie(Quirk::ShortPage, &mut short, &cx));
        assert_eq!((short["datas"].as_array().unwrap().len(), &short["has_next"]), (1, &json!(true)));
        let mut outside = page.clone();
        assert!(lie(Quirk::OutsideRows, &mut outside, &cx));
        assert_eq!(outside["datas"][1], json!({"o_id": 1}));
        assert!(!lie(Quirk::RepeatPage, &mut page.clone(), &cx), "nothing to repeat yet");
        let mut spelled = page.clone();
        spell(Quirk::NumbersAsStrings, &mut spelled, &cx);
        assert_eq!((&spelled["datas"][0]["freight"], &spelled["datas"][0]["items"][0]["sale_price"]), (&json!("8.00"), &json!("0.1")));
        let mut nulls = page.clone();
        spell(Quirk::NullTexts, &mut nulls, &cx);
        assert_eq!((&nulls["datas"][0]["items"], &nulls["datas"][1]["items"]), (&Value::Null, &Value::Null));
        let mut big = page;
        big_ts(&mut big);
        assert_eq!(big["datas"][1]["ts"].as_u64(), Some(BIG_TS_OFFSET + 6));
    }
}
