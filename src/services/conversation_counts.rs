//! Exact `total`s for `/conversations` from the counts the database keeps
//! (see `migrations::current::COUNT_GROUPINGS`): a filter made only of conditions on
//! counted dimensions is answered by summing the rows of the smallest grouping
//! that holds all of them. Anything else falls back to `COUNT(*)`.

use crate::feathers::sql::{TotalCounter, comparison};
use crate::feathers::{FieldType, Filter, Op, Typed};
use migrations::current::COUNT_GROUPINGS as GROUPINGS;
use sea_orm::sea_query::{Alias, Condition, Expr, ExprTrait, Query, SelectStatement};
use std::collections::BTreeSet;

/// Conversation columns that are dimensions as they are, with their types.
const PLAIN: &[(&str, FieldType)] = &[
    ("status", FieldType::String),
    ("channel", FieldType::String),
    ("assigned_user_id", FieldType::Integer),
    ("assigned_ai_assistant_id", FieldType::Integer),
    ("pipeline_id", FieldType::Integer),
    ("pipeline_stage_id", FieldType::Integer),
];

pub struct ConversationCounter;

fn col(name: &str) -> Expr {
    Expr::col((Alias::new("conversation_counts"), Alias::new(name)))
}

/// The condition over `conversation_counts` equivalent to `filter`, and the
/// dimensions it needs; `None` when the filter is not made of counted dimensions.
fn translate(filter: &Filter, dims: &mut BTreeSet<&'static str>) -> Option<Condition> {
    match filter {
        Filter::And(parts) => parts
            .iter()
            .try_fold(Condition::all(), |c, f| Some(c.add(translate(f, dims)?))),
        Filter::Or(parts) => parts
            .iter()
            .try_fold(Condition::any(), |c, f| Some(c.add(translate(f, dims)?))),
        Filter::Cmp { field, .. } if field == "organization_id" => Some(Condition::all()), // already the caller's
        Filter::Cmp { field, op, values } if field == "unread_count" => {
            let unread = match (op, values.as_slice()) {
                (Op::Gt, [Typed::Int(0)])
                | (Op::Gte, [Typed::Int(1)])
                | (Op::Ne, [Typed::Int(0)]) => true,
                (Op::Eq, [Typed::Int(0)])
                | (Op::Lte, [Typed::Int(0)])
                | (Op::Lt, [Typed::Int(1)]) => false,
                _ => return None,
            };
            dims.insert("unread");
            Some(Condition::all().add(col("unread").eq(unread)))
        }
        Filter::Cmp { field, op, values } => {
            let (name, ty) = PLAIN.iter().find(|(n, _)| n == field)?;
            if !matches!(op, Op::Eq | Op::Ne | Op::In | Op::Nin) {
                return None;
            }
            dims.insert(name);
            let nullable = ty == &FieldType::Integer;
            Some(Condition::all().add(comparison(col(name), *ty, nullable, *op, values)))
        }
        Filter::Virtual { name, value } if name == "waitingResponseOnly" => match value {
            Typed::Bool(true) => {
                dims.insert("waiting");
                dims.insert("status");
                Some(
                    Condition::all()
                        .add(col("waiting").eq(true))
                        .add(col("status").eq("open")),
                )
            }
            _ => Some(Condition::all()),
        },
        _ => None,
    }
}

impl TotalCounter for ConversationCounter {
    fn total_query(&self, tenant_id: Option<i64>, filters: &[Filter]) -> Option<SelectStatement> {
        let org = tenant_id?;
        let mut dims = BTreeSet::new();
        let cond = translate(&Filter::And(filters.to_vec()), &mut dims)?;
        let grouping = GROUPINGS
            .iter()
            .enumerate()
            .filter(|(_, g)| dims.iter().all(|d| g.contains(d)))
            .min_by_key(|(_, g)| g.len())
            .map(|(i, _)| i as i32)?;
        let mut q = Query::select();
        q.expr_as(
            Expr::cust("CAST(COALESCE(SUM(n), 0) AS BIGINT)"),
            Alias::new("total"),
        )
        .from(Alias::new("conversation_counts"))
        .and_where(col("organization_id").eq(org))
        .and_where(col("grp").eq(grouping))
        .cond_where(cond);
        Some(q)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dims_of(filter: Filter) -> Option<BTreeSet<&'static str>> {
        let mut dims = BTreeSet::new();
        translate(&filter, &mut dims).map(|_| dims)
    }

    fn eq(field: &str, v: Typed) -> Filter {
        Filter::Cmp {
            field: field.into(),
            op: Op::Eq,
            values: vec![v],
        }
    }

    #[test]
    fn counted_filters_map_to_dimensions() {
        let f = Filter::And(vec![
            eq("status", Typed::Str("open".into())),
            eq("assigned_user_id", Typed::Null),
        ]);
        assert_eq!(
            dims_of(f).unwrap(),
            BTreeSet::from(["assigned_user_id", "status"])
        );
        let unread = Filter::Cmp {
            field: "unread_count".into(),
            op: Op::Gt,
            values: vec![Typed::Int(0)],
        };
        assert_eq!(dims_of(unread).unwrap(), BTreeSet::from(["unread"]));
    }

    #[test]
    fn other_filters_fall_back_to_count() {
        assert!(dims_of(eq("contact_id", Typed::Int(1))).is_none());
        let range = Filter::Cmp {
            field: "status".into(),
            op: Op::Gt,
            values: vec![Typed::Str("a".into())],
        };
        assert!(dims_of(range).is_none());
        let search = Filter::Virtual {
            name: "searchTerm".into(),
            value: Typed::Str("bo".into()),
        };
        assert!(dims_of(search).is_none());
    }
}
