//! Exact `total`s for a message list from `message_counts` (kept by triggers,
//! see the `m0004_message_counts` migration): a list of one conversation,
//! optionally filtered on `message_type`, sums a few rows. Other filters fall
//! back to `COUNT(*)`.

use crate::feathers::sql::{TotalCounter, comparison};
use crate::feathers::{FieldType, Filter, Op, Typed};
use sea_orm::sea_query::{Alias, Condition, Expr, ExprTrait, Query, SelectStatement};

/// Counts for the message path bound to `channel`.
pub struct MessageCounter {
    pub channel: &'static str,
}

fn col(table: &str, name: &str) -> Expr {
    Expr::col((Alias::new(table), Alias::new(name)))
}

impl TotalCounter for MessageCounter {
    fn total_query(&self, tenant_id: Option<i64>, filters: &[Filter]) -> Option<SelectStatement> {
        let org = tenant_id?;
        let mut conversation = None;
        let mut cond = Condition::all();
        for filter in filters {
            match filter {
                Filter::Cmp {
                    field,
                    op: Op::Eq,
                    values,
                } if field == "conversation_id" && conversation.is_none() => {
                    match values.as_slice() {
                        [Typed::Int(id)] => conversation = Some(*id),
                        _ => return None,
                    }
                }
                Filter::Cmp { field, .. } if field == "organization_id" => {} // already the caller's
                Filter::Cmp { field, op, values }
                    if field == "message_type"
                        && matches!(op, Op::Eq | Op::Ne | Op::In | Op::Nin) =>
                {
                    cond = cond.add(comparison(
                        col("message_counts", "message_type"),
                        FieldType::String,
                        false,
                        *op,
                        values,
                    ));
                }
                _ => return None,
            }
        }
        let conversation = conversation?;
        // The path shows a conversation's messages only when it is of the path's channel.
        let mut of_channel = Query::select();
        of_channel
            .expr(Expr::val(1))
            .from(Alias::new("conversations"))
            .and_where(col("conversations", "id").eq(conversation))
            .and_where(col("conversations", "organization_id").eq(org))
            .and_where(col("conversations", "channel").eq(self.channel));
        let mut q = Query::select();
        q.expr_as(
            Expr::cust("CAST(COALESCE(SUM(n), 0) AS BIGINT)"),
            Alias::new("total"),
        )
        .from(Alias::new("message_counts"))
        .and_where(col("message_counts", "organization_id").eq(org))
        .and_where(col("message_counts", "conversation_id").eq(conversation))
        .and_where(Expr::exists(of_channel))
        .cond_where(cond);
        Some(q)
    }
}
