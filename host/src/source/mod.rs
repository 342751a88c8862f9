//! Sources: where records come from. The first is the Jushuitan ERP
//! outbound-order query.

pub mod jushuitan;
