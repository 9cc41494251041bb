//! The conformance fixture: `/people` and its profiles over one table, served by
//! the generic SQL adapter (see ../shared/feathers-conformance/README.md). Mounted
//! only with `conformance_fixture = true`.

use crate::feathers::{Access, Field, FieldType, Multi, Registry, Schema, SqlOptions, SqlService};
use sea_orm::DatabaseConnection;
use std::sync::Arc;

fn options() -> SqlOptions {
    SqlOptions::new(
        "people",
        Schema::new(
            "id",
            vec![
                Field::new("name", FieldType::String)
                    .nullable()
                    .query()
                    .like()
                    .write(),
                Field::new("age", FieldType::Number)
                    .nullable()
                    .query()
                    .write(),
                Field::new("created", FieldType::Boolean)
                    .nullable()
                    .query()
                    .write(),
            ],
        ),
    )
    .tenant("organization_id")
}

/// Mounts the five profile paths: `people` (no paging, no multi), `people-multi`,
/// `people-p1` `{1, max 2}`, `people-p3` `{3}`, `people-p10` `{10, max 100}`.
pub fn mount(registry: &mut Registry, db: &DatabaseConnection) {
    let service = |options: SqlOptions| Arc::new(SqlService::new(db.clone(), options));
    registry.use_service("people", Access::Authenticated, service(options()));
    registry.use_service(
        "people-multi",
        Access::Authenticated,
        service(options().multi(Multi::ALL)),
    );
    registry.use_service(
        "people-p1",
        Access::Authenticated,
        service(options().multi(Multi::ALL).paginate(1, Some(2))),
    );
    registry.use_service(
        "people-p3",
        Access::Authenticated,
        service(options().multi(Multi::ALL).paginate(3, None)),
    );
    registry.use_service(
        "people-p10",
        Access::Authenticated,
        service(options().multi(Multi::ALL).paginate(10, Some(100))),
    );
}
