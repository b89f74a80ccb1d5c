//! The transaction items every store writes: puts, deletes and updates of
//! one item under a [`Cond`] (absent, at a version, owned by a resource, an
//! attribute unchanged), existence checks, uniqueness claims and counters.
//! Changes when a store needs a new kind of condition.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::{
    AttributeValue, ConditionCheck, Delete, Put, TransactWriteItem, Update,
};
use scim_proto::ids::TenantId;

use super::{ID, Item, Table, build_failed, key, n, s, stats_key};
use crate::StoreError;

/// The condition of one write, with the attribute names and values its
/// expression uses.
#[derive(Debug, Default)]
pub(crate) struct Cond {
    expression: String,
    names: HashMap<String, String>,
    values: Item,
}

impl Cond {
    fn new(expression: &str) -> Self {
        Self {
            expression: expression.to_owned(),
            ..Self::default()
        }
    }

    fn name(mut self, placeholder: &str, name: &str) -> Self {
        self.names.insert(placeholder.to_owned(), name.to_owned());
        self
    }

    fn value(mut self, placeholder: &str, value: AttributeValue) -> Self {
        self.values.insert(placeholder.to_owned(), value);
        self
    }

    /// Only if no item has the key.
    pub(crate) fn absent() -> Self {
        Self::new("attribute_not_exists(pk)")
    }

    /// Only over version `expected` (optimistic concurrency).
    pub(crate) fn version(expected: u64) -> Self {
        Self::new("#v = :v")
            .name("#v", "version")
            .value(":v", n(expected))
    }

    /// Only if the item points at `owner` (a claim we hold, never another
    /// resource's).
    pub(crate) fn owned_by(owner: &str) -> Self {
        Self::new("#id = :id")
            .name("#id", ID)
            .value(":id", s(owner))
    }

    /// Only if the item is absent or already points at `owner`.
    pub(crate) fn absent_or_owned_by(owner: &str) -> Self {
        Self::new("attribute_not_exists(pk) OR #id = :id")
            .name("#id", ID)
            .value(":id", s(owner))
    }

    /// Only if attribute `name` still holds `value` (is still absent, for
    /// `None`; an absent item passes).
    pub(crate) fn unchanged(name: &str, value: Option<&str>) -> Self {
        let cond = match value {
            Some(value) => Self::new("#a = :a").value(":a", s(value)),
            None => Self::new("attribute_not_exists(#a)"),
        };
        cond.name("#a", name)
    }

    /// The expression, names and values as the SDK builders take them
    /// (DynamoDB refuses empty name or value maps).
    #[allow(clippy::type_complexity)]
    fn into_parts(
        cond: Option<Self>,
    ) -> (
        Option<String>,
        Option<HashMap<String, String>>,
        Option<Item>,
    ) {
        match cond {
            None => (None, None, None),
            Some(c) => (
                Some(c.expression),
                (!c.names.is_empty()).then_some(c.names),
                (!c.values.is_empty()).then_some(c.values),
            ),
        }
    }
}

impl Table {
    /// Put of `item`, under `cond` if given.
    pub(crate) fn put(
        &self,
        item: Item,
        cond: Option<Cond>,
    ) -> Result<TransactWriteItem, StoreError> {
        let (expression, names, values) = Cond::into_parts(cond);
        let put = Put::builder()
            .table_name(&self.name)
            .set_item(Some(item))
            .set_condition_expression(expression)
            .set_expression_attribute_names(names)
            .set_expression_attribute_values(values)
            .build()
            .map_err(build_failed)?;
        Ok(TransactWriteItem::builder().put(put).build())
    }

    /// Delete of `key`, under `cond` if given.
    pub(crate) fn delete(
        &self,
        key: Item,
        cond: Option<Cond>,
    ) -> Result<TransactWriteItem, StoreError> {
        let (expression, names, values) = Cond::into_parts(cond);
        let del = Delete::builder()
            .table_name(&self.name)
            .set_key(Some(key))
            .set_condition_expression(expression)
            .set_expression_attribute_names(names)
            .set_expression_attribute_values(values)
            .build()
            .map_err(build_failed)?;
        Ok(TransactWriteItem::builder().delete(del).build())
    }

    /// `SET` of `set` (attribute, value) on `key` (created if absent),
    /// under `cond` if given.
    pub(crate) fn update(
        &self,
        key: Item,
        set: Vec<(&str, AttributeValue)>,
        cond: Option<Cond>,
    ) -> Result<TransactWriteItem, StoreError> {
        let mut assignments = Vec::with_capacity(set.len());
        let mut names = HashMap::new();
        let mut values = Item::new();
        for (i, (attr, v)) in set.into_iter().enumerate() {
            assignments.push(format!("#s{i} = :s{i}"));
            names.insert(format!("#s{i}"), attr.to_owned());
            values.insert(format!(":s{i}"), v);
        }
        let (expression, cond_names, cond_values) = Cond::into_parts(cond);
        names.extend(cond_names.unwrap_or_default());
        values.extend(cond_values.unwrap_or_default());
        let update = Update::builder()
            .table_name(&self.name)
            .set_key(Some(key))
            .update_expression(format!("SET {}", assignments.join(", ")))
            .set_condition_expression(expression)
            .set_expression_attribute_names(Some(names))
            .set_expression_attribute_values(Some(values))
            .build()
            .map_err(build_failed)?;
        Ok(TransactWriteItem::builder().update(update).build())
    }

    /// A transaction item that writes nothing and fails unless `key` exists.
    pub(crate) fn exists(&self, key: Item) -> Result<TransactWriteItem, StoreError> {
        let check = ConditionCheck::builder()
            .table_name(&self.name)
            .set_key(Some(key))
            .condition_expression("attribute_exists(pk)")
            .build()
            .map_err(build_failed)?;
        Ok(TransactWriteItem::builder().condition_check(check).build())
    }

    /// A uniqueness claim: `(pk, value)` pointing at `owner`, written only
    /// if nobody holds it.
    pub(crate) fn claim(
        &self,
        pk: String,
        value: &str,
        owner: &str,
    ) -> Result<TransactWriteItem, StoreError> {
        let mut item = key(pk, value);
        item.insert(ID.into(), s(owner));
        self.put(item, Some(Cond::absent()))
    }

    /// `ADD <counter> delta` on the tenant's stats item.
    pub(crate) fn count_delta(
        &self,
        tenant: &TenantId,
        counter: &str,
        delta: i64,
    ) -> Result<TransactWriteItem, StoreError> {
        let update = Update::builder()
            .table_name(&self.name)
            .set_key(Some(stats_key(tenant)))
            .update_expression("ADD #c :d")
            .expression_attribute_names("#c", counter)
            .expression_attribute_values(":d", n(delta))
            .build()
            .map_err(build_failed)?;
        Ok(TransactWriteItem::builder().update(update).build())
    }
}
