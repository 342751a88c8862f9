//! The seed's QingYiYun metadata block, accepted verbatim, and the
//! rendering of its `request[]` templates into the `biz` JSON of one call.
//! Its `api` picks the API's profile (`profile`); what the block asks that
//! the profile cannot honour is clamped with a warning or refused here,
//! naming the key.

use super::profile::Cursor;
use serde::Deserialize;
use serde_json::{Map, Value};
use std::time::Duration;

/// The outbound query's largest page (the default page size).
pub const MAX_PAGE_SIZE: u32 = 50;

/// The metadata block (`[source.metadata]`), as QingYiYun writes it.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Metadata {
    /// API name, e.g. `orders.out.simple.query`.
    pub api: String,
    /// HTTP method; the new gateway takes `POST`.
    #[serde(default = "post")]
    pub method: String,
    /// The field that numbers a record (kept for compatibility).
    #[serde(default)]
    pub number: Option<String>,
    /// The field that identifies a record (default: the profile's; `o_id`
    /// for the outbound query, as the seed).
    #[serde(default)]
    pub id: Option<String>,
    /// The key of the rows in `data`, for an API Ferry has no profile of
    /// (or to override the profile's).
    #[serde(default)]
    pub list: Option<String>,
    /// The row-version cursor of an API Ferry has no profile of:
    /// `start_ts`, `ts` or `none` (the default).
    #[serde(default)]
    pub cursor: Option<String>,
    /// Paging.
    #[serde(default)]
    pub pagination: Pagination,
    /// De-duplicate by `id` + `modified` against what was delivered.
    #[serde(default = "yes", rename = "idCheck")]
    pub id_check: bool,
    /// The business parameters.
    #[serde(default)]
    pub request: Vec<RequestField>,
    /// A filter applied to fetched rows before mapping (`condition`).
    #[serde(default)]
    pub condition: Option<super::condition::RawCondition>,
    /// A schedule that re-reads a past range (`omissionRemedy`).
    #[serde(default, rename = "omissionRemedy")]
    pub omission_remedy: Option<super::remedy::RawRemedy>,
    /// One record per element of this child array (`beatFlat`).
    #[serde(default, rename = "beatFlat")]
    pub beat_flat: Option<String>,
}

/// `pagination` of the metadata.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Pagination {
    /// Rows per page; clamped to the API's 50.
    #[serde(rename = "pageSize", default = "fifty")]
    pub page_size: u32,
}

impl Default for Pagination {
    fn default() -> Self {
        Pagination { page_size: MAX_PAGE_SIZE }
    }
}

/// One business parameter.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RequestField {
    /// The parameter name.
    pub field: String,
    /// Human label.
    #[serde(default)]
    pub label: Option<String>,
    /// Declared type (informational; the API takes strings and numbers).
    #[serde(default, rename = "type")]
    pub kind: Option<String>,
    /// Fixed value or template; absent means the parameter is not sent.
    #[serde(default)]
    pub value: Option<Value>,
    /// How to turn the value into what the API wants.
    #[serde(default)]
    pub parser: Option<ParserSpec>,
}

/// `parser` of a request field.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ParserSpec {
    /// Only `StringToArray` is known.
    pub name: String,
    /// Its parameter (the separator).
    #[serde(default)]
    pub params: Option<String>,
}

fn post() -> String {
    "POST".into()
}
fn yes() -> bool {
    true
}
fn fifty() -> u32 {
    MAX_PAGE_SIZE
}

/// One piece of a value template.
#[derive(Debug, Clone, PartialEq)]
enum Piece {
    Text(String),
    LastSyncTime,
    CurrentTime,
    StartPage,
    PageSize,
}

/// A request field ready to render.
#[derive(Debug, Clone)]
struct Compiled {
    field: String,
    pieces: Vec<Piece>,
    literal: Option<Value>,
    split: Option<String>,
}

/// Validated metadata: templates parsed, page size clamped.
#[derive(Debug, Clone)]
pub struct Request {
    /// API name.
    pub api: String,
    /// What it lists (`outbound orders`).
    pub object: String,
    /// The key of the rows in `data`.
    pub list_key: String,
    /// The row-version cursor it takes.
    pub cursor: Cursor,
    /// The longest `modified` window it takes.
    pub max_span: Duration,
    /// Record id field.
    pub id_field: String,
    /// The API's own unique row key, when the id field is not it (rows are
    /// then told apart by it too).
    pub row_key: Option<String>,
    /// idCheck on or off.
    pub id_check: bool,
    /// Effective page size (≤ the API's maximum).
    pub page_size: u32,
    /// The zone the API's times are written in (`source.time_zone`).
    pub zone: jiff::tz::TimeZone,
    /// The scheme's filter, applied after fetching.
    pub condition: Option<super::condition::Condition>,
    /// The scheme's re-read schedule.
    pub omission_remedy: Option<super::remedy::Remedy>,
    /// The scheme's `beatFlat` array, if any.
    pub beat_flat: Option<String>,
    fields: Vec<Compiled>,
}

/// What one call's templates are filled with.
#[derive(Debug, Clone)]
pub struct Vars<'a> {
    /// `{{LAST_SYNC_TIME|datetime}}`: the window's begin.
    pub last_sync_time: &'a str,
    /// `{{CURRENT_TIME|datetime}}`: the window's end.
    pub current_time: &'a str,
    /// `{PAGINATION_START_PAGE}`.
    pub page: u32,
}

impl Metadata {
    /// Validates templates and parsers; returns warnings (such as the page
    /// size clamp) next to the result. Errors name the field and the
    /// unknown template or parser.
    pub fn compile(&self) -> Result<(Request, Vec<String>), String> {
        let mut warnings = Vec::new();
        if !self.method.eq_ignore_ascii_case("POST") {
            return Err(format!("metadata.method: the Jushuitan gateway takes POST, got `{}`", self.method));
        }
        let (profile, list_key, cursor) = self.profile()?;
        let max_page = profile.max_page;
        let page_size = if self.pagination.page_size > max_page {
            warnings.push(format!(
                "metadata.pagination.pageSize = {} is above the maximum of {} ({max_page}); using {max_page}",
                self.pagination.page_size, self.api
            ));
            max_page
        } else if self.pagination.page_size == 0 {
            return Err(format!("metadata.pagination.pageSize: expected 1 to {max_page}, got 0"));
        } else {
            self.pagination.page_size
        };
        let mut fields = Vec::new();
        for (i, f) in self.request.iter().enumerate() {
            let at = format!("metadata.request[{i}] (`{}`)", f.field);
            let split = match &f.parser {
                None => None,
                Some(p) if p.name == "StringToArray" => Some(p.params.clone().unwrap_or_else(|| ",".into())),
                Some(p) => return Err(format!("{at}: unknown parser `{}` (known: StringToArray)", p.name)),
            };
            let (pieces, literal) = match &f.value {
                None => continue,
                Some(Value::String(s)) => (parse_template(s).map_err(|e| format!("{at}: {e}"))?, None),
                Some(v @ (Value::Number(_) | Value::Bool(_))) => (Vec::new(), Some(v.clone())),
                Some(other) => return Err(format!("{at}: expected a text, number or boolean value, got {other}")),
            };
            if let (Some(limit), Some(sep), Some(Value::String(text))) = (profile.id_filter(&f.field), &split, &f.value) {
                let n = text.split(sep.as_str()).filter(|s| !s.trim().is_empty()).count();
                if n > limit {
                    return Err(format!("{at}: {} takes at most {limit} ids, the value lists {n}", self.api));
                }
            }
            fields.push(Compiled { field: f.field.clone(), pieces, literal, split });
        }
        let has = |p: Piece| fields.iter().any(|f| f.pieces.contains(&p));
        if !has(Piece::LastSyncTime) || !has(Piece::CurrentTime) {
            warnings.push("metadata.request has no {{LAST_SYNC_TIME|datetime}} / {{CURRENT_TIME|datetime}} fields; ferry adds modified_begin / modified_end for each window".into());
        }
        let id = self.id.clone().unwrap_or_else(|| if self.api == "orders.out.simple.query" { "o_id".into() } else { profile.id.into() });
        let row_key = profile.row_key(&id).map(String::from);
        if let Some(k) = row_key.as_ref().filter(|_| self.api == "orders.out.simple.query") {
            warnings.push(format!(
                "metadata.id = `{}` is not unique in {}: one order ships as several outbound orders, each its own `{k}`, at times in the same second. \
                 Ferry keeps every one apart (idCheck by `{}` + `modified` + `{k}`), but the target receives them under one id and keeps the last; \
                 to keep each, set \"id\": \"{k}\" in the metadata and have the mapping write `{k}` as the record id (docs/plugins.md, \"Split shipments\")",
                id, self.api, id
            ));
        }
        let request = Request {
            api: self.api.clone(),
            object: profile.object.to_string(),
            list_key,
            cursor,
            max_span: profile.max_span,
            id_field: id,
            row_key,
            id_check: self.id_check,
            page_size,
            zone: crate::time::shanghai().clone(),
            condition: self.condition.clone().map(super::condition::RawCondition::compile).transpose()?,
            omission_remedy: self.omission_remedy.as_ref().map(super::remedy::RawRemedy::compile).transpose()?,
            beat_flat: match self.beat_flat.as_deref().map(str::trim) {
                Some("") => return Err("metadata.beatFlat: expected the path of a child array, such as \"items\"".into()),
                other => other.map(String::from),
            },
            fields,
        };
        Ok((request, warnings))
    }
}

fn parse_template(s: &str) -> Result<Vec<Piece>, String> {
    let mut pieces = Vec::new();
    let mut rest = s;
    while !rest.is_empty() {
        let Some(open) = rest.find('{') else {
            pieces.push(Piece::Text(rest.to_string()));
            break;
        };
        let double = rest[open..].starts_with("{{");
        let close = if double { "}}" } else { "}" };
        if open > 0 {
            pieces.push(Piece::Text(rest[..open].to_string()));
        }
        let start = open + if double { 2 } else { 1 };
        let end = rest[start..].find(close).ok_or_else(|| format!("template `{s}`: `{{` is never closed"))? + start;
        let name = rest[start..end].trim();
        pieces.push(match (double, name) {
            (true, "LAST_SYNC_TIME|datetime") => Piece::LastSyncTime,
            (true, "CURRENT_TIME|datetime") => Piece::CurrentTime,
            (false, "PAGINATION_START_PAGE") => Piece::StartPage,
            (false, "PAGINATION_PAGE_SIZE") => Piece::PageSize,
            (true, n) if n.starts_with("LAST_SYNC_TIME") || n.starts_with("CURRENT_TIME") => {
                return Err(format!("template `{s}`: unknown formatter in `{n}` (known: datetime)"));
            }
            _ => {
                return Err(format!(
                    "template `{s}`: unknown template `{name}` (known: {{{{LAST_SYNC_TIME|datetime}}}}, {{{{CURRENT_TIME|datetime}}}}, {{PAGINATION_START_PAGE}}, {{PAGINATION_PAGE_SIZE}})"
                ));
            }
        });
        rest = &rest[end + close.len()..];
    }
    Ok(pieces)
}

impl Request {
    /// The `biz` object of one call. Pagination placeholders that stand alone
    /// become numbers; `StringToArray` fields become arrays; missing window
    /// fields are added.
    pub fn render(&self, vars: &Vars<'_>) -> Value {
        let mut biz = Map::new();
        for f in &self.fields {
            let value = if let Some(v) = &f.literal {
                v.clone()
            } else if let [Piece::StartPage] = f.pieces.as_slice() {
                Value::from(vars.page)
            } else if let [Piece::PageSize] = f.pieces.as_slice() {
                Value::from(self.page_size)
            } else {
                let text: String = f
                    .pieces
                    .iter()
                    .map(|p| match p {
                        Piece::Text(t) => t.clone(),
                        Piece::LastSyncTime => vars.last_sync_time.to_string(),
                        Piece::CurrentTime => vars.current_time.to_string(),
                        Piece::StartPage => vars.page.to_string(),
                        Piece::PageSize => self.page_size.to_string(),
                    })
                    .collect();
                match &f.split {
                    Some(sep) => Value::Array(text.split(sep.as_str()).map(str::trim).filter(|s| !s.is_empty()).map(|s| Value::String(s.into())).collect()),
                    None => Value::String(text),
                }
            };
            if matches!(&value, Value::String(s) if s.is_empty()) || matches!(&value, Value::Array(a) if a.is_empty()) {
                continue;
            }
            biz.insert(f.field.clone(), value);
        }
        biz.entry("modified_begin").or_insert_with(|| Value::String(vars.last_sync_time.into()));
        biz.entry("modified_end").or_insert_with(|| Value::String(vars.current_time.into()));
        biz.entry("page_index").or_insert_with(|| Value::from(vars.page));
        biz.entry("page_size").or_insert_with(|| Value::from(self.page_size));
        Value::Object(biz)
    }

    /// The gateway path of the API, e.g. `/open/orders/out/simple/query`.
    pub fn path(&self) -> String {
        super::profile::path_of(&self.api)
    }
}

/// The seed's metadata block, verbatim.
pub const SEED_METADATA: &str = r#"{
  "api": "orders.out.simple.query",
  "method": "POST",
  "number": "o_id",
  "id": "o_id",
  "pagination": {"pageSize": 100},
  "idCheck": true,
  "request": [
    {"field":"shop_id","label":"店铺编码","type":"string"},
    {"field":"is_offline_shop","label":"shop_id为0且is_offline_shop为true查询线下店铺单据","type":"string"},
    {"field":"status","label":"单据状态","type":"string","value":"Confirmed"},
    {"field":"modified_begin","label":"修改开始时间","type":"string","value":"{{LAST_SYNC_TIME|datetime}}"},
    {"field":"modified_end","label":"修改结束时间","type":"string","value":"{{CURRENT_TIME|datetime}}"},
    {"field":"so_ids","label":"线上单号","type":"string","parser":{"name":"StringToArray","params":","}},
    {"field":"page_index","label":"页数","type":"string","value":"{PAGINATION_START_PAGE}"},
    {"field":"page_size","label":"每页行数","type":"string","value":"{PAGINATION_PAGE_SIZE}"}
  ]
}"#;

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn compile(meta: Value) -> Result<(Request, Vec<String>), String> {
        serde_json::from_value::<Metadata>(meta).map_err(|e| e.to_string())?.compile()
    }

    #[test]
    fn seed_block_renders() {
        let (req, warnings) = compile(serde_json::from_str(SEED_METADATA).unwrap()).unwrap();
        assert_eq!(req.page_size, 50);
        assert!(warnings[0].contains("pageSize = 100") && warnings[0].contains("using 50"), "{warnings:?}");
        let biz = req.render(&Vars { last_sync_time: "2024-01-01 00:00:00", current_time: "2024-01-02 00:00:00", page: 3 });
        assert_eq!(
            biz,
            json!({"status": "Confirmed", "modified_begin": "2024-01-01 00:00:00", "modified_end": "2024-01-02 00:00:00", "page_index": 3, "page_size": 50})
        );
        assert_eq!(req.path(), "/open/orders/out/simple/query");
    }

    #[test]
    fn string_to_array_and_fixed_values() {
        let (req, _) = compile(json!({"api": "orders.out.simple.query", "request": [
            {"field": "so_ids", "value": "A1, B2,,C3", "parser": {"name": "StringToArray", "params": ","}},
            {"field": "shop_id", "value": 12}
        ]}))
        .unwrap();
        let biz = req.render(&Vars { last_sync_time: "a", current_time: "b", page: 1 });
        assert_eq!(biz["so_ids"], json!(["A1", "B2", "C3"]));
        assert_eq!(biz["shop_id"], json!(12));
        assert_eq!(biz["modified_begin"], json!("a"));
    }

    #[test]
    fn unknown_templates_and_parsers_are_named() {
        let bad = |value: &str| compile(json!({"api": "sku.query", "request": [{"field": "f", "value": value}]})).unwrap_err();
        assert!(bad("{{NOW|datetime}}").contains("unknown template `NOW|datetime`"));
        assert!(bad("{{LAST_SYNC_TIME|date}}").contains("unknown formatter"));
        assert!(bad("{PAGE}").contains("unknown template `PAGE`"));
        assert!(bad("{{LAST_SYNC_TIME|datetime").contains("never closed"));
        let err = compile(json!({"api": "sku.query", "request": [{"field": "f", "parser": {"name": "Split"}}]})).unwrap_err();
        assert!(err.contains("unknown parser `Split`") && err.contains("request[0]"), "{err}");
        let err = compile(json!({"api": "x", "colour": 1})).unwrap_err();
        assert!(err.contains("unknown field `colour`"), "{err}");
    }
}
