//! Maps a Jushuitan outbound order (`orders.out.simple.query`) to the target
//! shape of seed 000: renames, `io_date` as `YYYYMMDD`, and the amount
//! recomputed exactly from the items.
//!
//! An ordinary order takes the fast path (`fast`): its fields are read
//! into a typed record and the rest of the order is skipped, not built
//! into a `Value` tree. Anything unusual (a missing or null field, `items:
//! null`, a bad number or date) goes through [`Mapping::map`], which the
//! fast path agrees with and which names the field at fault.

mod fast;

use ferry_sdk::{Decimal, FieldError, Mapping, Outcome, Output, Value, fields, json, money, time};
use serde::Deserialize;

/// Options (`[mapping.options]`).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct JushuitanOrders {
    /// Orders whose `status` is listed are skipped, with the reason kept.
    skip_statuses: Vec<String>,
}

impl Mapping for JushuitanOrders {
    const NAME: &'static str = "jushuitan-orders";
    const VERSION: &'static str = env!("CARGO_PKG_VERSION");
    const DESCRIPTION: &'static str = "Jushuitan outbound orders: renames, YYYYMMDD dates, exact amounts";

    fn from_options(options: &Value) -> Result<Self, String> {
        serde_json::from_value(options.clone()).map_err(|e| format!("jushuitan-orders options: {e}"))
    }

    fn map_fast(&self, record: &str) -> Option<Outcome> {
        fast::map(self, record)
    }

    fn map(&self, order: &Value) -> Result<Output, FieldError> {
        let id = fields::required_text(order, "o_id")?;
        let status = order.get("status").and_then(Value::as_str).unwrap_or_default();
        if let Some(reason) = self.skipped(status) {
            return Ok(Output::skip(reason));
        }
        let date = time::reformat(fields::required(order, "io_date")?, "io_date", "%Y%m%d")?;
        let mut amount = Decimal::ZERO;
        let mut detail = Vec::new();
        // The API sends `items: null` for some orders: the amount is then
        // what was paid less the freight (both may come as text).
        let items = match order.get("items") {
            Some(Value::Null) => {
                let paid = money::decimal(fields::required(order, "pay_amount")?, "pay_amount")?;
                let freight = match order.get("freight") {
                    None | Some(Value::Null) => Decimal::ZERO,
                    Some(f) => money::decimal(f, "freight")?,
                };
                amount = paid - freight;
                &[][..]
            }
            _ => fields::required_array(order, "items")?.as_slice(),
        };
        for (i, item) in items.iter().enumerate() {
            // Field paths are spelled out only for an error message.
            let field = |name: &str| format!("items[{i}].{name}");
            let qty_value = fields::required(item, "qty").map_err(|_| FieldError::missing(field("qty")))?;
            let qty = money::decimal(qty_value, "qty").or_else(|_| money::decimal(qty_value, &field("qty")))?;
            if qty.is_sign_negative() && !qty.is_zero() {
                let qty_field = field("qty");
                return Err(FieldError::new(&qty_field, format!("field `{qty_field}`: expected a quantity >= 0, got {qty}")));
            }
            let price_value = fields::required(item, "sale_price").map_err(|_| FieldError::missing(field("sale_price")))?;
            amount += qty * money::decimal(price_value, "sale_price").or_else(|_| money::decimal(price_value, &field("sale_price")))?;
            detail.push(json!({
                "product_id": item.get("sku_id").cloned().unwrap_or(Value::Null),
                "qty": item["qty"].clone(),
                "unit_price": price_value.clone(),
            }));
        }
        let mut out = ferry_sdk::Map::new();
        out.insert("id".into(), Value::String(id));
        fields::carry(order, &mut out, &["io_id", "so_id", "shop_id", "status", "modified"]);
        out.insert("name".into(), order.get("receiver_name").cloned().unwrap_or(Value::Null));
        out.insert("date".into(), Value::String(date));
        out.insert("amount".into(), money::to_json(amount, 2));
        out.insert("items_detail".into(), Value::Array(detail));
        Ok(Output::one(Value::Object(out)))
    }
}

impl JushuitanOrders {
    /// Why an order of `status` is skipped, if it is.
    fn skipped(&self, status: &str) -> Option<String> {
        self.skip_statuses.iter().any(|s| s == status).then(|| format!("status `{status}` is listed in skip_statuses"))
    }
}

ferry_sdk::plugin!(JushuitanOrders);
