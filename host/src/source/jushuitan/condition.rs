//! The scheme's `condition`: a filter applied to fetched rows before they
//! are mapped (`../shared/jushuitan-api.md`, "The QingYiYun scheme, beyond
//! the seed's block"). It is a list of AND-groups, OR-ed; each condition
//! names a field path, an operator (eq, neq, gt, egt, lt, elt, like,
//! notlike, between, notnull, isnull) and a value. A path into an array of
//! item rows (`items.qty`) tests each item row: by default the item rows
//! that no matching group accepts are removed and the record is kept if
//! one is left; in strict mode a record with any such item row is dropped
//! whole. A dropped record is counted and says which rule dropped it.
//!
//! ```json
//! "condition": [[{"field": "status", "logic": "eq", "value": "Confirmed"},
//!                {"field": "items.qty", "logic": "egt", "value": 2}],
//!               [{"field": "shop_id", "logic": "eq", "value": 0}]]
//! ```
//! or `{"strict": true, "groups": [...]}`.

use serde::Deserialize;
use serde_json::Value;
use std::cmp::Ordering;

/// One test.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Test {
    /// A dotted path; a first segment naming an array tests its rows.
    pub field: String,
    /// The operator.
    pub logic: Logic,
    /// What it compares with (`[low, high]` for `between`; none for the null tests).
    #[serde(default)]
    pub value: Value,
}

/// The operators of the scheme.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Logic {
    Eq,
    Neq,
    Gt,
    Egt,
    Lt,
    Elt,
    Like,
    Notlike,
    Between,
    Notnull,
    Isnull,
}

/// The block's `condition`, in either spelling.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum RawCondition {
    Groups(Vec<Vec<Test>>),
    Full {
        groups: Vec<Vec<Test>>,
        #[serde(default)]
        strict: bool,
    },
}

/// A checked condition.
#[derive(Debug, Clone)]
pub struct Condition {
    groups: Vec<Vec<Test>>,
    strict: bool,
}

/// What a condition does with one row.
#[derive(Debug, PartialEq)]
pub enum Verdict {
    /// Kept as it came.
    Keep,
    /// Kept with some item rows removed: the new text.
    Trimmed(String),
    /// Dropped, by this rule.
    Drop(String),
}

impl RawCondition {
    /// Checks operators against their values; errors name the group and test.
    pub fn compile(self) -> Result<Condition, String> {
        let (groups, strict) = match self {
            RawCondition::Groups(g) => (g, false),
            RawCondition::Full { groups, strict } => (groups, strict),
        };
        if groups.is_empty() || groups.iter().any(Vec::is_empty) {
            return Err("metadata.condition: expected at least one group of at least one test".into());
        }
        for (g, group) in groups.iter().enumerate() {
            for (t, test) in group.iter().enumerate() {
                let at = format!("metadata.condition[{g}][{t}] (`{}`)", test.field);
                match test.logic {
                    Logic::Between if !matches!(&test.value, Value::Array(a) if a.len() == 2) => {
                        return Err(format!("{at}: `between` takes [low, high], got {}", test.value));
                    }
                    Logic::Like | Logic::Notlike if !test.value.is_string() => return Err(format!("{at}: `like` takes a text pattern, got {}", test.value)),
                    Logic::Notnull | Logic::Isnull | Logic::Between | Logic::Like | Logic::Notlike => {}
                    _ if test.value.is_null() || test.value.is_array() || test.value.is_object() => {
                        return Err(format!("{at}: expected a text or number value, got {}", test.value));
                    }
                    _ => {}
                }
                if test.field.trim().is_empty() {
                    return Err(format!("{at}: `field` must name a field"));
                }
            }
        }
        Ok(Condition { groups, strict })
    }
}

/// A value as a number, when it is one (numbers often come as text).
fn number(v: &Value) -> Option<f64> {
    match v {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

fn text(v: &Value) -> String {
    v.as_str().map_or_else(|| v.to_string(), str::to_string)
}

/// Compares as numbers when both are, else as text (times sort as text).
fn compare(a: &Value, b: &Value) -> Option<Ordering> {
    match (number(a), number(b)) {
        (Some(x), Some(y)) => x.partial_cmp(&y),
        _ => Some(text(a).cmp(&text(b))),
    }
}

/// SQL `LIKE` with `%` (any run) and `_` (one character).
fn like(s: &str, pattern: &str) -> bool {
    let (s, p): (Vec<char>, Vec<char>) = (s.chars().collect(), pattern.chars().collect());
    // match[i][j]: s[..i] matches p[..j].
    let mut prev = vec![false; p.len() + 1];
    prev[0] = true;
    for j in 1..=p.len() {
        prev[j] = prev[j - 1] && p[j - 1] == '%';
    }
    for i in 1..=s.len() {
        let mut row = vec![false; p.len() + 1];
        for j in 1..=p.len() {
            row[j] = match p[j - 1] {
                '%' => row[j - 1] || prev[j],
                '_' => prev[j - 1],
                c => prev[j - 1] && c == s[i - 1],
            };
        }
        prev = row;
    }
    prev[p.len()]
}

impl Test {
    fn holds(&self, v: Option<&Value>) -> bool {
        let v = v.filter(|v| !v.is_null());
        match (self.logic, v) {
            (Logic::Isnull, v) => v.is_none() || v.is_some_and(|v| v.as_str() == Some("")),
            (Logic::Notnull, v) => v.is_some_and(|v| v.as_str() != Some("")),
            (_, None) => false,
            (Logic::Eq, Some(v)) => compare(v, &self.value) == Some(Ordering::Equal),
            (Logic::Neq, Some(v)) => compare(v, &self.value) != Some(Ordering::Equal),
            (Logic::Gt, Some(v)) => compare(v, &self.value) == Some(Ordering::Greater),
            (Logic::Egt, Some(v)) => matches!(compare(v, &self.value), Some(Ordering::Greater | Ordering::Equal)),
            (Logic::Lt, Some(v)) => compare(v, &self.value) == Some(Ordering::Less),
            (Logic::Elt, Some(v)) => matches!(compare(v, &self.value), Some(Ordering::Less | Ordering::Equal)),
            (Logic::Like, Some(v)) => like(&text(v), self.value.as_str().unwrap_or_default()),
            (Logic::Notlike, Some(v)) => !like(&text(v), self.value.as_str().unwrap_or_default()),
            (Logic::Between, Some(v)) => {
                let (lo, hi) = (&self.value[0], &self.value[1]);
                matches!(compare(v, lo), Some(Ordering::Greater | Ordering::Equal)) && matches!(compare(v, hi), Some(Ordering::Less | Ordering::Equal))
            }
        }
    }

    fn rule(&self) -> String {
        match self.logic {
            Logic::Isnull | Logic::Notnull => format!("{} {:?}", self.field, self.logic).to_lowercase(),
            _ => format!("{} {} {}", self.field, format!("{:?}", self.logic).to_lowercase(), self.value),
        }
    }
}

/// A path's value in `row`, or, for a path into an array of objects, the
/// array's name and the rest of the path.
enum Place<'a> {
    Value(Option<&'a Value>),
    Items(&'a str, &'a str),
}

fn place<'a>(row: &'a Value, path: &'a str) -> Place<'a> {
    let mut at = row;
    let mut rest = path;
    loop {
        let (head, tail) = rest.split_once('.').map_or((rest, None), |(h, t)| (h, Some(t)));
        match (at.get(head), tail) {
            (Some(Value::Array(_)), Some(tail)) if std::ptr::eq(at, row) => return Place::Items(head, tail),
            (Some(next), Some(tail)) => {
                at = next;
                rest = tail;
            }
            (v, None) => return Place::Value(v),
            (None, Some(_)) => return Place::Value(None),
        }
    }
}

fn get<'a>(v: &'a Value, path: &str) -> Option<&'a Value> {
    path.split('.').try_fold(v, |v, k| v.get(k))
}

impl Condition {
    /// Judges one row (its JSON text).
    pub fn judge(&self, raw: &str) -> Verdict {
        let Ok(mut row) = serde_json::from_str::<Value>(raw) else {
            // Not an object: the plugin rejects it, with its own reason.
            return Verdict::Keep;
        };
        // For each group whose record tests hold: the item tests it puts on each array.
        let mut first_failure = None;
        let mut kept: Vec<(String, Vec<bool>)> = Vec::new();
        let mut passed = false;
        for group in &self.groups {
            let mut ok = true;
            let mut items: Vec<(&str, Vec<&Test>, &str)> = Vec::new();
            for test in group {
                match place(&row, &test.field) {
                    Place::Value(v) if !test.holds(v) => {
                        ok = false;
                        first_failure.get_or_insert_with(|| test.rule());
                        break;
                    }
                    Place::Value(_) => {}
                    Place::Items(array, rest) => match items.iter_mut().find(|(a, _, _)| *a == array) {
                        Some((_, tests, _)) => tests.push(test),
                        None => items.push((array, vec![test], rest)),
                    },
                }
            }
            if !ok {
                continue;
            }
            let mut group_ok = true;
            let mut group_keep = Vec::new();
            for (array, tests, _) in &items {
                let rows = row[*array].as_array().map(Vec::as_slice).unwrap_or_default();
                let each: Vec<bool> = rows.iter().map(|r| tests.iter().all(|t| t.holds(get(r, t.field.split_once('.').map_or("", |(_, p)| p))))).collect();
                let fine = if self.strict { each.iter().all(|b| *b) } else { each.iter().any(|b| *b) };
                if !fine {
                    group_ok = false;
                    first_failure.get_or_insert_with(|| tests.iter().map(|t| t.rule()).collect::<Vec<_>>().join(" and "));
                    break;
                }
                group_keep.push((array.to_string(), each));
            }
            if !group_ok {
                continue;
            }
            passed = true;
            if group_keep.is_empty() {
                // A group without item tests keeps every item row.
                return Verdict::Keep;
            }
            // Item rows accepted by any passing group stay.
            for (array, each) in group_keep {
                match kept.iter_mut().find(|(a, _)| *a == array) {
                    Some((_, k)) => k.iter_mut().zip(each).for_each(|(k, e)| *k |= e),
                    None => kept.push((array, each)),
                }
            }
        }
        if !passed {
            let why = first_failure.unwrap_or_else(|| "no group matched".into());
            let strict = if self.strict { " (strict)" } else { "" };
            return Verdict::Drop(format!("condition{strict}: no group matched; first failed: {why}"));
        }
        let mut trimmed = false;
        for (array, keep) in kept {
            if let Some(rows) = row.get_mut(&array).and_then(Value::as_array_mut)
                && keep.iter().any(|k| !k)
            {
                let mut flags = keep.into_iter();
                rows.retain(|_| flags.next().unwrap_or(true));
                trimmed = true;
            }
        }
        if trimmed { Verdict::Trimmed(row.to_string()) } else { Verdict::Keep }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn cond(v: Value) -> Result<Condition, String> {
        serde_json::from_value::<RawCondition>(v).map_err(|e| e.to_string())?.compile()
    }

    /// AND within a group, OR across groups; numbers as text compare as numbers.
    #[test]
    fn groups_and_operators() {
        let c = cond(json!([[{"field": "status", "logic": "eq", "value": "Confirmed"}, {"field": "pay_amount", "logic": "egt", "value": 10}],
                             [{"field": "shop_id", "logic": "eq", "value": 0}]]))
        .unwrap();
        assert_eq!(c.judge(r#"{"status":"Confirmed","pay_amount":"10.00","shop_id":5}"#), Verdict::Keep);
        assert_eq!(c.judge(r#"{"status":"Cancelled","pay_amount":99,"shop_id":0}"#), Verdict::Keep);
        let Verdict::Drop(why) = c.judge(r#"{"status":"Cancelled","pay_amount":99,"shop_id":5}"#) else { panic!() };
        assert!(why.contains(r#"status eq "Confirmed""#), "{why}");
        for (logic, value, field, want) in [
            ("like", json!("%旗舰%"), json!("天猫旗舰店"), true),
            ("notlike", json!("%旗舰%"), json!("京东自营店"), true),
            ("like", json!("SO_1"), json!("SO21"), true),
            ("between", json!(["2024-01-01 00:00:00", "2024-01-31 23:59:59"]), json!("2024-01-15 08:00:00"), true),
            ("between", json!([1, 5]), json!("6"), false),
            ("lt", json!(3), json!(2.5), true),
            ("neq", json!("A"), json!("A"), false),
            ("isnull", Value::Null, Value::Null, true),
            ("notnull", Value::Null, json!(""), false),
        ] {
            let c = cond(json!([[{"field": "f", "logic": logic, "value": value}]])).unwrap();
            let row = json!({"f": field}).to_string();
            assert_eq!(c.judge(&row) == Verdict::Keep, want, "{logic} {value} on {field}");
        }
    }

    /// Item paths remove the item rows no group accepts; strict drops the record.
    #[test]
    fn item_rows_trimmed_or_strict() {
        let row = r#"{"o_id":1,"items":[{"sku_id":"A","qty":1},{"sku_id":"B","qty":3}]}"#;
        let loose = cond(json!([[{"field": "items.qty", "logic": "egt", "value": 2}]])).unwrap();
        let Verdict::Trimmed(t) = loose.judge(row) else { panic!() };
        assert_eq!(serde_json::from_str::<Value>(&t).unwrap()["items"], json!([{"sku_id": "B", "qty": 3}]));
        assert!(matches!(loose.judge(r#"{"items":[{"qty":1}]}"#), Verdict::Drop(_)), "no item row left");
        let strict = cond(json!({"strict": true, "groups": [[{"field": "items.qty", "logic": "egt", "value": 2}]]})).unwrap();
        let Verdict::Drop(why) = strict.judge(row) else { panic!() };
        assert!(why.contains("strict") && why.contains("items.qty egt 2"), "{why}");
        assert_eq!(strict.judge(r#"{"items":[{"qty":2},{"qty":5}]}"#), Verdict::Keep);
        // A group without item tests keeps every item row.
        let either = cond(json!([[{"field": "items.qty", "logic": "egt", "value": 2}], [{"field": "o_id", "logic": "eq", "value": 1}]])).unwrap();
        assert_eq!(either.judge(row), Verdict::Keep);
    }

    /// Bad conditions are refused at load, naming the test.
    #[test]
    fn bad_conditions_are_named() {
        let e = cond(json!([[{"field": "t", "logic": "between", "value": 3}]])).unwrap_err();
        assert!(e.contains("condition[0][0]") && e.contains("between"), "{e}");
        assert!(cond(json!([[{"field": "t", "logic": "about", "value": 3}]])).is_err());
        assert!(cond(json!([[{"field": "t", "logic": "eq"}]])).unwrap_err().contains("expected a text or number"));
        assert!(cond(json!([])).unwrap_err().contains("at least one group"));
    }
}
