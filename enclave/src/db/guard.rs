//! Guards that keep the read from being redirected inside the database by the exchange's own
//! administrators: what the configured query may name (schema-qualified relations, no functions
//! outside `pg_catalog`), what those relations must be (ordinary tables, or partitioned and
//! inheritance parents where the configuration allows them; no rules; no row security), that the
//! plan PostgreSQL makes reads only those relations, and that no function shadows one the
//! identity query calls. The transaction's own settings (`search_path`, `row_security`) are set
//! by [`super::session`]; this module checks what those settings cannot.

use std::collections::BTreeSet;
use std::ops::ControlFlow;

use attestation::manifest::{Relation, RelationKind};
use serde::Deserialize;
use sqlparser::ast::{Expr, ObjectName, ObjectNamePart, Query, Visit, Visitor};
use sqlparser::dialect::PostgreSqlDialect;
use sqlparser::parser::Parser;
use tokio_postgres::types::ToSql;
use tokio_postgres::Transaction;

/// The statements that fix the transaction's name resolution and row security before anything
/// else runs in it: every unqualified name resolves in `pg_catalog` (and the session's own
/// temporary schema last, where PostgreSQL never looks for functions), and a read that a row
/// policy would filter fails instead of shrinking.
///
/// The others undo what a role or database default (`ALTER ROLE … SET`) could change about the
/// meaning of the pinned query: how string literals are read, `= NULL`, dates and numbers.
pub const TRANSACTION_SETTINGS: &str = "SET LOCAL search_path = pg_catalog, pg_temp; SET LOCAL row_security = off; \
     SET LOCAL standard_conforming_strings = on; SET LOCAL transform_null_equals = off; \
     SET LOCAL backslash_quote = safe_encoding; SET LOCAL array_nulls = on; SET LOCAL TimeZone = 'UTC'; \
     SET LOCAL DateStyle = 'ISO, YMD'; SET LOCAL IntervalStyle = 'postgres'; SET LOCAL extra_float_digits = 1";

/// Functions the identity query calls: none of these names may exist outside `pg_catalog`.
pub const IDENTITY_FUNCTIONS: [&str; 11] = [
    "pg_control_system",
    "pg_control_checkpoint",
    "pg_is_in_recovery",
    "pg_current_wal_lsn",
    "pg_last_wal_replay_lsn",
    "pg_current_snapshot",
    "current_setting",
    "current_database",
    "to_char",
    "statement_timestamp",
    "timezone",
];

/// Which kinds of parent relation the configuration allows the query to read through.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Allowances {
    /// A partitioned table (its partitions are checked and recorded too).
    pub partitioned: bool,
    /// An inheritance parent (its children are checked and recorded too).
    pub inheritance: bool,
}

/// Why the query or the relations it reads are refused.
#[allow(missing_docs)] // fields are named for what they hold
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum GuardError {
    /// The query does not parse as one PostgreSQL `SELECT`.
    #[error("the query does not parse as one PostgreSQL SELECT: {0}")]
    Parse(String),
    /// A relation named without its schema.
    #[error(
        "the query names the relation {name:?} without a schema; name it schema-qualified (for example \
         public.{name}), since an unqualified name resolves through the reader's search_path{}",
        candidates_note(.candidates)
    )]
    Unqualified { name: String, candidates: Vec<String> },
    /// A relation named with more or fewer parts than `schema.name`.
    #[error("the query names {0:?}; relations must be named schema.relation")]
    BadName(String),
    /// A function outside `pg_catalog`.
    #[error("the query calls {0}, a function outside pg_catalog whose definition the database's administrators can change; only built-in functions are allowed")]
    Function(String),
    /// A named relation that does not exist.
    #[error("the query names {0}, which does not exist (or the reader cannot see it)")]
    Missing(String),
    /// A relation of a kind that is not read.
    #[error("{name} is a {kind}, not an ordinary table{}", allow_note(.option))]
    Kind { name: String, kind: &'static str, option: Option<&'static str> },
    /// A relation with rules.
    #[error("{0} has rewrite rules (pg_rewrite), which can change what a read returns")]
    Rules(String),
    /// A relation with row-level security enabled.
    #[error("{name} has row-level security enabled (policies: {}); it could filter what the reader sees", policy_list(.policies))]
    RowSecurity { name: String, policies: Vec<String> },
    /// The plan or the read reached a relation that was not checked.
    #[error("the read reaches {0}, which the query does not name as a checked table (a view, rule, partition attached mid-read, or a function in between?)")]
    Unchecked(String),
    /// A function shadows one of pg_catalog's that the identity query calls.
    #[error("the function {0} shadows the built-in one the identity read calls: someone tried to make the database report another identity")]
    Shadowing(String),
    /// The session switched roles after logging in.
    #[error(
        "the session logged in as {session} but reads as {current} (a `SET role` default on the role or database?)"
    )]
    RoleSwitched { session: String, current: String },
    /// A catalog answer this code does not understand.
    #[error("the catalog: {0}")]
    Catalog(String),
}

fn candidates_note(candidates: &[String]) -> String {
    if candidates.is_empty() {
        String::new()
    } else {
        format!("; relations of that name: {}", candidates.join(", "))
    }
}

fn allow_note(option: &Option<&'static str>) -> String {
    option.map(|o| format!(" (allowed only with `{o} = true` in [database])")).unwrap_or_default()
}

fn policy_list(policies: &[String]) -> String {
    if policies.is_empty() {
        "none yet".into()
    } else {
        policies.join(", ")
    }
}

/// A relation as the query names it.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct QualifiedName {
    /// Schema, as PostgreSQL stores it (unquoted identifiers folded to lower case).
    pub schema: String,
    /// Name, likewise.
    pub name: String,
}

impl std::fmt::Display for QualifiedName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{}", self.schema, self.name)
    }
}

/// What the query names: the relations it reads, each schema-qualified.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QueryNames {
    /// Relations, sorted, without repeats.
    pub relations: Vec<QualifiedName>,
    /// Names the query uses without a schema that are not its own CTEs.
    unqualified: Vec<String>,
}

/// An identifier as PostgreSQL stores it: unquoted ones folded to lower case in ASCII only (as
/// PostgreSQL does: `K`, the Kelvin sign, stays itself), truncated to PostgreSQL's 63 bytes.
fn fold(ident: &sqlparser::ast::Ident) -> String {
    let folded = if ident.quote_style.is_some() { ident.value.clone() } else { ident.value.to_ascii_lowercase() };
    let mut end = folded.len().min(63);
    while !folded.is_char_boundary(end) {
        end -= 1;
    }
    folded.get(..end).unwrap_or_default().to_owned()
}

/// Whether a set expression is, or contains, a `TABLE name` query, which the relation visitor
/// does not see; the read refuses them rather than miss a relation.
fn has_table_command(set: &sqlparser::ast::SetExpr) -> bool {
    use sqlparser::ast::SetExpr;
    match set {
        SetExpr::Table(_) => true,
        SetExpr::SetOperation { left, right, .. } => has_table_command(left) || has_table_command(right),
        _ => false,
    }
}

fn parts(name: &ObjectName) -> Option<Vec<String>> {
    name.0
        .iter()
        .map(|p| match p {
            ObjectNamePart::Identifier(ident) => Some(fold(ident)),
            ObjectNamePart::Function(_) => None,
        })
        .collect()
}

#[derive(Default)]
struct Names {
    ctes: BTreeSet<String>,
    relations: BTreeSet<QualifiedName>,
    unqualified: BTreeSet<String>,
    error: Option<GuardError>,
}

impl Visitor for Names {
    type Break = ();

    fn pre_visit_query(&mut self, query: &Query) -> ControlFlow<()> {
        if has_table_command(&query.body) {
            self.error = Some(GuardError::Parse("a `TABLE name` query; write SELECT … FROM name".into()));
            return ControlFlow::Break(());
        }
        for cte in query.with.iter().flat_map(|w| &w.cte_tables) {
            self.ctes.insert(fold(&cte.alias.name));
        }
        ControlFlow::Continue(())
    }

    fn pre_visit_relation(&mut self, relation: &ObjectName) -> ControlFlow<()> {
        match parts(relation).as_deref() {
            Some([name]) if self.ctes.contains(name) => {}
            Some([name]) => {
                self.unqualified.insert(name.clone());
            }
            Some([schema, name]) => {
                self.relations.insert(QualifiedName { schema: schema.clone(), name: name.clone() });
            }
            _ => {
                self.error = Some(GuardError::BadName(relation.to_string()));
                return ControlFlow::Break(());
            }
        }
        ControlFlow::Continue(())
    }

    fn pre_visit_expr(&mut self, expr: &Expr) -> ControlFlow<()> {
        if let Expr::Function(function) = expr {
            match parts(&function.name).as_deref() {
                Some([_]) => {}
                Some([schema, _]) if schema == "pg_catalog" => {}
                _ => {
                    self.error = Some(GuardError::Function(function.name.to_string()));
                    return ControlFlow::Break(());
                }
            }
        }
        ControlFlow::Continue(())
    }
}

impl QueryNames {
    /// Parses the configured query and lists what it names. Unqualified relation names are
    /// kept, to be reported with the relations they could mean ([`check`]).
    pub fn parse(query: &str) -> Result<Self, GuardError> {
        let statements =
            Parser::parse_sql(&PostgreSqlDialect {}, query).map_err(|e| GuardError::Parse(e.to_string()))?;
        let [statement] = statements.as_slice() else {
            return Err(GuardError::Parse(format!("{} statements", statements.len())));
        };
        if !matches!(statement, sqlparser::ast::Statement::Query(_)) {
            return Err(GuardError::Parse("not a SELECT".into()));
        }
        let mut names = Names::default();
        let _ = statement.visit(&mut names);
        if let Some(error) = names.error {
            return Err(error);
        }
        if names.relations.is_empty() && names.unqualified.is_empty() {
            return Err(GuardError::Parse("the query reads no relation".into()));
        }
        Ok(Self {
            relations: names.relations.into_iter().collect(),
            unqualified: names.unqualified.into_iter().collect(),
        })
    }
}

/// One row of the catalog query about a relation.
struct CatalogRow {
    oid: u32,
    schema: String,
    name: String,
    relkind: String,
    owner: String,
    row_security: bool,
    has_rules: bool,
    has_children: bool,
}

const RELATION_COLUMNS: &str = "c.oid::pg_catalog.int8, n.nspname::pg_catalog.text, c.relname::pg_catalog.text, \
     c.relkind::pg_catalog.text, pg_catalog.pg_get_userbyid(c.relowner)::pg_catalog.text, \
     c.relrowsecurity, c.relhasrules, c.relhassubclass";

fn catalog_row(row: &tokio_postgres::Row) -> Result<CatalogRow, GuardError> {
    let get = |e: tokio_postgres::Error| GuardError::Catalog(e.to_string());
    let oid: i64 = row.try_get(0).map_err(get)?;
    Ok(CatalogRow {
        oid: u32::try_from(oid).map_err(|_| GuardError::Catalog(format!("OID {oid} out of range")))?,
        schema: row.try_get(1).map_err(get)?,
        name: row.try_get(2).map_err(get)?,
        relkind: row.try_get(3).map_err(get)?,
        owner: row.try_get(4).map_err(get)?,
        row_security: row.try_get(5).map_err(get)?,
        has_rules: row.try_get(6).map_err(get)?,
        has_children: row.try_get(7).map_err(get)?,
    })
}

fn relkind_name(relkind: &str) -> &'static str {
    match relkind {
        "r" => "table",
        "p" => "partitioned table",
        "v" => "view",
        "m" => "materialized view",
        "f" => "foreign table",
        "S" => "sequence",
        "c" => "composite type",
        "i" | "I" => "index",
        "t" => "TOAST table",
        _ => "relation of an unknown kind",
    }
}

async fn policies_of(tx: &Transaction<'_>, oid: u32) -> Result<Vec<String>, GuardError> {
    let oid = i64::from(oid);
    let params: [&(dyn ToSql + Sync); 1] = [&oid];
    let rows = tx
        .query(
            "SELECT p.polname::pg_catalog.text FROM pg_catalog.pg_policy p WHERE p.polrelid = $1::pg_catalog.int8::pg_catalog.oid ORDER BY 1",
            &params,
        )
        .await
        .map_err(|e| GuardError::Catalog(e.to_string()))?;
    Ok(rows.iter().filter_map(|r| r.try_get::<_, String>(0).ok()).collect())
}

/// Checks one relation's own properties: no rules, no row security.
async fn check_properties(tx: &Transaction<'_>, row: &CatalogRow) -> Result<(), GuardError> {
    let name = format!("{}.{}", row.schema, row.name);
    if row.has_rules {
        return Err(GuardError::Rules(name));
    }
    if row.row_security {
        return Err(GuardError::RowSecurity { policies: policies_of(tx, row.oid).await?, name });
    }
    Ok(())
}

fn record(row: &CatalogRow, kind: RelationKind, named: bool) -> Relation {
    Relation {
        schema: row.schema.clone(),
        name: row.name.clone(),
        oid: row.oid,
        kind: kind.name().to_owned(),
        owner: row.owner.clone(),
        named,
    }
}

/// Resolves and checks every relation the query names, and the partitions or children read
/// through an allowed parent; then checks that the plan reads nothing else and that no function
/// shadows one the identity query calls. Returns the relations for the database record.
pub async fn check(
    tx: &Transaction<'_>,
    query: &str,
    names: &QueryNames,
    allow: Allowances,
) -> Result<Vec<Relation>, GuardError> {
    let catalog = |e: tokio_postgres::Error| GuardError::Catalog(e.to_string());
    if let Some(name) = names.unqualified.first() {
        let params: [&(dyn ToSql + Sync); 1] = [name];
        let rows = tx
            .query(
                &format!(
                    "SELECT {RELATION_COLUMNS} FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace \
                     WHERE c.relname = $1 ORDER BY 2"
                ),
                &params,
            )
            .await
            .map_err(catalog)?;
        let candidates = rows
            .iter()
            .filter_map(|r| catalog_row(r).ok())
            .map(|r| format!("{}.{} ({})", r.schema, r.name, relkind_name(&r.relkind)))
            .collect();
        return Err(GuardError::Unqualified { name: name.clone(), candidates });
    }
    let mut relations = Vec::new();
    for wanted in &names.relations {
        let params: [&(dyn ToSql + Sync); 2] = [&wanted.schema, &wanted.name];
        let rows = tx
            .query(
                &format!(
                    "SELECT {RELATION_COLUMNS} FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace \
                     WHERE n.nspname = $1 AND c.relname = $2"
                ),
                &params,
            )
            .await
            .map_err(catalog)?;
        let row = match rows.first() {
            Some(row) => catalog_row(row)?,
            None => return Err(GuardError::Missing(wanted.to_string())),
        };
        let kind = match (row.relkind.as_str(), row.has_children) {
            ("r", false) => RelationKind::Table,
            ("r", true) if allow.inheritance => RelationKind::InheritanceParent,
            ("r", true) => {
                return Err(GuardError::Kind {
                    name: wanted.to_string(),
                    kind: "table with inheritance children",
                    option: Some("allow_inheritance"),
                })
            }
            ("p", _) if allow.partitioned => RelationKind::PartitionedTable,
            ("p", _) => {
                return Err(GuardError::Kind {
                    name: wanted.to_string(),
                    kind: "partitioned table",
                    option: Some("allow_partitioned"),
                })
            }
            (other, _) => {
                return Err(GuardError::Kind { name: wanted.to_string(), kind: relkind_name(other), option: None })
            }
        };
        check_properties(tx, &row).await?;
        relations.push(record(&row, kind, true));
        if matches!(kind, RelationKind::PartitionedTable | RelationKind::InheritanceParent) {
            relations.extend(descendants(tx, &row, kind).await?);
        }
    }
    let plans = explain(tx, query).await?;
    check_plan(&plans, &relations)?;
    check_shadowing(tx).await?;
    Ok(relations)
}

/// Every partition or inheritance child below `parent`, each checked like a named relation.
async fn descendants(
    tx: &Transaction<'_>,
    parent: &CatalogRow,
    kind: RelationKind,
) -> Result<Vec<Relation>, GuardError> {
    let oid = i64::from(parent.oid);
    let params: [&(dyn ToSql + Sync); 1] = [&oid];
    let rows = tx
        .query(
            &format!(
                "WITH RECURSIVE tree(oid) AS (\
                   SELECT i.inhrelid FROM pg_catalog.pg_inherits i WHERE i.inhparent = $1::pg_catalog.int8::pg_catalog.oid \
                   UNION SELECT i.inhrelid FROM pg_catalog.pg_inherits i JOIN tree t ON i.inhparent = t.oid) \
                 SELECT {RELATION_COLUMNS} FROM tree JOIN pg_catalog.pg_class c ON c.oid = tree.oid \
                 JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace ORDER BY 1"
            ),
            &params,
        )
        .await
        .map_err(|e| GuardError::Catalog(e.to_string()))?;
    let child_kind =
        if kind == RelationKind::PartitionedTable { RelationKind::Partition } else { RelationKind::InheritanceChild };
    let mut out = Vec::with_capacity(rows.len());
    for row in &rows {
        let row = catalog_row(row)?;
        // Intermediate partitioned tables hold no rows; foreign or other partitions are refused.
        if !matches!(row.relkind.as_str(), "r" | "p") {
            return Err(GuardError::Kind {
                name: format!("{}.{}", row.schema, row.name),
                kind: relkind_name(&row.relkind),
                option: None,
            });
        }
        check_properties(tx, &row).await?;
        out.push(record(&row, child_kind, false));
    }
    Ok(out)
}

/// `"name"` with PostgreSQL's quoting.
fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// Takes ACCESS SHARE locks on every relation the query names, before the transaction's snapshot
/// exists: a table renamed, dropped or truncated in another transaction after this point waits
/// for the read to end, so the relation the catalog checks see is the one the rows come from.
/// (`LOCK` takes no snapshot; it also locks a partitioned or inheritance parent's children.)
pub async fn lock_named(tx: &Transaction<'_>, names: &QueryNames) -> Result<(), GuardError> {
    // `SHOW` takes no snapshot either: a role switched by a default is refused before it locks.
    let show = |name: &'static str| async move {
        let messages =
            tx.simple_query(&format!("SHOW {name}")).await.map_err(|e| GuardError::Catalog(e.to_string()))?;
        messages
            .iter()
            .find_map(|m| match m {
                tokio_postgres::SimpleQueryMessage::Row(row) => row.get(0).map(str::to_owned),
                _ => None,
            })
            .ok_or_else(|| GuardError::Catalog(format!("SHOW {name} returned nothing")))
    };
    let role = show("role").await?;
    if role != "none" {
        return Err(GuardError::RoleSwitched { session: show("session_authorization").await?, current: role });
    }
    for name in &names.relations {
        let statement =
            format!("LOCK TABLE {}.{} IN ACCESS SHARE MODE", quote_ident(&name.schema), quote_ident(&name.name));
        if let Err(e) = tx.batch_execute(&statement).await {
            if e.code() == Some(&tokio_postgres::error::SqlState::UNDEFINED_TABLE) {
                return Err(GuardError::Missing(name.to_string()));
            }
            return Err(GuardError::Catalog(format!("locking {name}: {e}")));
        }
    }
    Ok(())
}

/// After the rows were read, before the transaction ends: every relation this session opened
/// (PostgreSQL holds a lock on each until the end) must be a checked relation, one of their
/// indexes or TOAST tables, or a catalog. Whatever the parser, the rewriter, the planner or the
/// executor reached — a view, a partition attached mid-read, a foreign table, a table read by a
/// built-in that runs SQL — is found here by OID, not by name.
pub async fn check_locks(tx: &Transaction<'_>, relations: &[Relation]) -> Result<(), GuardError> {
    let rows = tx
        .query(
            "SELECT c.oid::pg_catalog.int8, n.nspname::pg_catalog.text, c.relname::pg_catalog.text, \
                    COALESCE(i.indrelid, t.oid, 0::pg_catalog.oid)::pg_catalog.int8 \
             FROM pg_catalog.pg_locks l \
             JOIN pg_catalog.pg_class c ON c.oid = l.relation \
             JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace \
             LEFT JOIN pg_catalog.pg_index i ON i.indexrelid = c.oid \
             LEFT JOIN pg_catalog.pg_class t ON t.reltoastrelid = c.oid \
             WHERE l.pid = pg_catalog.pg_backend_pid() AND l.locktype = 'relation'",
            &[],
        )
        .await
        .map_err(|e| GuardError::Catalog(format!("listing the session's locks: {e}")))?;
    let checked: BTreeSet<i64> = relations.iter().map(|r| i64::from(r.oid)).collect();
    for row in &rows {
        let get = |e: tokio_postgres::Error| GuardError::Catalog(e.to_string());
        let oid: i64 = row.try_get(0).map_err(get)?;
        let schema: String = row.try_get(1).map_err(get)?;
        let name: String = row.try_get(2).map_err(get)?;
        let owner: i64 = row.try_get(3).map_err(get)?;
        let allowed = checked.contains(&oid)
            || checked.contains(&owner)
            || matches!(schema.as_str(), "pg_catalog" | "pg_toast" | "information_schema");
        if !allowed {
            return Err(GuardError::Unchecked(format!("{schema}.{name}")));
        }
    }
    Ok(())
}

/// A node of `EXPLAIN (VERBOSE, FORMAT JSON)`'s plan: only what is checked.
#[derive(Deserialize)]
struct PlanNode {
    #[serde(rename = "Relation Name")]
    relation: Option<String>,
    #[serde(rename = "Schema")]
    schema: Option<String>,
    #[serde(rename = "Function Name")]
    function: Option<String>,
    #[serde(rename = "Plans", default)]
    plans: Vec<PlanNode>,
}

#[derive(Deserialize)]
struct Explained {
    #[serde(rename = "Plan")]
    plan: PlanNode,
}

fn walk<'a>(node: &'a PlanNode, out: &mut Vec<&'a PlanNode>) {
    out.push(node);
    for child in &node.plans {
        walk(child, out);
    }
}

/// Asks PostgreSQL for its plan of the query. The extended protocol runs exactly one statement,
/// whatever the query text holds.
async fn explain(tx: &Transaction<'_>, query: &str) -> Result<Vec<Explained>, GuardError> {
    let rows = tx
        .query(&format!("EXPLAIN (VERBOSE, FORMAT JSON) {query}"), &[])
        .await
        .map_err(|e| GuardError::Catalog(format!("explaining the query: {e}")))?;
    let plan: serde_json::Value = rows
        .first()
        .ok_or_else(|| GuardError::Catalog("EXPLAIN returned nothing".into()))?
        .try_get(0)
        .map_err(|e| GuardError::Catalog(format!("the plan: {e}")))?;
    serde_json::from_value(plan).map_err(|e| GuardError::Catalog(format!("the plan: {e}")))
}

/// Checks the plan: every relation it scans must be a checked relation (a parser that saw the
/// query differently from PostgreSQL cannot slip one past), and every function scan must be of
/// a built-in.
fn check_plan(plans: &[Explained], relations: &[Relation]) -> Result<(), GuardError> {
    let mut nodes = Vec::new();
    for explained in plans {
        walk(&explained.plan, &mut nodes);
    }
    for node in nodes {
        if let Some(name) = &node.relation {
            let schema = node.schema.clone().unwrap_or_default();
            if !relations.iter().any(|r| r.schema == schema && r.name == *name) {
                return Err(GuardError::Unchecked(format!("{schema}.{name}")));
            }
        }
        if let (Some(function), Some(schema)) = (&node.function, &node.schema) {
            if schema != "pg_catalog" {
                return Err(GuardError::Function(format!("{schema}.{function}")));
            }
        }
    }
    Ok(())
}

/// Refuses a database where a function outside `pg_catalog` has the name of one the identity
/// query calls: with the transaction's `search_path` it could not be called, but its presence
/// says someone tried.
async fn check_shadowing(tx: &Transaction<'_>) -> Result<(), GuardError> {
    let names: Vec<String> = IDENTITY_FUNCTIONS.iter().map(|s| (*s).to_owned()).collect();
    let params: [&(dyn ToSql + Sync); 1] = [&names];
    let rows = tx
        .query(
            "SELECT n.nspname::pg_catalog.text || '.' || p.proname::pg_catalog.text || '(' || \
                    pg_catalog.pg_get_function_identity_arguments(p.oid) || ')' \
             FROM pg_catalog.pg_proc p JOIN pg_catalog.pg_namespace n ON n.oid = p.pronamespace \
             WHERE p.proname::pg_catalog.text = ANY($1) AND n.nspname <> 'pg_catalog' ORDER BY 1 LIMIT 1",
            &params,
        )
        .await
        .map_err(|e| GuardError::Catalog(e.to_string()))?;
    match rows.first() {
        Some(row) => Err(GuardError::Shadowing(row.try_get::<_, String>(0).unwrap_or_else(|_| "a function".into()))),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn relations(query: &str) -> Vec<String> {
        QueryNames::parse(query).unwrap().relations.iter().map(ToString::to_string).collect()
    }

    #[test]
    fn qualified_relations_are_listed_and_cte_names_are_not() {
        assert_eq!(
            relations("SELECT account_id, asset, amount FROM public.balances ORDER BY 1, 2"),
            ["public.balances"]
        );
        assert_eq!(
            relations(
                "WITH b AS (SELECT * FROM ledger.balances) SELECT b.account_id, b.asset, b.amount \
                 FROM b JOIN ledger.accounts a ON a.id = b.account_id"
            ),
            ["ledger.accounts", "ledger.balances"]
        );
        assert_eq!(
            relations("SELECT a, b, c FROM \"Ledger\".\"Balances\" UNION ALL SELECT a, b, c FROM Ledger.x"),
            ["Ledger.Balances", "ledger.x"]
        );
        assert_eq!(
            relations("SELECT a, lower(b), pg_catalog.upper(c) FROM s.t WHERE a IN (SELECT a FROM s.u)"),
            ["s.t", "s.u"]
        );
    }

    #[test]
    fn unqualified_names_other_functions_and_other_statements_are_refused() {
        let unqualified = QueryNames::parse("SELECT account_id, asset, amount FROM balances").unwrap();
        assert_eq!(unqualified.unqualified, ["balances"]);
        assert!(matches!(
            QueryNames::parse("SELECT a, b, public.adjust(c) FROM public.t"),
            Err(GuardError::Function(f)) if f == "public.adjust"
        ));
        assert!(matches!(QueryNames::parse("SELECT a, b, c FROM db.s.t"), Err(GuardError::BadName(_))));
        assert!(matches!(QueryNames::parse("DELETE FROM public.t"), Err(GuardError::Parse(_))));
        assert!(matches!(QueryNames::parse("SELECT 1; SELECT 2"), Err(GuardError::Parse(_))));
        assert!(matches!(QueryNames::parse("SELECT 1"), Err(GuardError::Parse(_))));
        assert!(matches!(QueryNames::parse("SELECT FROM WHERE"), Err(GuardError::Parse(_))));
    }

    #[test]
    fn errors_name_what_was_found() {
        let e = GuardError::Unqualified {
            name: "balances".into(),
            candidates: vec!["solvency_reader.balances (view)".into()],
        };
        assert!(e.to_string().contains("solvency_reader.balances (view)"), "{e}");
        let e =
            GuardError::Kind { name: "public.b".into(), kind: "partitioned table", option: Some("allow_partitioned") };
        assert!(e.to_string().contains("allow_partitioned = true"), "{e}");
    }
}
