//! A window's size as the API counts it (`is_get_total`), read for
//! reconciliation: one call per window and no rows, so a range whose count
//! agrees with Ferry's ledger costs one call a window.

use super::answer::Page;
use super::client::JushuitanClient;
use super::metadata::{Request, Vars};
use super::planner::Window;
use super::retry::SourceError;
use serde_json::Value;

impl JushuitanClient {
    /// How many rows the API says `window` holds.
    pub async fn count_window(&self, req: &Request, window: &Window) -> Result<u64, SourceError> {
        let (begin, end) = (crate::time::format_in(window.begin, &req.zone), crate::time::format_in(window.end, &req.zone));
        let mut biz = req.render(&Vars { last_sync_time: &begin, current_time: &end, page: 1 });
        if let Some(fields) = biz.as_object_mut() {
            fields.remove("start_ts");
            if let Some(cursor) = req.cursor.param() {
                fields.remove(cursor);
            }
            fields.insert("is_get_total".into(), Value::Bool(true));
        }
        let page: Page = self.call(&req.path(), &biz).await?;
        page.data_count().ok_or_else(|| SourceError::Protocol(format!("window {window}: asked for the total (is_get_total), the answer has no data_count")))
    }
}
